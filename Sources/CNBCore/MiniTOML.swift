/// A small TOML reader for the launcher, which cannot use Foundation (and so not TOMLKit): it
/// reads `<layers>/config/metadata.toml` and exec.d output. It covers the TOML the lifecycle and
/// exec.d programs write: tables, arrays of tables, dotted and quoted keys, basic/literal and
/// multi-line strings, integers, floats, booleans, arrays and inline tables. Dates are kept as
/// their text.
public enum TOMLValue: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case array([TOMLValue])
    case table([String: TOMLValue])

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var array: [TOMLValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var table: [String: TOMLValue]? { if case .table(let t) = self { return t } else { return nil } }
    public var strings: [String]? { array?.compactMap(\.string) }
    public subscript(key: String) -> TOMLValue? { table?[key] }
}

public struct TOMLSyntaxError: Error {
    public var line: Int
    public var message: String
}

public struct MiniTOMLParser {
    private let bytes: [UInt8]
    private var i = 0
    private var line = 1

    init(_ text: String) { bytes = Array(text.utf8) }

    public static func parse(_ text: String) throws(TOMLSyntaxError) -> [String: TOMLValue] {
        var p = MiniTOMLParser(text)
        return try p.document()
    }

    private var atEnd: Bool { i >= bytes.count }
    private var peek: UInt8 { atEnd ? 0 : bytes[i] }

    private func fail(_ message: String) -> TOMLSyntaxError { TOMLSyntaxError(line: line, message: message) }

    private mutating func skipSpaces() {
        while !atEnd, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
    }

    /// Spaces, newlines and comments (inside arrays and between statements).
    private mutating func skipBlank() {
        while !atEnd {
            switch bytes[i] {
            case 0x20, 0x09, 0x0D: i += 1
            case 0x0A: i += 1; line += 1
            case UInt8(ascii: "#"): while !atEnd, bytes[i] != 0x0A { i += 1 }
            default: return
            }
        }
    }

    private mutating func endOfLine() throws(TOMLSyntaxError) {
        skipSpaces()
        if peek == UInt8(ascii: "#") { while !atEnd, bytes[i] != 0x0A { i += 1 } }
        if peek == 0x0D { i += 1 }
        guard atEnd || peek == 0x0A else { throw fail("expected end of line") }
    }

    private mutating func document() throws(TOMLSyntaxError) -> [String: TOMLValue] {
        var root: [String: TOMLValue] = [:]
        var current: [String] = []
        var currentIsArrayElement = false
        while true {
            skipBlank()
            if atEnd { break }
            if peek == UInt8(ascii: "[") {
                i += 1
                let isArray = peek == UInt8(ascii: "[")
                if isArray { i += 1 }
                skipSpaces()
                let path = try key()
                skipSpaces()
                guard peek == UInt8(ascii: "]") else { throw fail("expected ] after table name") }
                i += 1
                if isArray {
                    guard peek == UInt8(ascii: "]") else { throw fail("expected ]] after array-of-tables name") }
                    i += 1
                }
                try endOfLine()
                current = path
                currentIsArrayElement = isArray
                if isArray {
                    try Self.appendTable(&root, path, line: line)
                } else {
                    try Self.ensureTable(&root, path, line: line)
                }
                continue
            }
            let path = try key()
            skipSpaces()
            guard peek == UInt8(ascii: "=") else { throw fail("expected = after key") }
            i += 1
            skipSpaces()
            let v = try value()
            try endOfLine()
            try Self.insert(&root, current, arrayElement: currentIsArrayElement, key: path, value: v, line: line)
        }
        return root
    }

    // MARK: tables

    private static func ensureTable(_ t: inout [String: TOMLValue], _ path: [String], line: Int) throws(TOMLSyntaxError) {
        guard let first = path.first else { return }
        var child: [String: TOMLValue]
        switch t[first] {
        case nil: child = [:]
        case .table(let existing)?: child = existing
        case .array(var items)? where items.last?.table != nil:
            var last = items.removeLast().table!
            try ensureTable(&last, Array(path.dropFirst()), line: line)
            items.append(.table(last))
            t[first] = .array(items)
            return
        default: throw TOMLSyntaxError(line: line, message: "key \(first) is not a table")
        }
        try ensureTable(&child, Array(path.dropFirst()), line: line)
        t[first] = .table(child)
    }

    private static func appendTable(_ t: inout [String: TOMLValue], _ path: [String], line: Int) throws(TOMLSyntaxError) {
        guard let first = path.first else { return }
        if path.count == 1 {
            switch t[first] {
            case nil: t[first] = .array([.table([:])])
            case .array(var items)?: items.append(.table([:])); t[first] = .array(items)
            default: throw TOMLSyntaxError(line: line, message: "key \(first) is not an array of tables")
            }
            return
        }
        try modifyChild(&t, first, line: line) { (c: inout [String: TOMLValue]) throws(TOMLSyntaxError) in
            try appendTable(&c, Array(path.dropFirst()), line: line)
        }
    }

    /// Applies `body` to the table at `key` (the last element when it is an array of tables).
    private static func modifyChild(_ t: inout [String: TOMLValue], _ key: String, line: Int,
                                    _ body: (inout [String: TOMLValue]) throws(TOMLSyntaxError) -> Void) throws(TOMLSyntaxError) {
        switch t[key] {
        case nil:
            var c: [String: TOMLValue] = [:]
            try body(&c)
            t[key] = .table(c)
        case .table(var c)?:
            try body(&c)
            t[key] = .table(c)
        case .array(var items)? where items.last?.table != nil:
            var c = items.removeLast().table!
            try body(&c)
            items.append(.table(c))
            t[key] = .array(items)
        default:
            throw TOMLSyntaxError(line: line, message: "key \(key) is not a table")
        }
    }

    private static func insert(_ t: inout [String: TOMLValue], _ tablePath: [String], arrayElement: Bool, key: [String],
                               value: TOMLValue, line: Int) throws(TOMLSyntaxError) {
        if let first = tablePath.first {
            try modifyChild(&t, first, line: line) { (c: inout [String: TOMLValue]) throws(TOMLSyntaxError) in
                try insert(&c, Array(tablePath.dropFirst()), arrayElement: arrayElement, key: key, value: value, line: line)
            }
            return
        }
        guard let k = key.first else { return }
        if key.count == 1 {
            guard t[k] == nil else { throw TOMLSyntaxError(line: line, message: "duplicate key \(k)") }
            t[k] = value
            return
        }
        try modifyChild(&t, k, line: line) { (c: inout [String: TOMLValue]) throws(TOMLSyntaxError) in
            try insert(&c, [], arrayElement: false, key: Array(key.dropFirst()), value: value, line: line)
        }
    }

    // MARK: keys and values

    private mutating func key() throws(TOMLSyntaxError) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            if peek == UInt8(ascii: "\"") {
                parts.append(try basicString())
            } else if peek == UInt8(ascii: "'") {
                parts.append(try literalString())
            } else {
                let start = i
                while !atEnd, Self.isBare(bytes[i]) { i += 1 }
                guard i > start else { throw fail("expected a key") }
                parts.append(String(decoding: bytes[start..<i], as: UTF8.self))
            }
            skipSpaces()
            guard peek == UInt8(ascii: ".") else { return parts }
            i += 1
        }
    }

    private static func isBare(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == UInt8(ascii: "_")
            || c == UInt8(ascii: "-")
    }

    private mutating func value() throws(TOMLSyntaxError) -> TOMLValue {
        switch peek {
        case UInt8(ascii: "\""): return .string(try basicString())
        case UInt8(ascii: "'"): return .string(try literalString())
        case UInt8(ascii: "["):
            i += 1
            var items: [TOMLValue] = []
            while true {
                skipBlank()
                if peek == UInt8(ascii: "]") { i += 1; return .array(items) }
                items.append(try value())
                skipBlank()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                guard peek == UInt8(ascii: "]") else { throw fail("expected , or ] in array") }
            }
        case UInt8(ascii: "{"):
            i += 1
            var table: [String: TOMLValue] = [:]
            skipSpaces()
            if peek == UInt8(ascii: "}") { i += 1; return .table(table) }
            while true {
                let k = try key()
                skipSpaces()
                guard peek == UInt8(ascii: "=") else { throw fail("expected = in inline table") }
                i += 1
                skipSpaces()
                let v = try value()
                try Self.insert(&table, [], arrayElement: false, key: k, value: v, line: line)
                skipSpaces()
                if peek == UInt8(ascii: ",") { i += 1; skipSpaces(); continue }
                guard peek == UInt8(ascii: "}") else { throw fail("expected , or } in inline table") }
                i += 1
                return .table(table)
            }
        default:
            let start = i
            while !atEnd, !" \t\r\n,]}#".utf8.contains(bytes[i]) { i += 1 }
            let word = String(decoding: bytes[start..<i], as: UTF8.self)
            if word == "true" { return .bool(true) }
            if word == "false" { return .bool(false) }
            let digits = word.filter { $0 != "_" }
            if let n = Int(digits) { return .integer(n) }
            if let d = Double(digits) { return .float(d) }
            guard !word.isEmpty else { throw fail("expected a value") }
            return .string(word)  // dates and times, kept as text
        }
    }

    private mutating func literalString() throws(TOMLSyntaxError) -> String {
        let multi = i + 2 < bytes.count && bytes[i + 1] == UInt8(ascii: "'") && bytes[i + 2] == UInt8(ascii: "'")
        i += multi ? 3 : 1
        if multi, peek == 0x0A { i += 1; line += 1 }
        let start = i
        while !atEnd {
            if bytes[i] == UInt8(ascii: "'") {
                if !multi || (i + 2 < bytes.count && bytes[i + 1] == UInt8(ascii: "'") && bytes[i + 2] == UInt8(ascii: "'")) {
                    let s = String(decoding: bytes[start..<i], as: UTF8.self)
                    i += multi ? 3 : 1
                    return s
                }
            }
            if bytes[i] == 0x0A { guard multi else { break }; line += 1 }
            i += 1
        }
        throw fail("unterminated string")
    }

    private mutating func basicString() throws(TOMLSyntaxError) -> String {
        let multi = i + 2 < bytes.count && bytes[i + 1] == UInt8(ascii: "\"") && bytes[i + 2] == UInt8(ascii: "\"")
        i += multi ? 3 : 1
        if multi, peek == 0x0A { i += 1; line += 1 }
        var out: [UInt8] = []
        while !atEnd {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                if !multi { i += 1; return String(decoding: out, as: UTF8.self) }
                if i + 2 < bytes.count, bytes[i + 1] == UInt8(ascii: "\""), bytes[i + 2] == UInt8(ascii: "\"") {
                    i += 3
                    return String(decoding: out, as: UTF8.self)
                }
            }
            if c == 0x0A {
                guard multi else { break }
                line += 1
            }
            if c == UInt8(ascii: "\\") {
                i += 1
                guard !atEnd else { break }
                let e = bytes[i]
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "e"): out.append(0x1B)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(e)
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let n = e == UInt8(ascii: "u") ? 4 : 8
                    guard i + n < bytes.count, let code = UInt32(String(decoding: bytes[(i + 1)...(i + n)], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(code)
                    else { throw fail("bad unicode escape") }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    i += n
                case 0x20, 0x09, 0x0D, 0x0A where multi:
                    // line-ending backslash: trim whitespace up to the next non-blank
                    while !atEnd, [0x20, 0x09, 0x0D, 0x0A].contains(bytes[i]) {
                        if bytes[i] == 0x0A { line += 1 }
                        i += 1
                    }
                    continue
                default: throw fail("bad escape \\\(Character(Unicode.Scalar(e)))")
                }
                i += 1
                continue
            }
            out.append(c)
            i += 1
        }
        throw fail("unterminated string")
    }
}

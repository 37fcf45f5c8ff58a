/// A TOML 1.0 reader (https://toml.io/en/v1.0.0), used for every TOML file Cairn reads: the
/// specs' files through Buildpacks' `TOMLFile`, and by the launcher (which links no Foundation)
/// for `metadata.toml` and exec.d output. Malformed input of any shape is a `TOMLSyntaxError`
/// with line and column; nothing is guessed. CRLF line ends are read as LF (also inside
/// multi-line strings); datetimes are validated and kept as their text. Integers are 64-bit, as
/// the spec requires at least; larger ones are an error, not a rounded value.
public struct TOMLParser {
    let b: [UInt8]
    var i = 0
    private var document = TOMLDocument()

    static let lf: UInt8 = 0x0A
    static let tab: UInt8 = 0x09
    static let space: UInt8 = 0x20

    init(_ text: String) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var previousCR = false
        for c in text.utf8 {
            if previousCR && c != Self.lf { bytes.append(0x0D) }
            previousCR = c == 0x0D
            if !previousCR { bytes.append(c) }
        }
        if previousCR { bytes.append(0x0D) }
        b = bytes
    }

    /// Reads a whole document.
    public static func parse(_ text: String) throws(TOMLSyntaxError) -> [String: TOMLValue] {
        var p = TOMLParser(text)
        return try p.readDocument()
    }

    // MARK: Positions and errors

    var atEnd: Bool { i >= b.count }
    var peek: UInt8 { i < b.count ? b[i] : 0 }
    func at(_ k: Int) -> UInt8 { k < b.count ? b[k] : 0 }

    func fail(_ message: String, at position: Int? = nil) -> TOMLSyntaxError {
        let p = min(position ?? i, b.count)
        var line = 1, lineStart = 0
        for k in 0..<p where b[k] == Self.lf {
            line += 1
            lineStart = k + 1
        }
        return TOMLSyntaxError(line: line, column: p - lineStart + 1, message: message)
    }

    static func describe(_ c: UInt8) -> String {
        if c >= 0x21 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        if c == lf { return "a newline" }
        if c == space { return "a space" }
        return "byte 0x" + String(c, radix: 16, uppercase: true)
    }

    /// What is at the current position, for "expected …, found …".
    var found: String { atEnd ? "the end of the document" : Self.describe(b[i]) }

    /// Control characters TOML allows in no string or comment (tab is allowed).
    static func isForbiddenControl(_ c: UInt8) -> Bool { (c < 0x20 && c != tab) || c == 0x7F }

    static func isBareKeyByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    mutating func skipSpaces() {
        while i < b.count, b[i] == Self.space || b[i] == Self.tab { i += 1 }
    }

    /// A comment from `#` to the end of the line (the newline is left).
    mutating func skipComment() throws(TOMLSyntaxError) {
        i += 1
        while i < b.count, b[i] != Self.lf {
            if Self.isForbiddenControl(b[i]) { throw fail("\(Self.describe(b[i])) is not allowed in a comment") }
            i += 1
        }
    }

    /// Spaces, newlines and comments, as allowed between the elements of an array.
    mutating func skipBlank() throws(TOMLSyntaxError) {
        while i < b.count {
            switch b[i] {
            case Self.space, Self.tab, Self.lf: i += 1
            case UInt8(ascii: "#"): try skipComment()
            default: return
            }
        }
    }

    // MARK: Statements

    private mutating func readDocument() throws(TOMLSyntaxError) -> [String: TOMLValue] {
        var header: [String] = []
        while true {
            skipSpaces()
            guard !atEnd else { break }
            switch peek {
            case Self.lf:
                i += 1
                continue
            case UInt8(ascii: "#"):
                try skipComment()
                continue
            case UInt8(ascii: "["):
                header = try tableHeader()
            default:
                try keyValue(header: header)
            }
            skipSpaces()
            if peek == UInt8(ascii: "#") { try skipComment() }
            guard atEnd || peek == Self.lf else { throw fail("expected the end of the line, found \(found)") }
            i += 1
        }
        return document.result()
    }

    private mutating func tableHeader() throws(TOMLSyntaxError) -> [String] {
        let start = i
        let isArray = at(i + 1) == UInt8(ascii: "[")
        i += isArray ? 2 : 1
        let key = try readKey()
        guard peek == UInt8(ascii: "]") else { throw fail("expected ']' to close the table header, found \(found)") }
        i += 1
        if isArray {
            guard peek == UInt8(ascii: "]") else { throw fail("expected ']]' to close the array-of-tables header, found \(found)") }
            i += 1
        }
        do {
            if isArray { try document.appendTable(key) } else { try document.defineTable(key) }
        } catch { throw fail(error.message, at: start) }
        return key
    }

    private mutating func keyValue(header: [String]) throws(TOMLSyntaxError) {
        // Moved out and back (not copied): the inline-table path reads into a document of its own.
        var target = TOMLDocument()
        swap(&target, &document)
        defer { swap(&target, &document) }
        try keyValue(into: &target, header: header)
    }

    /// `key = value`, added to `target` (the document, or an inline table's own).
    private mutating func keyValue(into target: inout TOMLDocument, header: [String]) throws(TOMLSyntaxError) {
        let start = i
        let key = try readKey()
        guard peek == UInt8(ascii: "=") else { throw fail("expected '=' after the key \(TOMLDocument.display(key)), found \(found)") }
        i += 1
        skipSpaces()
        let value = try readValue()
        do { try target.setValue(header: header, key: key, value: value) } catch { throw fail(error.message, at: start) }
    }

    /// A key: simple keys (bare, "basic" or 'literal') joined by dots; spaces around each part
    /// are read too.
    mutating func readKey() throws(TOMLSyntaxError) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            switch peek {
            case UInt8(ascii: "\""):
                guard at(i + 1) != UInt8(ascii: "\"") || at(i + 2) != UInt8(ascii: "\"") else {
                    throw fail("a key cannot be a multi-line string")
                }
                parts.append(try basicString())
            case UInt8(ascii: "'"):
                guard at(i + 1) != UInt8(ascii: "'") || at(i + 2) != UInt8(ascii: "'") else {
                    throw fail("a key cannot be a multi-line string")
                }
                parts.append(try literalString())
            default:
                let start = i
                while i < b.count, Self.isBareKeyByte(b[i]) { i += 1 }
                guard i > start else { throw fail("expected a key, found \(found)") }
                parts.append(String(decoding: b[start..<i], as: UTF8.self))
            }
            skipSpaces()
            guard peek == UInt8(ascii: ".") else { return parts }
            i += 1
        }
    }

    // MARK: Values

    mutating func readValue() throws(TOMLSyntaxError) -> TOMLValue {
        switch peek {
        case UInt8(ascii: "\""): return .string(try basicString())
        case UInt8(ascii: "'"): return .string(try literalString())
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "{"): return try inlineTable()
        default: return try scalar()
        }
    }

    private mutating func array() throws(TOMLSyntaxError) -> TOMLValue {
        i += 1
        var items: [TOMLValue] = []
        while true {
            try skipBlank()
            if peek == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            items.append(try readValue())
            try skipBlank()
            switch peek {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "]"): break
            default: throw fail("expected ',' or ']' in the array, found \(found)")
            }
        }
    }

    /// `{ k = v, … }`: on one line (values may span lines), no trailing comma. Its keys follow
    /// the document's rules, so it is read as a small document of its own.
    private mutating func inlineTable() throws(TOMLSyntaxError) -> TOMLValue {
        i += 1
        var table = TOMLDocument()
        skipSpaces()
        if peek == UInt8(ascii: "}") {
            i += 1
            return .table([:])
        }
        while true {
            try keyValue(into: &table, header: [])
            skipSpaces()
            switch peek {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "}"):
                i += 1
                return .table(table.result())
            default: throw fail("expected ',' or '}' in the inline table, found \(found)")
            }
        }
    }

    // MARK: Strings

    /// `"…"` or `"""…"""`.
    mutating func basicString() throws(TOMLSyntaxError) -> String {
        let (multiLine, start) = openString()
        var out: [UInt8] = []
        while i < b.count {
            let c = b[i]
            switch c {
            case UInt8(ascii: "\""):
                if !multiLine {
                    i += 1
                    return String(decoding: out, as: UTF8.self)
                }
                if let end = closingQuotes(UInt8(ascii: "\""), into: &out) { i = end; return String(decoding: out, as: UTF8.self) }
            case UInt8(ascii: "\\"):
                try escape(multiLine: multiLine, into: &out)
            case Self.lf where multiLine:
                out.append(c)
                i += 1
            default:
                if c == Self.lf { throw fail("a single-line string cannot hold a newline (close it with '\"')") }
                if Self.isForbiddenControl(c) { throw fail("\(Self.describe(c)) is not allowed in a string; write it as an escape") }
                out.append(c)
                i += 1
            }
        }
        throw fail("the string that starts here is not closed", at: start)
    }

    /// `'…'` or `'''…'''`: no escapes.
    mutating func literalString() throws(TOMLSyntaxError) -> String {
        let (multiLine, start) = openString()
        var out: [UInt8] = []
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "'") {
                if !multiLine {
                    i += 1
                    return String(decoding: out, as: UTF8.self)
                }
                if let end = closingQuotes(c, into: &out) { i = end; return String(decoding: out, as: UTF8.self) }
                continue
            }
            if c == Self.lf && !multiLine { throw fail("a single-line string cannot hold a newline (close it with \"'\")") }
            if c != Self.lf && Self.isForbiddenControl(c) { throw fail("\(Self.describe(c)) is not allowed in a literal string") }
            out.append(c)
            i += 1
        }
        throw fail("the string that starts here is not closed", at: start)
    }

    /// Past the opening quote(s) at `i` (three for a multi-line string, whose first newline is
    /// not part of it); where the string starts, for errors.
    private mutating func openString() -> (multiLine: Bool, start: Int) {
        let q = b[i], start = i
        let multiLine = at(i + 1) == q && at(i + 2) == q
        i += multiLine ? 3 : 1
        if multiLine && peek == Self.lf { i += 1 }
        return (multiLine, start)
    }

    /// At a quote inside a multi-line string: when three quotes close it, returns the position
    /// after them (one or two quotes just before the closing three belong to the content).
    /// Otherwise appends the quote, advances, and returns nil.
    private mutating func closingQuotes(_ q: UInt8, into out: inout [UInt8]) -> Int? {
        guard at(i + 1) == q && at(i + 2) == q else {
            out.append(q)
            i += 1
            return nil
        }
        var extra = 0
        while extra < 2 && at(i + 3 + extra) == q { extra += 1 }
        out.append(contentsOf: repeatElement(q, count: extra))
        return i + 3 + extra
    }

    private mutating func escape(multiLine: Bool, into out: inout [UInt8]) throws(TOMLSyntaxError) {
        let start = i
        i += 1
        let e = peek
        switch e {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(e)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = e == UInt8(ascii: "u") ? 4 : 8
            var code: UInt32 = 0
            for k in 1...count {
                let h = at(i + k)
                let digit: UInt8
                switch h {
                case 0x30...0x39: digit = h - 0x30
                case 0x41...0x46: digit = h - 0x41 + 10
                case 0x61...0x66: digit = h - 0x61 + 10
                default: throw fail("\\\(Character(Unicode.Scalar(e))) needs \(count) hexadecimal digits", at: start)
                }
                code = code << 4 | UInt32(digit)
            }
            guard let scalar = Unicode.Scalar(code) else {
                throw fail("\\\(Character(Unicode.Scalar(e))) names U+\(String(code, radix: 16, uppercase: true)), which is not a Unicode scalar value", at: start)
            }
            out.append(contentsOf: String(Character(scalar)).utf8)
            i += count
        case Self.space where multiLine, Self.tab where multiLine, Self.lf where multiLine:
            // A line-ending backslash: the newline and the whitespace after it are dropped.
            skipSpaces()
            guard peek == Self.lf else { throw fail("a backslash in a string must start an escape or end the line", at: start) }
            while i < b.count, b[i] == Self.space || b[i] == Self.tab || b[i] == Self.lf { i += 1 }
            return
        default:
            throw fail("\\\(atEnd ? "" : String(decoding: [e], as: UTF8.self)) is not an escape TOML knows (\\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)", at: start)
        }
        i += 1
    }
}

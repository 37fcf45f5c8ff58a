/// A parsed TOML value. Tables and arrays of tables are `.table` and `.array` of `.table`;
/// offset/local date-times, dates and times are `.datetime`, kept as their source text.
public enum TOMLValue: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case datetime(String)
    case array([TOMLValue])
    case table([String: TOMLValue])

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var array: [TOMLValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var table: [String: TOMLValue]? { if case .table(let t) = self { return t } else { return nil } }
    public var strings: [String]? { array?.compactMap { $0.string } }
    public subscript(key: String) -> TOMLValue? { table?[key] }

    public static func == (a: TOMLValue, b: TOMLValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)), (.datetime(let x), .datetime(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.float(let x), .float(let y)): return x == y || (x.isNaN && y.isNaN)
        case (.bool(let x), .bool(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.table(let x), .table(let y)): return x == y
        default: return false
        }
    }
}

/// A TOML document that is not valid TOML 1.0: where (1-based line, and column in bytes) and why.
public struct TOMLSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String

    public init(line: Int, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "line \(line), column \(column): \(message)" }
}

extension TOMLValue {
    /// The value as JSON text: datetimes become strings, as do the floats JSON has no numbers
    /// for (`"inf"`, `"-inf"`, `"nan"`). Keys in sorted order, so the text is deterministic.
    public var jsonText: String {
        var out: [UInt8] = []
        appendJSON(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func appendJSON(to out: inout [UInt8]) {
        switch self {
        case .string(let s), .datetime(let s): CairnBasics.appendJSONString(s, to: &out)
        case .integer(let n): out.append(contentsOf: String(n).utf8)
        case .float(let d):
            if d.isNaN { out.append(contentsOf: #""nan""#.utf8) }
            else if d.isInfinite { out.append(contentsOf: (d > 0 ? #""inf""# : #""-inf""#).utf8) }
            else { out.append(contentsOf: String(d).utf8) }
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (n, item) in items.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                item.appendJSON(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .table(let entries):
            out.append(UInt8(ascii: "{"))
            for (n, key) in entries.keys.sorted().enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                CairnBasics.appendJSONString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                entries[key]!.appendJSON(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }
}

/// TOML as the writer spells it, and as errors name keys.
public enum TOMLText {
    /// A key: bare when it can be, else a basic string.
    public static func key(_ k: String) -> String {
        !k.isEmpty && k.utf8.allSatisfy(TOMLParser.isBareKeyByte) ? k : quoted(k)
    }

    /// `s` as a TOML basic string.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7f {
                    out += "\\u" + hex(u.value, width: 4)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

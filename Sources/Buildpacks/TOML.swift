import CNBCore
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// A TOML value of any shape: buildpack-specific `metadata` tables and the like, carried through
/// unchanged. (Datetimes are carried as their text.)
public enum AnyTOML: Codable, Hashable, Sendable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case bool(Bool)
    case array([AnyTOML])
    case table([String: AnyTOML])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int64.self) { self = .integer(v) }
        else if let v = try? c.decode(Double.self) { self = .float(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if var list = try? decoder.unkeyedContainer() {
            var values: [AnyTOML] = []
            while !list.isAtEnd {
                if try list.decodeNil() { continue }
                values.append(try list.decode(AnyTOML.self))
            }
            self = .array(values)
        } else if let keyed = try? decoder.container(keyedBy: AnyKey.self) {
            // JSON labels carry `null` where Go had a nil slice or map (the reference lifecycle
            // writes `"args": null`); TOML has no null, and absent reads the same.
            var table: [String: AnyTOML] = [:]
            for key in keyed.allKeys where !(try keyed.decodeNil(forKey: key)) {
                table[key.stringValue] = try keyed.decode(AnyTOML.self, forKey: key)
            }
            self = .table(table)
        } else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "unsupported TOML value") }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let v): try c.encode(v)
        case .integer(let v): try c.encode(v)
        case .float(let v): try c.encode(v)
        case .bool(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .table(let v): try c.encode(v)
        }
    }

    /// The table's entries, or nil if this is not a table.
    public var table: [String: AnyTOML]? {
        if case .table(let t) = self { return t }
        return nil
    }
}

/// Errors reading and writing the specs' TOML files. Each names the file and, where known, the
/// key and what was expected.
public enum TOMLFileError: Error, Hashable, Sendable, CustomStringConvertible {
    case syntax(file: String, line: Int, column: Int, message: String)
    case invalid(file: String, key: String, message: String)
    case unreadable(file: String, reason: String)
    case unwritable(file: String, reason: String)

    public var description: String {
        switch self {
        case .syntax(let file, let line, let column, let message):
            return "\(file):\(line):\(column): invalid TOML: \(message)"
        case .invalid(let file, let key, let message):
            return key.isEmpty ? "\(file): \(message)" : "\(file): key \"\(key)\": \(message)"
        case .unreadable(let file, let reason):
            return "cannot read \(file): \(reason)"
        case .unwritable(let file, let reason):
            return "cannot write \(file): \(reason)"
        }
    }

    /// The file the error is about.
    public var file: String {
        switch self {
        case .syntax(let f, _, _, _), .invalid(let f, _, _), .unreadable(let f, _), .unwritable(let f, _): return f
        }
    }
}

/// The single gateway between the specs' files and Codable types: parsing with CNBCore's
/// TOML 1.0 reader, decoding with key paths in errors, and a deterministic writer.
public enum TOMLFile {
    /// Decodes `T` from TOML text; `file` names the source in errors.
    /// - Throws: `TOMLFileError.syntax` or `.invalid`.
    public static func decode<T: Decodable>(_ type: T.Type, from text: String, file: String) throws -> T {
        let table: [String: TOMLValue]
        do {
            table = try TOMLParser.parse(text)
        } catch {
            throw TOMLFileError.syntax(file: file, line: error.line, column: error.column, message: error.message)
        }
        // The document as JSON, so that JSONDecoder gives precise coding paths. Datetimes are
        // strings there, as are infinite and NaN floats.
        let json = Data(TOMLValue.table(table).jsonText.utf8)
        do {
            return try JSONDecoder().decode(type, from: json)
        } catch let error as DecodingError {
            throw describe(error, file: file)
        } catch let error as TOMLFileError {
            throw error
        } catch let error as FieldError {
            throw TOMLFileError.invalid(file: file, key: error.key, message: error.message)
        }
    }

    /// Reads and decodes a file.
    /// - Throws: `TOMLFileError`.
    public static func read<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file"
            throw TOMLFileError.unreadable(file: path, reason: reason)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TOMLFileError.unreadable(file: path, reason: "not UTF-8 text")
        }
        return try decode(type, from: text, file: path)
    }

    /// Reads a file if it exists; nil when it does not.
    public static func readIfPresent<T: Decodable>(_ type: T.Type, from path: String) throws -> T? {
        FileManager.default.fileExists(atPath: path) ? try read(type, from: path) : nil
    }

    /// Encodes `value` as TOML text: keys sorted, scalars before tables, arrays of tables as `[[x]]`.
    public static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let generic = try JSONDecoder().decode(AnyTOML.self, from: encoder.encode(value))
        guard case .table(let root) = generic else {
            throw TOMLFileError.invalid(file: "<value>", key: "", message: "top level must be a table")
        }
        var out = ""
        emitTable(root, path: [], into: &out)
        return out
    }

    /// Writes `value` as TOML to `path` atomically (temp file + rename), creating parent dirs.
    /// - Throws: `TOMLFileError.unwritable`.
    public static func write<T: Encodable>(_ value: T, to path: String) throws {
        let text = try encode(value)
        let url = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            throw TOMLFileError.unwritable(file: path, reason: "\(errorText(error))")
        }
    }

    // MARK: Writer

    private static func isTableLike(_ v: AnyTOML) -> Bool {
        switch v {
        case .table: return true
        case .array(let items): return !items.isEmpty && items.allSatisfy { if case .table = $0 { return true } else { return false } }
        default: return false
        }
    }

    private static func emitTable(_ table: [String: AnyTOML], path: [String], into out: inout String) {
        let keys = table.keys.sorted()
        for k in keys where !isTableLike(table[k]!) {
            out += "\(TOMLText.key(k)) = \(inline(table[k]!))\n"
        }
        for k in keys where isTableLike(table[k]!) {
            let childPath = path + [k]
            let header = childPath.map(TOMLText.key).joined(separator: ".")
            switch table[k]! {
            case .table(let t):
                if !out.isEmpty { out += "\n" }
                out += "[\(header)]\n"
                emitTable(t, path: childPath, into: &out)
            case .array(let items):
                for item in items {
                    if !out.isEmpty { out += "\n" }
                    out += "[[\(header)]]\n"
                    if case .table(let t) = item { emitTable(t, path: childPath, into: &out) }
                }
            default: break
            }
        }
    }

    private static func inline(_ v: AnyTOML) -> String {
        switch v {
        case .string(let s): return TOMLText.quoted(s)
        case .integer(let i): return String(i)
        case .float(let d):
            if d.isNaN { return "nan" }
            if d.isInfinite { return d > 0 ? "inf" : "-inf" }
            let s = String(d)
            return s.contains(".") || s.contains("e") ? s : s + ".0"
        case .bool(let b): return b ? "true" : "false"
        case .array(let items): return "[" + items.map(inline).joined(separator: ", ") + "]"
        case .table(let t): return "{" + t.keys.sorted().map { "\(TOMLText.key($0)) = \(inline(t[$0]!))" }.joined(separator: ", ") + "}"
        }
    }

    // MARK: Errors

    static func describe(_ error: DecodingError, file: String) -> TOMLFileError {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
                .replacing(".[", with: "[").trimming { $0 == "." }
        }
        switch error {
        case .keyNotFound(let k, let ctx):
            let parent = path(ctx.codingPath)
            return .invalid(file: file, key: parent.isEmpty ? k.stringValue : "\(parent).\(k.stringValue)", message: "required key is missing")
        case .typeMismatch(let type, let ctx):
            return .invalid(file: file, key: path(ctx.codingPath), message: "expected \(typeName(type))")
        case .valueNotFound(let type, let ctx):
            return .invalid(file: file, key: path(ctx.codingPath), message: "expected \(typeName(type))")
        case .dataCorrupted(let ctx):
            return .invalid(file: file, key: path(ctx.codingPath), message: ctx.debugDescription)
        @unknown default:
            return .invalid(file: file, key: "", message: "\(error)")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int64.Type: return "an integer"
        case is Double.Type: return "a number"
        default:
            let n = "\(type)"
            if n.hasPrefix("Array") { return "an array" }
            if n.hasPrefix("Dictionary") { return "a table" }
            return "a value of type \(n)"
        }
    }
}

/// A validation failure inside a decoder, reported with its key path by `TOMLFile`.
public struct FieldError: Error, Hashable, Sendable {
    public var key: String
    public var message: String
    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }
}

extension Decoder {
    /// The current coding path as a dotted key.
    public var keyPath: String {
        codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            .replacing(".[", with: "[").trimming { $0 == "." }
    }

    /// A data-corrupted error at the current path with `message`.
    public func invalid(_ message: String) -> DecodingError {
        DecodingError.dataCorrupted(DecodingError.Context(codingPath: codingPath, debugDescription: message))
    }
}

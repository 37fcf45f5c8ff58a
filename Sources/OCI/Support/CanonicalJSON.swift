import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// The one JSON encoding Cairn writes: sorted keys, no insignificant whitespace, `/` unescaped.
/// Digests are computed over these exact bytes, so the same value always has the same digest.
public enum CanonicalJSON {
    /// Encodes `value` canonically.
    /// - Throws: `EncodingError` from the value's `encode(to:)`.
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// Decodes `T` from `data`, naming `what` (a file or reference) in the error.
    /// - Throws: `OCIError.invalidJSON`.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw OCIError.invalidJSON(what: what, detail: describe(error))
        }
    }

    /// A one-line description of a decoding error: the coding path and what was expected.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            let p = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return p.isEmpty ? "top level" : String(p.drop(while: { $0 == "." }))
        }
        switch error {
        case .keyNotFound(let key, let ctx):
            return "missing field \"\(key.stringValue)\" at \(path(ctx.codingPath))"
        case .typeMismatch(let type, let ctx):
            return "field \(path(ctx.codingPath)): expected \(type)"
        case .valueNotFound(let type, let ctx):
            return "field \(path(ctx.codingPath)): expected \(type), found null"
        case .dataCorrupted(let ctx):
            let underlying = ctx.underlyingError.map { "\($0)" }
            return "\(path(ctx.codingPath)): \(ctx.debugDescription)\(underlying.map { " (\($0))" } ?? "")"
        @unknown default:
            return "\(error)"
        }
    }
}

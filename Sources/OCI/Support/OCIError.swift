/// Errors of the OCI module. Each description names the file, reference or entry at fault and
/// what was expected, in one line.
public enum OCIError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidJSON(what: String, detail: String)
    case io(operation: String, path: String, errno: Int32)
    case notFound(reference: String, store: String)
    case blobNotFound(Digest, store: String)
    case digestMismatch(what: String, expected: Digest, actual: Digest)
    case invalidLayout(path: String, detail: String)
    case unsupportedMediaType(what: String, mediaType: String)
    case tar(TarError)
    case unsafeEntry(layer: String, entry: String, reason: String)
    /// A layer's tar stream is malformed or cut short (an entry longer than the data behind it).
    case unreadableLayer(layer: String, cause: TarError)
    case compression(String)
    case notADirectory(String)
    case unsupportedFileType(path: String, kind: String)
    case invalidValue(name: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .invalidJSON(let what, let detail):
            return "\(what) is not valid: \(detail)"
        case .io(let operation, let path, let errno):
            return "cannot \(operation) \(path): \(String(cString: strerror(errno)))"
        case .notFound(let reference, let store):
            return "image \"\(reference)\" not found in the store \(store) (see `cairn images`)"
        case .blobNotFound(let digest, let store):
            return "blob \(digest) is missing from the store \(store)"
        case .digestMismatch(let what, let expected, let actual):
            return "\(what): content digest is \(actual), expected \(expected)"
        case .invalidLayout(let path, let detail):
            return "\(path) is not a valid OCI image layout: \(detail)"
        case .unsupportedMediaType(let what, let mediaType):
            return "\(what) has media type \"\(mediaType)\", which Cairn cannot use here"
        case .tar(let error):
            return error.description
        case .unsafeEntry(let layer, let entry, let reason):
            return "layer \(layer): refusing entry \"\(entry)\": \(reason)"
        case .unreadableLayer(let layer, let cause):
            return "layer \(layer): \(cause)"
        case .compression(let detail):
            return "compression failed: \(detail)"
        case .notADirectory(let path):
            return "\(path) is not a directory"
        case .invalidValue(let name, let value, let expected):
            return "\(name) is \"\(value)\": expected \(expected)"
        case .unsupportedFileType(let path, let kind):
            return "\(path) is a \(kind), which cannot be stored in a layer"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Throws `OCIError.io` with the current errno when `result` is negative.
@discardableResult
func check<T: BinaryInteger>(_ result: T, _ operation: String, _ path: String) throws(OCIError) -> T {
    if result < 0 { throw OCIError.io(operation: operation, path: path, errno: errno) }
    return result
}

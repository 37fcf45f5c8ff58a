/// Errors talking to a registry. Messages name the registry, repository and request path, never
/// credentials, tokens or upload-session query strings.
public enum RegistryError: Error, Hashable, Sendable, CustomStringConvertible {
    case unauthorized(registry: String, repository: String, hadCredentials: Bool)
    case denied(registry: String, repository: String, detail: String)
    case notFound(what: String)
    case http(method: String, path: String, status: Int, detail: String)
    case retriesExhausted(method: String, path: String, attempts: Int, lastError: String)
    case connection(registry: String, detail: String)
    case digestMismatch(what: String, expected: Digest, actual: Digest)
    case sizeMismatch(what: String, expected: Int64, actual: Int64)
    case badResponse(String)
    case noMatchingPlatform(reference: String, platform: String, available: [String])
    case tokenServer(realm: String, detail: String)

    /// Whether starting a blob upload again may succeed: the registry lost the upload session
    /// (404, 416, 400 BLOB_UPLOAD_INVALID), received damaged bytes (400 DIGEST_INVALID after a
    /// cut-off chunk: ours are checked before they leave), a transient status (408, 429, 5xx
    /// after the request's own retries), a dropped connection or a short write. Not a refusal
    /// (authorization, other 400s, 405, 413, …): those fail the same way again.
    var restartsUpload: Bool {
        switch self {
        case .http(_, _, let status, let detail):
            if status == 400 { return detail.contains("DIGEST_INVALID") || detail.contains("BLOB_UPLOAD_INVALID") }
            return [404, 408, 416, 429, 500, 502, 503, 504].contains(status)
        case .connection, .sizeMismatch, .badResponse: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .unauthorized(let registry, let repository, let had):
            return had
                ? "\(registry) rejected the credentials for \(repository) (check `cairn login \(registry)` or CNB_REGISTRY_AUTH)"
                : "\(registry) requires authentication for \(repository); run `cairn login \(registry) -u USER --password-stdin`"
        case .denied(let registry, let repository, let detail):
            return "\(registry) denied access to \(repository): \(detail)"
        case .notFound(let what):
            return "\(what) not found"
        case .http(let method, let path, let status, let detail):
            return "\(method) \(path) failed with HTTP \(status)\(detail.isEmpty ? "" : ": " + detail)"
        case .retriesExhausted(let method, let path, let attempts, let last):
            return "\(method) \(path) failed after \(attempts) attempts: \(last)"
        case .connection(let registry, let detail):
            return "cannot reach \(registry): \(detail)"
        case .digestMismatch(let what, let expected, let actual):
            return "\(what): received content has digest \(actual), expected \(expected); nothing was stored"
        case .sizeMismatch(let what, let expected, let actual):
            return "\(what): received \(actual) bytes, expected \(expected); nothing was stored"
        case .badResponse(let s):
            return s
        case .noMatchingPlatform(let reference, let platform, let available):
            return "\(reference) has no image for \(platform) (available: \(available.joined(separator: ", ")))"
        case .tokenServer(let realm, let detail):
            return "token server \(realm) refused: \(detail)"
        }
    }
}

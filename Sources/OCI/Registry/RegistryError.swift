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

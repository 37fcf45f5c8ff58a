import FoundationEssentials
import CairnBasics
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// A credential for one registry. Its description never shows the secret.
public enum RegistryCredential: Sendable, Hashable, CustomStringConvertible {
    case basic(username: String, password: String)
    /// An OAuth2 refresh token (docker's `identitytoken`, or a helper's `<token>` user).
    case identityToken(String)
    /// A ready `Authorization` header value (platform.md `CNB_REGISTRY_AUTH`).
    case header(String)

    public var description: String {
        switch self {
        case .basic(let user, _): return "basic credentials for \(user)"
        case .identityToken: return "an identity token"
        case .header: return "an Authorization header from the platform (CNB_REGISTRY_AUTH)"
        }
    }

    /// `Authorization: Basic ...` value, when this credential has a user and password.
    var basicHeader: String? {
        guard case .basic(let u, let p) = self else { return nil }
        return "Basic " + Data("\(u):\(p)".utf8).base64EncodedString()
    }
}

/// Errors reading credentials. They name the file or helper, never a secret.
public enum CredentialError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidRegistryAuth(String)
    case invalidDockerConfig(path: String, detail: String)
    case helperFailed(helper: String, registry: String, detail: String)

    public var description: String {
        switch self {
        case .invalidRegistryAuth(let detail):
            return "the registry auth JSON (CNB_REGISTRY_AUTH) is not a JSON object of registry to Authorization header: \(detail)"
        case .invalidDockerConfig(let path, let detail):
            return "\(path) is not a valid docker config: \(detail)"
        case .helperFailed(let helper, let registry, let detail):
            return "credential helper docker-credential-\(helper) failed for \(registry): \(detail)"
        }
    }
}

/// Where credentials come from, in platform.md's order: `CNB_REGISTRY_AUTH` when set, otherwise
/// the docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`): `credHelpers`,
/// then `credsStore`, then `auths`. No match means anonymous.
public struct CredentialStore: Sendable {
    public var registryAuth: [String: String]?
    public var dockerConfigPath: String

    /// - Parameters:
    ///   - registryAuthJSON: the platform's registry-to-header JSON (platform.md, Registry
    ///     Authentication); when given, the docker config is not consulted.
    ///   - environment: for `DOCKER_CONFIG` and `HOME`.
    /// - Throws: `CredentialError.invalidRegistryAuth` for malformed JSON.
    public init(registryAuthJSON: String?, environment: [String: String]) throws {
        if let raw = registryAuthJSON, !raw.isEmpty {
            guard let obj = (try? JSONDecoder().decode(JSONValue.self, from: Data(raw.utf8)))?.object else {
                throw CredentialError.invalidRegistryAuth("not a JSON object")
            }
            var map: [String: String] = [:]
            for (k, v) in obj {
                guard let s = v.string else { throw CredentialError.invalidRegistryAuth("value for \(k) is not a string") }
                map[Self.normalizeRegistry(k)] = s
            }
            registryAuth = map
        }
        let dir = environment["DOCKER_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? ((environment["HOME"] ?? "/root") + "/.docker")
        dockerConfigPath = dir + "/config.json"
    }

    public init(registryAuth: [String: String]? = nil, dockerConfigPath: String) {
        self.registryAuth = registryAuth
        self.dockerConfigPath = dockerConfigPath
    }

    /// A registry as users and docker configs write it (`https://index.docker.io/v1/`,
    /// `r.example.com:5000`) as a host: scheme and path stripped, Docker Hub's aliases unified.
    public static func normalizeRegistry(_ key: String) -> String {
        var k = Substring(key)
        if let r = k.firstRange(of: "://") { k = k[r.upperBound...] }
        if let slash = k.firstIndex(of: "/") { k = k[..<slash] }
        let host = String(k).lowercased()
        return host == "index.docker.io" || host == "registry-1.docker.io" ? ImageReference.dockerHub : host
    }

    /// The credential for `registry` (`host[:port]`), or nil for anonymous access.
    /// - Throws: `CredentialError`.
    public func credential(for registry: String) throws -> RegistryCredential? {
        let host = Self.normalizeRegistry(registry)
        if let auth = registryAuth {
            return auth[host].map { .header($0) }
        }
        guard let data = FileManager.default.contents(atPath: dockerConfigPath) else { return nil }
        let config: DockerConfig
        do {
            config = try JSONDecoder().decode(DockerConfig.self, from: data)
        } catch {
            throw CredentialError.invalidDockerConfig(path: dockerConfigPath, detail: "\(error)")
        }
        if let helper = config.credHelpers?.first(where: { Self.normalizeRegistry($0.key) == host })?.value {
            return try Self.runHelper(helper, registry: registry)
        }
        if let store = config.credsStore, !store.isEmpty,
           let cred = try Self.runHelper(store, registry: registry) {
            return cred
        }
        guard let entry = config.auths?.first(where: { Self.normalizeRegistry($0.key) == host })?.value else { return nil }
        if let token = entry.identitytoken, !token.isEmpty { return .identityToken(token) }
        if let user = entry.username, let pass = entry.password { return .basic(username: user, password: pass) }
        if let auth = entry.auth, !auth.isEmpty {
            guard let decoded = Data(base64Encoded: auth).map({ String(decoding: $0, as: UTF8.self) }),
                  let colon = decoded.firstIndex(of: ":")
            else { throw CredentialError.invalidDockerConfig(path: dockerConfigPath, detail: "auths.\(host).auth is not base64 of user:password") }
            return .basic(username: String(decoded[..<colon]), password: String(decoded[decoded.index(after: colon)...]))
        }
        return nil
    }

    /// `docker-credential-<helper> get` with the server on stdin; "not found" means anonymous.
    static func runHelper(_ helper: String, registry: String) throws -> RegistryCredential? {
        let server = registry == ImageReference.dockerHub ? "https://index.docker.io/v1/" : registry
        // A helper that hangs (waiting for a prompt, a keychain) must not stall every pull.
        let spec = ProcessSpec(path: "/usr/bin/env", arguments: ["docker-credential-\(helper)", "get"],
                               input: Data(server.utf8), timeout: .seconds(60))
        let result: ProcessResult
        do {
            result = try ChildProcess.run(spec, output: .separate)
        } catch {
            throw CredentialError.helperFailed(helper: helper, registry: registry, detail: "cannot start: \(error)")
        }
        if result.timedOut {
            throw CredentialError.helperFailed(helper: helper, registry: registry, detail: "did not answer within 60 s")
        }
        let out = result.stdout
        if result.status != 0 {
            let message = String(decoding: result.stdout + result.stderr, as: UTF8.self).trimmed
            if message.lowercased().contains("not found") { return nil }
            // The helper's own message, cut short: helpers do not print secrets on failure.
            throw CredentialError.helperFailed(helper: helper, registry: registry, detail: String(message.prefix(200)))
        }
        struct Reply: Decodable {
            var Username: String
            var Secret: String
        }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: out) else {
            throw CredentialError.helperFailed(helper: helper, registry: registry, detail: "output is not {\"Username\", \"Secret\"} JSON")
        }
        return reply.Username == "<token>" ? .identityToken(reply.Secret) : .basic(username: reply.Username, password: reply.Secret)
    }

    /// Records `user`/`password` for `registry` in the docker config (as `docker login` does),
    /// keeping every other key; written atomically with mode 0600.
    public func saveLogin(registry: String, username: String, password: String) throws {
        var root: [String: JSONValue] = [:]
        if let data = FileManager.default.contents(atPath: dockerConfigPath) {
            guard let obj = (try? JSONDecoder().decode(JSONValue.self, from: data))?.object else {
                throw CredentialError.invalidDockerConfig(path: dockerConfigPath, detail: "not a JSON object")
            }
            root = obj
        }
        var auths = root["auths"]?.object ?? [:]
        let key = registry == ImageReference.dockerHub ? "https://index.docker.io/v1/" : registry
        auths[key] = .object(["auth": .string(Data("\(username):\(password)".utf8).base64EncodedString())])
        root["auths"] = .object(auths)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(root)
        let url = URL(fileURLWithPath: dockerConfigPath)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temp = url.deletingLastPathComponent().appendingPathComponent(".config.json.\(getpid())")
        FileManager.default.createFile(atPath: temp.path, contents: data, attributes: [.posixPermissions: 0o600])
        guard rename(temp.path, url.path) == 0 else {
            throw CredentialError.invalidDockerConfig(path: dockerConfigPath, detail: "cannot write: \(String(cString: strerror(errno)))")
        }
    }
}

/// The parts of docker's config.json that hold credentials.
struct DockerConfig: Decodable {
    var auths: [String: AuthEntry]?
    var credHelpers: [String: String]?
    var credsStore: String?

    struct AuthEntry: Decodable {
        var auth: String?
        var username: String?
        var password: String?
        var identitytoken: String?
    }
}

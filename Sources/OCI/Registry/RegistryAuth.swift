import AsyncHTTPClient
import FoundationEssentials
import CairnBasics
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// Registry authentication (distribution-spec, token auth): Bearer tokens fetched for a
/// challenge's realm and scope, Basic credentials, and the cache of both.
extension RegistryClient {
    /// The Authorization value to send, if any is known for this registry and scope.
    func authorization(registry: String, repository: String, actions: String) async throws -> String? {
        if let token = await tokens.token(registry: registry, scope: Self.scope(repository, actions)) { return "Bearer " + token }
        if let basic = await tokens.basic(registry: registry) { return basic }
        if case .header(let h)? = try configuration.credentials.credential(for: registry), !h.hasPrefix("Basic ") {
            return h
        }
        return nil
    }

    static func scope(_ repository: String, _ actions: String) -> String { "repository:\(repository):\(actions)" }

    /// Answers a `WWW-Authenticate` challenge: fetches a Bearer token or records Basic credentials.
    func answer(challenge: String, registry: String, repository: String, actions: String) async throws {
        let (scheme, params) = Self.parseChallenge(challenge)
        let credential = try configuration.credentials.credential(for: registry)
        switch scheme.lowercased() {
        case "basic":
            guard let credential else {
                throw RegistryError.unauthorized(registry: registry, repository: repository, hadCredentials: false)
            }
            let value: String
            switch credential {
            case .header(let h): value = h
            case .basic: value = credential.basicHeader!
            case .identityToken:
                throw RegistryError.unauthorized(registry: registry, repository: repository, hadCredentials: true)
            }
            await tokens.setBasic(registry: registry, value)
        case "bearer":
            guard let realm = params["realm"] else { throw RegistryError.badResponse("\(registry): Bearer challenge without realm") }
            let scope = Self.scope(repository, actions)
            // Concurrent requests that hit the same challenge share one token request.
            try await tokens.fetchOnce(registry: registry, scope: scope) {
                try await self.fetchToken(realm: realm, service: params["service"], scope: scope, credential: credential)
            }
        default:
            throw RegistryError.unauthorized(registry: registry, repository: repository, hadCredentials: credential != nil)
        }
    }

    struct TokenReply: Decodable {
        var token: String?
        var access_token: String?
        var expires_in: Int?
    }

    func fetchToken(realm: String, service: String?, scope: String, credential: RegistryCredential?) async throws -> (token: String, expiresIn: Int) {
        var components = URLComponents(string: realm)
        guard components != nil else { throw RegistryError.badResponse("token realm \(realm) is not a URL") }
        var request: HTTPClientRequest
        if case .identityToken(let refresh)? = credential {
            // OAuth2 refresh-token grant (docker's identitytoken).
            request = HTTPClientRequest(url: realm)
            request.method = .POST
            var form = URLComponents()
            form.queryItems = [URLQueryItem(name: "grant_type", value: "refresh_token"), URLQueryItem(name: "service", value: service ?? ""),
                               URLQueryItem(name: "scope", value: scope), URLQueryItem(name: "client_id", value: "cairn"),
                               URLQueryItem(name: "refresh_token", value: refresh)]
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: form.percentEncodedQuery ?? ""))
        } else {
            var items = components!.queryItems ?? []
            if let service { items.append(URLQueryItem(name: "service", value: service)) }
            items.append(URLQueryItem(name: "scope", value: scope))
            components!.queryItems = items
            request = HTTPClientRequest(url: components!.string!)
            switch credential {
            case .basic?: request.headers.add(name: "Authorization", value: credential!.basicHeader!)
            case .header(let h)? where h.hasPrefix("Basic "): request.headers.add(name: "Authorization", value: h)
            default: break
            }
        }
        request.headers.add(name: "User-Agent", value: configuration.userAgent)
        let realmName = Self.safePath(realm)
        trace("→ token \(realmName) \(scope)")
        var attempt = 0
        while true {
            attempt += 1
            do {
                let response = try await http.execute(request, timeout: .seconds(60))
                let body = try await response.body.collect(upTo: 1 << 20)
                let status = Int(response.status.code)
                if [429, 500, 502, 503, 504].contains(status) && attempt < configuration.retry.attempts {
                    try await backoff(attempt: attempt, retryAfter: nil)
                    continue
                }
                guard status == 200 else {
                    if status == 401 || status == 403 {
                        throw RegistryError.tokenServer(realm: realmName, detail: "HTTP \(status): credentials rejected")
                    }
                    throw RegistryError.tokenServer(realm: realmName, detail: "HTTP \(status)")
                }
                let reply = try JSONDecoder().decode(TokenReply.self, from: Data(body.readableBytesView))
                guard let token = reply.token ?? reply.access_token, !token.isEmpty else {
                    throw RegistryError.tokenServer(realm: realmName, detail: "reply has no token")
                }
                return (token, reply.expires_in ?? 60)
            } catch let e as RegistryError {
                throw e
            } catch {
                if attempt >= configuration.retry.attempts {
                    throw RegistryError.tokenServer(realm: realmName, detail: Self.describe(error))
                }
                try await backoff(attempt: attempt, retryAfter: nil)
            }
        }
    }

    /// `Bearer realm="...",service="...",scope="..."` → ("Bearer", params).
    static func parseChallenge(_ header: String) -> (String, [String: String]) {
        let trimmed = header.trimmed
        guard let space = trimmed.firstIndex(of: " ") else { return (trimmed, [:]) }
        let scheme = String(trimmed[..<space])
        var params: [String: String] = [:]
        var rest = Substring(trimmed[trimmed.index(after: space)...])
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let eq = rest.firstIndex(of: "=") else { break }
            let key = rest[..<eq].trimmed.lowercased()
            rest = rest[rest.index(after: eq)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                var end = rest.startIndex
                for i in rest.indices {
                    if escaped { escaped = false; value.append(rest[i]); continue }
                    if rest[i] == "\\" { escaped = true; continue }
                    if rest[i] == "\"" { end = i; break }
                    value.append(rest[i])
                    end = rest.index(after: i)
                }
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : ""
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end].trimmed
                rest = rest[end...]
            }
            params[key] = value
        }
        return (scheme, params)
    }
}

/// Bearer tokens per registry and scope, and Basic headers per registry.
actor TokenCache {
    private var tokens: [String: (token: String, expires: Date)] = [:]
    private var basics: [String: String] = [:]

    private var inFlight: [String: Task<Void, any Error>] = [:]

    /// A valid token for `scope`; a `pull,push` token also serves `pull`.
    func token(registry: String, scope: String) -> String? {
        for candidate in [scope, scope.hasSuffix(":pull") ? scope + ",push" : nil].compactMap({ $0 }) {
            if let t = tokens[registry + "|" + candidate], t.expires > Date() { return t.token }
        }
        return nil
    }

    /// Runs `fetch` unless a fetch for the same scope is already running, and stores its token.
    func fetchOnce(registry: String, scope: String,
                   _ fetch: @escaping @Sendable () async throws -> (token: String, expiresIn: Int)) async throws {
        let key = registry + "|" + scope
        if token(registry: registry, scope: scope) != nil { return }
        if let running = inFlight[key] { return try await running.value }
        let task = Task {
            let t = try await fetch()
            self.setToken(registry: registry, scope: scope, t.token, expiresIn: t.expiresIn)
        }
        inFlight[key] = task
        defer { inFlight[key] = nil }
        try await task.value
    }

    func setToken(registry: String, scope: String, _ token: String, expiresIn: Int) {
        // Renew a little early; registries give at least 60 s.
        tokens[registry + "|" + scope] = (token, Date().addingTimeInterval(Double(max(expiresIn, 60)) - 10))
    }

    func basic(registry: String) -> String? { basics[registry] }
    func setBasic(registry: String, _ value: String) { basics[registry] = value }
}

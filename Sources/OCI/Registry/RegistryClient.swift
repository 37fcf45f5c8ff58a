import AsyncHTTPClient
import FoundationEssentials
import CairnBasics
import Processes
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How a client connects and retries.
public struct RegistryConfiguration: Sendable {
    /// Registries (`host[:port]`) reached without TLS verification: HTTPS that skips certificate
    /// checks is tried first, then plain HTTP (as the reference lifecycle and pack treat
    /// `CNB_INSECURE_REGISTRIES`); only these.
    public var insecureRegistries: Set<String> = []
    /// Extra trusted CA certificates (PEM file) for private TLS registries.
    public var caBundlePath: String?
    public var credentials: CredentialStore
    public var retry = RetryPolicy()
    /// Blobs up to this size are uploaded in one PUT; larger ones in resumable chunks.
    public var monolithicUploadLimit: Int64 = 64 << 20
    public var chunkSize: Int64 = 16 << 20
    /// Blob transfers in flight at once.
    public var parallelTransfers = 3
    public var userAgent = "cairn/0.1"
    /// Told before each retry (what failed, where, the wait): long waits are not silent.
    public var onRetry: (@Sendable (String) -> Void)?
    /// At most this many requests per second to each registry (`--rate`); nil: no cap.
    public var requestsPerSecond: Double?

    public init(credentials: CredentialStore) {
        self.credentials = credentials
    }
}

/// Retry with exponential backoff for 408/429/5xx and dropped connections; `Retry-After` is
/// honoured (capped).
public struct RetryPolicy: Sendable {
    public var attempts = 6
    public var initialDelay = 0.25
    public var maxDelay = 8.0
    public var maxRetryAfter = 30.0

    public init() {}

    func delay(attempt: Int, retryAfter: Double?) -> Double {
        if let retryAfter { return min(max(0, retryAfter), maxRetryAfter) }
        return min(maxDelay, initialDelay * pow(2, Double(attempt - 1)))
    }
}

/// A minimal OCI distribution client over AsyncHTTPClient: auth challenges (Bearer with token
/// reuse per scope, Basic), retries, redirects that drop credentials when the host changes.
public final class RegistryClient: Sendable {
    public let configuration: RegistryConfiguration
    let http: HTTPClient
    /// For insecure registries: HTTPS without certificate verification.
    let unverifiedHTTP: HTTPClient?
    /// The scheme each insecure registry answered on ("https" until it fails the TLS handshake).
    let schemes = Mutex<[String: String]>([:])
    let tokens = TokenCache()
    /// Per registry, when its next request may start (`requestsPerSecond`).
    let nextSlot = Mutex<[String: Double]>([:])

    /// - Throws: when the CA bundle cannot be loaded.
    public init(configuration: RegistryConfiguration) throws {
        self.configuration = configuration
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = configuration.caBundlePath {
            tls.additionalTrustRoots = [.file(ca)]
        }
        var config = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                              timeout: .init(connect: .seconds(15), read: .seconds(120)))
        config.httpVersion = .http1Only
        // Failed connections are retried by `send` (with backoff, for idempotent calls only);
        // the pool's own retrying would hide a TLS failure behind the connect timeout.
        config.connectionPool.retryConnectionEstablishment = false
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        if configuration.insecureRegistries.isEmpty {
            unverifiedHTTP = nil
        } else {
            var unverified = config
            var insecureTLS = TLSConfiguration.makeClientConfiguration()
            insecureTLS.certificateVerification = .none
            unverified.tlsConfiguration = insecureTLS
            unverifiedHTTP = HTTPClient(eventLoopGroupProvider: .singleton, configuration: unverified)
        }
    }

    /// Must be called before the client is released.
    public func shutdown() async throws {
        try await http.shutdown()
        try await unverifiedHTTP?.shutdown()
    }

    func baseURL(_ registry: String) -> String {
        let host = registry == ImageReference.dockerHub ? "registry-1.docker.io" : registry
        let scheme = configuration.insecureRegistries.contains(registry)
            ? schemes.withLock { $0[registry] == "http" ? "http" : "https" } : "https"
        return "\(scheme)://\(host)"
    }

    /// The client for a URL: certificate checks skipped only for the insecure registries.
    func client(for registry: String) -> HTTPClient {
        configuration.insecureRegistries.contains(registry) ? (unverifiedHTTP ?? http) : http
    }

    /// After a failed TLS connection to an insecure registry, whether to retry it over plain
    /// HTTP: true (and the URL rewritten) the first time.
    func fallBackToHTTP(_ registry: String, url: inout String, error: any Error) -> Bool {
        guard configuration.insecureRegistries.contains(registry), url.hasPrefix("https://") else { return false }
        let switched = schemes.withLock { schemes -> Bool in
            guard schemes[registry] != "https-confirmed" else { return false }
            schemes[registry] = "http"
            return true
        }
        guard switched else { return false }
        trace("TLS to \(registry) failed (\(Self.describe(error))); trying plain HTTP")
        url = "http://" + url.dropFirst("https://".count)
        return true
    }

    /// Records that an insecure registry answered over HTTPS, so later failures are not taken
    /// for a plain-HTTP server.
    func confirmScheme(_ registry: String, url: String) {
        guard configuration.insecureRegistries.contains(registry), url.hasPrefix("https://") else { return }
        schemes.withLock { if $0[registry] == nil { $0[registry] = "https-confirmed" } }
    }

    /// A request description that can be rebuilt for retries (stream bodies are one-shot).
    struct Call: Sendable {
        var method: HTTPMethod
        var url: String
        var headers: [(String, String)] = []
        var body: (@Sendable () throws -> HTTPClientRequest.Body)?
        var idempotent = true
    }

    /// A response whose body has not been read.
    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: HTTPClientResponse.Body
        var url: String
    }

    /// Sends `call` with auth and retries. 4xx other than 401/408/429 are returned to the caller.
    func send(_ call: Call, registry: String, repository: String, actions: String,
              retryStatuses: Set<Int> = [408, 429, 500, 502, 503, 504]) async throws -> Response {
        var call = call
        let http = client(for: registry)
        var attempt = 0
        var authRetried = false
        var lastError = ""
        let path = Self.safePath(call.url)
        while true {
            attempt += 1
            do {
                let (response, url) = try await execute(call, on: http, registry: registry, repository: repository, actions: actions)
                let status = Int(response.status.code)
                if status == 401 && !authRetried {
                    authRetried = true
                    let challenge = response.headers.first(name: "WWW-Authenticate") ?? ""
                    _ = try? await response.body.collect(upTo: 1 << 20)
                    try await answer(challenge: challenge, registry: registry, repository: repository, actions: actions)
                    attempt -= 1
                    continue
                }
                if status == 401 {
                    _ = try? await response.body.collect(upTo: 1 << 20)
                    let had = try configuration.credentials.credential(for: registry) != nil
                    throw RegistryError.unauthorized(registry: registry, repository: repository, hadCredentials: had)
                }
                if retryStatuses.contains(status) && call.idempotent && attempt < configuration.retry.attempts {
                    let retryAfter = response.headers.first(name: "Retry-After").flatMap(Double.init)
                    _ = try? await response.body.collect(upTo: 1 << 20)
                    lastError = "HTTP \(status)"
                    noteRetry(path, lastError, attempt: attempt, retryAfter: retryAfter)
                    try await backoff(attempt: attempt, retryAfter: retryAfter)
                    continue
                }
                if retryStatuses.contains(status) {
                    let detail = await Self.errorDetail(response.body)
                    throw RegistryError.retriesExhausted(method: call.method.rawValue, path: path, attempts: attempt,
                                                         lastError: "HTTP \(status)\(detail.isEmpty ? "" : ": " + detail)")
                }
                return Response(status: status, headers: response.headers, body: response.body, url: url)
            } catch let error as RegistryError {
                throw error
            } catch let error as CredentialError {
                throw error
            } catch {
                // Connection-level failure: retry idempotent calls. TLS failures are not transient.
                // An insecure registry's first TLS failure is its usual answer: no description
                // (describing an error reflects over it: 2-3% of a registry rebase's CPU samples).
                if fallBackToHTTP(registry, url: &call.url, error: error) {
                    attempt -= 1
                    continue
                }
                lastError = Self.describe(error)
                if error is NIOSSLError || "\(error)".contains("handshake") || "\(error)".contains("SSL") {
                    throw RegistryError.connection(registry: registry, detail: lastError + hint(registry, error))
                }
                // A name the resolver says does not exist (EAI_NONAME) does not come into being
                // by retrying; a temporary resolver failure (EAI_AGAIN) is retried.
                if Self.isUnknownHost(error) {
                    throw RegistryError.connection(registry: registry, detail: "the host name does not resolve (\(lastError))")
                }
                guard call.idempotent, attempt < configuration.retry.attempts else {
                    if attempt == 1 && !call.idempotent { throw RegistryError.connection(registry: registry, detail: lastError + hint(registry, error)) }
                    throw RegistryError.retriesExhausted(method: call.method.rawValue, path: path, attempts: attempt, lastError: lastError + hint(registry, error))
                }
                noteRetry(path, lastError, attempt: attempt, retryAfter: nil)
                try await backoff(attempt: attempt, retryAfter: nil)
            }
        }
    }

    /// One try of `call`: headers and credentials, then redirects followed by hand (blob
    /// storage), without credentials on another host. Returns the response and its final URL.
    private func execute(_ call: Call, on http: HTTPClient, registry: String, repository: String,
                         actions: String) async throws -> (HTTPClientResponse, String) {
        let path = Self.safePath(call.url)
        var request = HTTPClientRequest(url: call.url)
        request.method = call.method
        request.headers.add(name: "User-Agent", value: configuration.userAgent)
        for (k, v) in call.headers { request.headers.add(name: k, value: v) }
        if let auth = try await authorization(registry: registry, repository: repository, actions: actions) {
            request.headers.replaceOrAdd(name: "Authorization", value: auth)
        }
        if let body = call.body { request.body = try body() }
        try await pace(registry)
        trace("→ \(call.method.rawValue) \(path) [\(actions)]")
        var response = try await http.execute(request, timeout: .seconds(600))
        trace("← \(response.status.code) \(call.method.rawValue) \(path)")
        confirmScheme(registry, url: call.url)
        var url = call.url
        var hops = 0
        while [301, 302, 303, 307, 308].contains(Int(response.status.code)), call.method == .GET || call.method == .HEAD,
              let location = response.headers.first(name: "Location"), hops < 5 {
            hops += 1
            let next = URL(string: location, relativeTo: URL(string: url))?.absoluteString ?? location
            var redirected = HTTPClientRequest(url: next)
            redirected.method = call.method
            if URL(string: next)?.host == URL(string: url)?.host, let auth = request.headers.first(name: "Authorization") {
                redirected.headers.add(name: "Authorization", value: auth)
            }
            url = next
            response = try await http.execute(redirected, timeout: .seconds(600))
        }
        return (response, url)
    }

    /// Waits for this registry's next request slot when a rate is set: slots are handed out
    /// 1/rate seconds apart, so concurrent tasks together stay under the cap.
    func pace(_ registry: String) async throws {
        guard let rate = configuration.requestsPerSecond, rate > 0 else { return }
        let t = monotonicMilliseconds() / 1000
        let wait = nextSlot.withLock { slots -> Double in
            let slot = max(t, slots[registry] ?? t)
            slots[registry] = slot + 1 / rate
            return slot - t
        }
        if wait > 0 { try await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
    }

    /// Waits before retry `attempt` (the policy's delay, or the server's Retry-After).
    func noteRetry(_ path: String, _ error: String, attempt: Int, retryAfter: Double?) {
        let wait = configuration.retry.delay(attempt: attempt, retryAfter: retryAfter)
        configuration.onRetry?("\(path): \(error); retrying in \((wait * 100).rounded() / 100) s (attempt \(attempt + 1) of \(configuration.retry.attempts))")
    }

    func backoff(attempt: Int, retryAfter: Double?) async throws {
        try await Task.sleep(nanoseconds: UInt64(configuration.retry.delay(attempt: attempt, retryAfter: retryAfter) * 1e9))
    }

    private func hint(_ registry: String, _ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return " (give the CA that signed it with --ca-cert FILE)"
        }
        if !configuration.insecureRegistries.contains(registry) && (text.contains("SSL") || text.contains("TLS") || text.contains("handshake")) {
            return " (if \(registry) serves plain HTTP, name it with --insecure-registry \(registry))"
        }
        return ""
    }

    /// The path of a URL without its query (upload locations carry session state).
    static func safePath(_ url: String) -> String {
        guard let u = URLComponents(string: url) else { return url }
        // The host too: a failure names the registry it is about (never the query: tokens).
        return (u.host.map { $0 + (u.port.map { ":\($0)" } ?? "") } ?? "") + u.path
    }

    static func isUnknownHost(_ error: any Error) -> Bool {
        let text = "\(error)"
        return text.contains("UnknownHost") && (text.contains("error -2)") || text.contains("Name or service not known"))
    }

    static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") { return "its TLS certificate is not trusted" }
        if error is NIOSSLError { return "TLS handshake failed" }
        if text.contains("Connection refused") { return "connection refused" }
        if text.contains("Connection reset") || text.contains("remoteConnectionClosed") { return "connection closed by the server" }
        if error is HTTPParserError { return "the server sent a malformed HTTP response (\(text))" }
        return text
    }

    /// The registry's `errors[].message` (distribution-spec, Error Codes), shortened.
    static func errorDetail(_ body: HTTPClientResponse.Body) async -> String {
        guard let buffer = try? await body.collect(upTo: 1 << 20) else { return "" }
        let data = Data(buffer.readableBytesView)
        struct Errors: Decodable {
            struct E: Decodable {
                var code: String?
                var message: String?
            }
            var errors: [E]?
        }
        if let e = try? JSONDecoder().decode(Errors.self, from: data), let first = e.errors?.first {
            return [first.code, first.message].compactMap { $0 }.joined(separator: ": ")
        }
        return String(decoding: data.prefix(200), as: UTF8.self).trimmed
    }
}

/// With `CAIRN_TRACE_HTTP=1`, request lines (milliseconds since the first, method, path without
/// query, status) go to stderr; headers and bodies never do.
let traceHTTP = ProcessInfo.processInfo.environment["CAIRN_TRACE_HTTP"] == "1"
let traceStart = monotonicMilliseconds()
func trace(_ s: @autoclosure () -> String) {
    guard traceHTTP else { return }
    let ms = monotonicMilliseconds() - traceStart
    StandardStream.error.write("[http \((ms * 10).rounded() / 10) ms] " + s() + "\n")
}


import AsyncHTTPClient
import FoundationEssentials
import CairnBasics
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// A repository in a registry.
public struct Repository: Hashable, Sendable, CustomStringConvertible {
    public var registry: String
    public var name: String
    public init(registry: String, name: String) {
        self.registry = registry
        self.name = name
    }
    public init(_ ref: ImageReference) {
        self.init(registry: ref.registry, name: ref.repository)
    }
    public var description: String { "\(registry)/\(name)" }
}

/// What happened to one blob in a push.
public enum BlobOutcome: Sendable, Hashable {
    case existed
    case mounted(from: String)
    case uploaded(bytes: Int64)
    case downloaded(bytes: Int64)
    case present
}

/// Progress of blob transfers; called from any task.
public protocol TransferProgress: Sendable {
    func started(_ digest: Digest, size: Int64)
    func advanced(_ digest: Digest, by bytes: Int)
    func finished(_ digest: Digest, _ outcome: BlobOutcome)
}

extension RegistryClient {
    static let manifestAccept = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList]
        .joined(separator: ", ")

    func url(_ repo: Repository, _ suffix: String) -> String {
        "\(baseURL(repo.registry))/v2/\(repo.name)/\(suffix)"
    }

    /// Checks the registry answers `/v2/` (authenticating when challenged).
    public func ping(_ registry: String) async throws {
        let r = try await send(Call(method: .GET, url: baseURL(registry) + "/v2/"), registry: registry, repository: "", actions: "pull")
        _ = try? await r.body.collect(upTo: 1 << 20)
        guard r.status == 200 else { throw RegistryError.http(method: "GET", path: "/v2/", status: r.status, detail: "") }
    }

    /// Fetches a manifest or index by tag or digest; verifies a digest reference.
    public func manifest(_ repo: Repository, reference: String) async throws -> (data: Data, mediaType: String, digest: Digest) {
        let call = Call(method: .GET, url: url(repo, "manifests/\(reference)"), headers: [("Accept", Self.manifestAccept)])
        let r = try await send(call, registry: repo.registry, repository: repo.name, actions: "pull")
        guard r.status == 200 else {
            let detail = await Self.errorDetail(r.body)
            if r.status == 404 { throw RegistryError.notFound(what: "\(repo):\(reference)") }
            if r.status == 403 { throw RegistryError.denied(registry: repo.registry, repository: repo.name, detail: detail) }
            throw RegistryError.http(method: "GET", path: Self.safePath(call.url), status: r.status, detail: detail)
        }
        let buffer = try await r.body.collect(upTo: 8 << 20)
        let data = Data(buffer.readableBytesView)
        let digest = Digest.sha256(of: data)
        if let expected = Digest(reference), expected.algorithm == "sha256", expected != digest {
            throw RegistryError.digestMismatch(what: "manifest \(repo)@\(reference)", expected: expected, actual: digest)
        }
        var mediaType = r.headers.first(name: "Content-Type")?.split(separator: ";").first.map { $0.trimmed } ?? ""
        struct Declared: Decodable { var mediaType: String? }
        if let declared = (try? JSONDecoder().decode(Declared.self, from: data))?.mediaType {
            if !mediaType.isEmpty && mediaType != declared && MediaType.manifests.union(MediaType.indexes).contains(mediaType) {
                throw RegistryError.badResponse("manifest \(repo):\(reference) declares \(declared) but was served as \(mediaType)")
            }
            mediaType = declared
        }
        return (data, mediaType, digest)
    }

    /// The repository's tags (`GET /v2/<name>/tags/list`), following `Link` pages.
    public func tags(_ repo: Repository) async throws -> [String] {
        struct Page: Decodable { var tags: [String]? }
        var tags: [String] = []
        var next: String? = url(repo, "tags/list?n=1000")
        while let current = next {
            let r = try await send(Call(method: .GET, url: current), registry: repo.registry, repository: repo.name, actions: "pull")
            guard r.status == 200 else {
                let detail = await Self.errorDetail(r.body)
                if r.status == 404 { throw RegistryError.notFound(what: "repository \(repo)") }
                if r.status == 403 { throw RegistryError.denied(registry: repo.registry, repository: repo.name, detail: detail) }
                throw RegistryError.http(method: "GET", path: Self.safePath(current), status: r.status, detail: detail)
            }
            let buffer = try await r.body.collect(upTo: 32 << 20)
            let page = try CanonicalJSON.decode(Page.self, from: Data(buffer.readableBytesView), what: "tag list of \(repo)")
            tags += page.tags ?? []
            // `Link: </v2/<name>/tags/list?last=x&n=1000>; rel="next"`
            next = r.headers.first(name: "Link").flatMap { link -> String? in
                guard link.contains("rel=\"next\""), let open = link.firstIndex(of: "<"), let close = link.firstIndex(of: ">"), open < close else { return nil }
                let path = String(link[link.index(after: open)..<close])
                return path.hasPrefix("http") ? path : baseURL(repo.registry) + path
            }
        }
        return tags
    }

    /// Whether a blob exists (HEAD).
    public func blobExists(_ repo: Repository, _ digest: Digest) async throws -> Bool {
        let r = try await send(Call(method: .HEAD, url: url(repo, "blobs/\(digest)")), registry: repo.registry, repository: repo.name, actions: "pull")
        // Even an empty body must be consumed, or the connection never returns to the pool.
        _ = try? await r.body.collect(upTo: 1 << 20)
        switch r.status {
        case 200: return true
        case 404: return false
        default: throw RegistryError.http(method: "HEAD", path: "/v2/\(repo.name)/blobs/\(digest)", status: r.status, detail: "")
        }
    }

    /// Downloads a blob into the store, verifying size and digest; a dropped connection resumes
    /// with a Range request (or restarts when the registry ignores Range); a copy with the wrong
    /// digest is fetched again once.
    public func download(_ repo: Repository, _ descriptor: Descriptor, into session: WriteSession,
                         progress: (any TransferProgress)?) async throws {
        let pending = try session.beginBlob()
        let what = "blob \(descriptor.digest.short) of \(repo)"
        var failures = 0
        var refetched = false
        while true {
            var headers: [(String, String)] = []
            if pending.count > 0 { headers.append(("Range", "bytes=\(pending.count)-")) }
            do {
                let r = try await send(Call(method: .GET, url: url(repo, "blobs/\(descriptor.digest)"), headers: headers),
                                       registry: repo.registry, repository: repo.name, actions: "pull")
                switch r.status {
                case 200:
                    if pending.count > 0 { try pending.reset() }
                case 206:
                    break
                case 404:
                    throw RegistryError.notFound(what: what)
                default:
                    throw RegistryError.http(method: "GET", path: "/v2/\(repo.name)/blobs/\(descriptor.digest)", status: r.status,
                                             detail: await Self.errorDetail(r.body))
                }
                for try await buffer in r.body {
                    try buffer.withUnsafeReadableBytes { try pending.write($0) }
                    progress?.advanced(descriptor.digest, by: buffer.readableBytes)
                    if pending.count > descriptor.size { break }
                }
                try pending.commit(expected: descriptor.digest, size: descriptor.size, what: what)
                return
            } catch let e as RegistryError {
                if case .digestMismatch = e, !refetched {
                    // Bytes damaged on the way (a proxy, a bad cache node): fetched once more from
                    // the start; a second wrong copy is an error.
                    refetched = true
                    try pending.reset()
                    continue
                }
                // A short body (dropped mid-blob) surfaces as a size mismatch: resume.
                guard case .sizeMismatch(_, _, let got) = e, got < descriptor.size else { throw e }
                failures += 1
                if failures >= configuration.retry.attempts { throw e }
            } catch {
                failures += 1
                if failures >= configuration.retry.attempts {
                    throw RegistryError.retriesExhausted(method: "GET", path: "/v2/\(repo.name)/blobs/\(descriptor.digest)",
                                                         attempts: failures, lastError: Self.describe(error))
                }
            }
            try await backoff(attempt: failures, retryAfter: nil)
        }
    }

    /// Uploads a blob from a file unless the repository has it: a cross-repository mount first
    /// (when `mountFrom` names a repository of the same registry), then a monolithic PUT for
    /// small blobs or resumable chunks for large ones.
    public func upload(_ repo: Repository, _ descriptor: Descriptor, path: String, mountFrom: [String],
                       progress: (any TransferProgress)?) async throws -> BlobOutcome {
        if try await blobExists(repo, descriptor.digest) { return .existed }
        var failures = 0
        while true {
            do {
                // Start a session, trying a mount first.
                let (mounted, session) = try await mount(repo, descriptor, from: mountFrom)
                if let mounted { return mounted }
                var sessionURL = session
                if sessionURL == nil { sessionURL = try await startUpload(repo) }
                let bytes = descriptor.size <= configuration.monolithicUploadLimit
                    ? try await putMonolithic(repo, descriptor, path: path, session: sessionURL!, progress: progress)
                    : try await putChunked(repo, descriptor, path: path, session: sessionURL!, progress: progress)
                return .uploaded(bytes: bytes)
            } catch let e as RegistryError {
                guard e.restartsUpload else { throw e }
                failures += 1
                if failures >= configuration.retry.attempts { throw e }
                try await backoff(attempt: failures, retryAfter: nil)
            }
        }
    }

    /// Tries a cross-repository mount from each known source repository of this registry.
    /// - Returns: `.mounted` on success, else the upload session a refused mount opened (if any).
    func mount(_ repo: Repository, _ descriptor: Descriptor, from sources: [String]) async throws -> (BlobOutcome?, String?) {
        for source in sources where source.hasPrefix(repo.registry + "/") {
            let from = String(source.dropFirst(repo.registry.count + 1))
            guard from != repo.name else { continue }
            let r = try await send(Call(method: .POST, url: url(repo, "blobs/uploads/?mount=\(descriptor.digest)&from=\(from)"),
                                        headers: [("Content-Length", "0")]),
                                   registry: repo.registry, repository: repo.name, actions: "pull,push")
            _ = try? await r.body.collect(upTo: 1 << 20)
            if r.status == 201 { return (.mounted(from: source), nil) }
            if r.status == 202, let loc = r.headers.first(name: "Location") { return (nil, resolve(loc, against: r.url)) }
        }
        return (nil, nil)
    }

    /// For a blob with no local copy (a metadata-only pull): whether the repository has it or a
    /// cross-repository mount brings it; nil when neither.
    public func existsOrMounted(_ repo: Repository, _ descriptor: Descriptor, mountFrom: [String]) async throws -> BlobOutcome? {
        if try await blobExists(repo, descriptor.digest) { return .existed }
        return try await mount(repo, descriptor, from: mountFrom).0
    }

    func startUpload(_ repo: Repository) async throws -> String {
        let call = Call(method: .POST, url: url(repo, "blobs/uploads/"), headers: [("Content-Length", "0")])
        let r = try await send(call, registry: repo.registry, repository: repo.name, actions: "pull,push")
        _ = try? await r.body.collect(upTo: 1 << 20)
        guard r.status == 202, let loc = r.headers.first(name: "Location") else {
            if r.status == 403 { throw RegistryError.denied(registry: repo.registry, repository: repo.name, detail: "push not allowed") }
            throw RegistryError.http(method: "POST", path: "/v2/\(repo.name)/blobs/uploads/", status: r.status, detail: "")
        }
        return resolve(loc, against: r.url)
    }

    func resolve(_ location: String, against base: String) -> String {
        URL(string: location, relativeTo: URL(string: base))?.absoluteString ?? location
    }

    static func withQuery(_ url: String, _ name: String, _ value: String) -> String {
        guard var c = URLComponents(string: url) else { return url }
        c.queryItems = (c.queryItems ?? []) + [URLQueryItem(name: name, value: value)]
        // '+' in a digest algorithm would be read as a space; encode it.
        c.percentEncodedQuery = c.percentEncodedQuery?.replacing("+", with: "%2B")
        return c.string ?? url
    }

    func putMonolithic(_ repo: Repository, _ d: Descriptor, path: String, session: String,
                       progress: (any TransferProgress)?) async throws -> Int64 {
        let size = d.size
        let call = Call(method: .PUT, url: Self.withQuery(session, "digest", d.digest.description),
                        headers: [("Content-Type", "application/octet-stream")],
                        body: { .stream(FileChunks(path: path, offset: 0, length: size, bufferSize: 1 << 20,
                                                   onBytes: { progress?.advanced(d.digest, by: $0) }),
                                        length: .known(size)) },
                        idempotent: false)
        let r = try await send(call, registry: repo.registry, repository: repo.name, actions: "pull,push")
        let detail = r.status == 201 ? "" : await Self.errorDetail(r.body)
        if r.status == 201 { _ = try? await r.body.collect(upTo: 1 << 20) }
        guard r.status == 201 else {
            throw RegistryError.http(method: "PUT", path: Self.safePath(session), status: r.status, detail: detail)
        }
        return size
    }

    /// Chunked upload (PATCH with Content-Range, then PUT ?digest=). After a failed chunk the
    /// session's offset is read back (GET) and the upload resumes from there.
    func putChunked(_ repo: Repository, _ d: Descriptor, path: String, session: String,
                    progress: (any TransferProgress)?) async throws -> Int64 {
        var location = session
        var offset: Int64 = 0
        var sent: Int64 = 0
        var failures = 0
        while offset < d.size {
            let n = min(configuration.chunkSize, d.size - offset)
            let start = offset
            let call = Call(method: .PATCH, url: location,
                            headers: [("Content-Type", "application/octet-stream"), ("Content-Range", "\(start)-\(start + n - 1)")],
                            body: { .stream(FileChunks(path: path, offset: start, length: n, bufferSize: 1 << 20,
                                                       onBytes: { progress?.advanced(d.digest, by: $0) }),
                                            length: .known(n)) },
                            idempotent: false)
            do {
                let r = try await send(call, registry: repo.registry, repository: repo.name, actions: "pull,push")
                _ = try? await r.body.collect(upTo: 1 << 20)
                guard r.status == 202 else {
                    throw RegistryError.http(method: "PATCH", path: Self.safePath(location), status: r.status, detail: "")
                }
                sent += n
                if let loc = r.headers.first(name: "Location") { location = resolve(loc, against: r.url) }
                offset = Self.rangeEnd(r.headers).map { $0 + 1 } ?? (start + n)
            } catch let e as RegistryError {
                guard e.restartsUpload else { throw e }
                failures += 1
                if failures >= configuration.retry.attempts { throw e }
                try await backoff(attempt: failures, retryAfter: nil)
                // Ask the registry how much it has (distribution-spec: GET on the session).
                let status = try await send(Call(method: .GET, url: location), registry: repo.registry, repository: repo.name, actions: "pull,push")
                _ = try? await status.body.collect(upTo: 1 << 20)
                guard status.status == 204 else { throw e }  // session gone: restart the whole blob
                if let loc = status.headers.first(name: "Location") { location = resolve(loc, against: status.url) }
                offset = Self.rangeEnd(status.headers).map { $0 + 1 } ?? 0
            }
        }
        let close = Call(method: .PUT, url: Self.withQuery(location, "digest", d.digest.description),
                         headers: [("Content-Length", "0")], idempotent: false)
        let r = try await send(close, registry: repo.registry, repository: repo.name, actions: "pull,push")
        let detail = r.status == 201 ? "" : await Self.errorDetail(r.body)
        guard r.status == 201 else { throw RegistryError.http(method: "PUT", path: Self.safePath(location), status: r.status, detail: detail) }
        return sent
    }

    /// The end of a `Range: 0-<end>` header.
    static func rangeEnd(_ headers: HTTPHeaders) -> Int64? {
        guard let range = headers.first(name: "Range"), let dash = range.lastIndex(of: "-") else { return nil }
        return Int64(range[range.index(after: dash)...])
    }

    /// PUTs a manifest by tag or digest. Returns the response headers (`OCI-Subject` says
    /// whether the registry processed a manifest's `subject`).
    @discardableResult
    public func putManifest(_ repo: Repository, reference: String, data: Data, mediaType: String) async throws -> HTTPHeaders {
        let call = Call(method: .PUT, url: url(repo, "manifests/\(reference)"), headers: [("Content-Type", mediaType)],
                        body: { .bytes(ByteBuffer(bytes: data)) })
        let r = try await send(call, registry: repo.registry, repository: repo.name, actions: "pull,push")
        let detail = r.status == 201 ? "" : await Self.errorDetail(r.body)
        guard r.status == 201 else {
            if r.status == 403 { throw RegistryError.denied(registry: repo.registry, repository: repo.name, detail: detail) }
            throw RegistryError.http(method: "PUT", path: "/v2/\(repo.name)/manifests/\(reference)", status: r.status, detail: detail)
        }
        _ = try? await r.body.collect(upTo: 1 << 20)
        return r.headers
    }
}

import FoundationEssentials
import NIOCore
import NIOHTTP1

/// OCI 1.1 referrers (distribution-spec "Listing Referrers", "Pushing Manifests with Subject"):
/// artifacts that name another manifest in their `subject`. Registries with the referrers API
/// index them themselves; for those without it (docker-registry 2.8, many mirrors) the client
/// keeps the "referrers tag schema" index, `<alg>-<hex>`, as the spec requires.
extension RegistryClient {
    /// The referrers tag of `digest`: the algorithm truncated to 32 characters, `-`, the encoded
    /// part truncated to 64, characters a tag cannot hold replaced by `-`.
    public static func referrersTag(for digest: Digest) -> String {
        let raw = String(digest.algorithm.prefix(32)) + "-" + String(digest.encoded.prefix(64))
        return String(raw.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-") ? $0 : "-" })
    }

    /// The referrers of `digest`, filtered by `artifactType` when given: from the referrers API,
    /// or, when that answers 404, from the referrers tag (none when that is missing too).
    public func referrers(_ repo: Repository, of digest: Digest, artifactType: String? = nil) async throws -> [Descriptor] {
        // Filtered here, not with `?artifactType=`: a registry may ignore the filter, and the tag
        // schema has none.
        let call = Call(method: .GET, url: url(repo, "referrers/\(digest)"), headers: [("Accept", MediaType.ociIndex)])
        let r = try await send(call, registry: repo.registry, repository: repo.name, actions: "pull")
        let index: ImageIndex
        switch r.status {
        case 200:
            let buffer = try await r.body.collect(upTo: 8 << 20)
            index = try CanonicalJSON.decode(ImageIndex.self, from: Data(buffer.readableBytesView), what: "referrers of \(repo)@\(digest)")
        case 404:
            _ = try? await r.body.collect(upTo: 1 << 20)
            index = try await referrersTagIndex(repo, of: digest) ?? ImageIndex()
        default:
            let detail = await Self.errorDetail(r.body)
            throw RegistryError.http(method: "GET", path: Self.safePath(call.url), status: r.status, detail: detail)
        }
        guard let artifactType else { return index.manifests }
        return index.manifests.filter { $0.artifactType == artifactType }
    }

    /// Pushes an artifact manifest that has a `subject`, by its digest. When the registry does not
    /// say it processed the subject (no `OCI-Subject` header), adds the artifact to the subject's
    /// referrers tag index, once. Returns whether that fallback was used.
    @discardableResult
    public func putReferrer(_ repo: Repository, manifest data: Data) async throws -> Bool {
        let manifest = try CanonicalJSON.decode(Manifest.self, from: data, what: "referrer manifest")
        guard let subject = manifest.subject else {
            throw RegistryError.badResponse("a referrer manifest for \(repo) has no subject")
        }
        let digest = Digest.sha256(of: data)
        let headers = try await putManifest(repo, reference: digest.description, data: data, mediaType: MediaType.ociManifest)
        if headers.first(name: "OCI-Subject") != nil { return false }
        let tag = Self.referrersTag(for: subject.digest)
        var index = try await referrersTagIndex(repo, of: subject.digest) ?? ImageIndex()
        guard !index.manifests.contains(where: { $0.digest == digest }) else { return true }
        var entry = Descriptor(mediaType: MediaType.ociManifest, digest: digest, size: Int64(data.count), annotations: manifest.annotations)
        entry.artifactType = manifest.artifactType ?? manifest.config.mediaType
        index.manifests.append(entry)
        try await putManifest(repo, reference: tag, data: try CanonicalJSON.encode(index), mediaType: MediaType.ociIndex)
        return true
    }

    /// The index under the referrers tag of `digest`; nil when the tag does not exist. Anything
    /// else under that tag is an error (the spec says not to overwrite it).
    func referrersTagIndex(_ repo: Repository, of digest: Digest) async throws -> ImageIndex? {
        let tag = Self.referrersTag(for: digest)
        let found: (data: Data, mediaType: String, digest: Digest)
        do { found = try await manifest(repo, reference: tag) } catch RegistryError.notFound { return nil }
        guard found.mediaType == MediaType.ociIndex else {
            throw RegistryError.badResponse("\(repo):\(tag) is the referrers tag of \(digest) but holds \(found.mediaType), not an OCI image index; left unchanged")
        }
        return try CanonicalJSON.decode(ImageIndex.self, from: found.data, what: "\(repo):\(tag)")
    }
}

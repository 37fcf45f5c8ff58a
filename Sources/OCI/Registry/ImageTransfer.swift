import FoundationEssentials
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Moves images between the local store and registries.
public struct ImageTransfer: Sendable {
    public let client: RegistryClient
    public let store: ImageStore

    public init(client: RegistryClient, store: ImageStore) {
        self.client = client
        self.store = store
    }

    /// Pulls `reference` (choosing `platform` from an index) into the store and names it there.
    /// Blobs already in the store are not downloaded; every blob is verified before it is stored.
    /// - Returns: the stored image.
    /// With `layers: false` only the manifest and config are fetched (enough to read labels and
    /// reuse layers the registry already has); the layers' repository is still recorded so a
    /// push can mount them. With `naming: false` the image is not named in the store (a scratch
    /// store of a registry operation, which reads it by digest): its index is not rewritten.
    public func pull(_ reference: ImageReference, platform: Platform = .host, layers: Bool = true, naming: Bool = true,
                     progress: (any TransferProgress)? = nil) async throws -> StoredImage {
        let session = try store.beginWriteSession()
        let repo = Repository(reference)
        if !naming, let local = try localManifest(reference, layers: layers) { return local }
        let tagOrDigest = reference.digest?.description ?? reference.tag ?? ImageReference.defaultTag
        var (data, mediaType, digest) = try await client.manifest(repo, reference: tagOrDigest)
        if MediaType.indexes.contains(mediaType) {
            let index = try CanonicalJSON.decode(ImageIndex.self, from: data, what: "index \(reference)")
            let candidates = index.manifests.filter { $0.platform != nil }
            guard let chosen = candidates.first(where: {
                $0.platform!.os == platform.os && $0.platform!.architecture == platform.architecture
                    && (platform.variant == nil || $0.platform!.variant == nil || $0.platform!.variant == platform.variant)
            }) else {
                throw RegistryError.noMatchingPlatform(reference: reference.familiar, platform: platform.description,
                                                       available: candidates.map { $0.platform!.description })
            }
            (data, mediaType, digest) = try await client.manifest(repo, reference: chosen.digest.description)
        }
        guard MediaType.manifests.contains(mediaType) else {
            throw OCIError.unsupportedMediaType(what: reference.familiar, mediaType: mediaType)
        }
        let manifest = try CanonicalJSON.decode(Manifest.self, from: data, what: "manifest of \(reference.familiar)")
        let blobs = [manifest.config] + manifest.layers
        try await forEachBlob(layers ? blobs : [manifest.config]) { d in
            if store.hasBlob(d.digest) {
                progress?.finished(d.digest, .present)
                return
            }
            progress?.started(d.digest, size: d.size)
            try await client.download(repo, d, into: session, progress: progress)
            progress?.finished(d.digest, .downloaded(bytes: d.size))
        }
        let descriptor = try session.writeBlob(data, mediaType: mediaType)
        precondition(descriptor.digest == digest)
        try store.recordSources(blobs.map(\.digest) + [digest], repository: repo.description)
        let name = reference.digest != nil && reference.tag == nil ? "\(reference.familiarName)@\(digest)" : reference.withDefaultTag.familiar
        if naming { try session.tag(descriptor, as: name) }
        return try withExtendedLifetime(session) { try store.load(descriptor, name: name) }
    }

    /// A digest reference whose manifest (and config, and layers when asked for) this store has
    /// already: the content is what the digest says, so the registry need not be asked again (a
    /// campaign reads each old and new image several times). Nil for anything else.
    func localManifest(_ reference: ImageReference, layers: Bool) throws -> StoredImage? {
        guard let digest = reference.digest, store.hasBlob(digest) else { return nil }
        let data = try store.readBlob(digest)
        guard let manifest = try? CanonicalJSON.decode(Manifest.self, from: data, what: "manifest \(digest)"),
              let mediaType = manifest.mediaType, MediaType.manifests.contains(mediaType),
              store.hasBlob(manifest.config.digest), !layers || manifest.layers.allSatisfy({ store.hasBlob($0.digest) }) else { return nil }
        let descriptor = Descriptor(mediaType: mediaType, digest: digest, size: Int64(data.count))
        return try store.load(descriptor, name: "\(reference.familiarName)@\(digest)")
    }

    /// Pushes a stored image to `reference`: blobs first (skipping those the repository has,
    /// mounting from repositories they are known in), the manifest last — so the registry never
    /// holds a manifest naming a missing blob. The manifest is put once, by tag (the registry then
    /// has it by digest too); a reference with neither tag nor digest means `:latest`, as
    /// everywhere in the ecosystem.
    /// - Returns: the manifest digest.
    @discardableResult
    public func push(_ image: StoredImage, to reference: ImageReference, progress: (any TransferProgress)? = nil) async throws -> Digest {
        let reference = reference.withDefaultTag
        let repo = Repository(reference)
        let blobs = [image.manifest.config] + image.manifest.layers
        // Layers this store saw in the target repository (pulled from a manifest there, or pushed
        // there) are not asked about: a rebase of an image in its own repository needs no request
        // for them. Should the registry no longer have one, it refuses the manifest, and the push
        // is done again asking about every blob.
        let known = Set(image.manifest.layers.map(\.digest).filter { store.sources(of: $0).contains(repo.description) })
        if !known.isEmpty {
            do {
                return try await push(image, blobs: blobs.filter { !known.contains($0.digest) }, known: known, to: reference, progress: progress)
            } catch let e as RegistryError {
                if case .unauthorized = e { throw e }
                if case .denied = e { throw e }
            }
        }
        return try await push(image, blobs: blobs, known: [], to: reference, progress: progress)
    }

    /// Pushes `blobs` (those of `image` not `known` to be in the repository), then the manifest.
    func push(_ image: StoredImage, blobs: [Descriptor], known: Set<Digest>, to reference: ImageReference,
              progress: (any TransferProgress)?) async throws -> Digest {
        let repo = Repository(reference)
        for d in known { progress?.finished(d, .existed) }
        // Blobs the registry just answered for (a HEAD found it, a mount created it): confirmed.
        let confirmed = Mutex<Set<Digest>>([])
        try await forEachBlob(blobs) { d in
            guard store.hasBlob(d.digest) else {
                // Known only remotely (a metadata-only pull): present, mountable, or missing.
                guard let outcome = try await client.existsOrMounted(repo, d, mountFrom: store.sources(of: d.digest)) else {
                    throw OCIError.blobNotFound(d.digest, store: store.root)
                }
                confirmed.withLock { _ = $0.insert(d.digest) }
                progress?.finished(d.digest, outcome)
                return
            }
            progress?.started(d.digest, size: d.size)
            let outcome = try await client.upload(repo, d, path: store.blobPath(d.digest), mountFrom: store.sources(of: d.digest),
                                                  progress: progress)
            if case .uploaded = outcome {} else { confirmed.withLock { _ = $0.insert(d.digest) } }
            progress?.finished(d.digest, outcome)
        }
        // Every uploaded blob is confirmed before the manifest goes up (a rebase's mounted or
        // present layers were answered for a moment ago: asking again doubled its requests).
        let answered = confirmed.withLock { $0 }
        for d in blobs where !answered.contains(d.digest) {
            guard try await !client.blobExists(repo, d.digest) else { continue }
            throw RegistryError.badResponse("\(repo) does not show blob \(d.digest.short) after upload; the manifest was not pushed")
        }
        let mediaType = image.manifest.mediaType ?? image.descriptor.mediaType
        // By tag when there is one (the registry then has it by digest too), else by digest.
        try await client.putManifest(repo, reference: reference.tag ?? image.digest.description, data: image.manifestData, mediaType: mediaType)
        try store.recordSources(blobs.map(\.digest) + [image.digest], repository: repo.description)
        return image.digest
    }

    /// Runs `body` for each blob, `parallelTransfers` at a time. After a failure no new transfer
    /// starts; those in flight finish (their own retries are bounded) and the first error is thrown.
    func forEachBlob(_ blobs: [Descriptor], _ body: @escaping @Sendable (Descriptor) async throws -> Void) async throws {
        var unique: [Descriptor] = []
        for b in blobs where !unique.contains(where: { $0.digest == b.digest }) { unique.append(b) }
        let limit = max(1, client.configuration.parallelTransfers)
        let firstError: (any Error)? = await withTaskGroup(of: (any Error)?.self) { group in
            var next = 0
            var failure: (any Error)?
            func start(_ d: Descriptor) {
                group.addTask {
                    do {
                        try await body(d)
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            while next < unique.count && next < limit {
                start(unique[next])
                next += 1
            }
            for await result in group {
                if failure == nil, let result { failure = result }
                if failure == nil && next < unique.count {
                    start(unique[next])
                    next += 1
                }
            }
            return failure
        }
        if let firstError { throw firstError }
    }
}

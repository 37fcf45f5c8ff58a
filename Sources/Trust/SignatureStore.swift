import FoundationEssentials
import OCI

/// Where signature and attestation artifacts live: beside the image, under its repository's
/// `sha256-<hex>.sig` / `.att` tags, in a Cairn store (an OCI layout, so `cairn push` carries
/// them) or on a registry (as cosign writes them without the referrers API).
public protocol SignatureLocation {
    /// The manifest tagged `tag` in `repository` (`registry/name`) and a reader of its blobs;
    /// nil when there is none.
    func artifact(repository: String, tag: String) async throws -> (manifest: Data, blob: (Descriptor) async throws -> Data)?
    /// Stores an artifact: its config, its layer blobs (with their media types), its manifest.
    func put(repository: String, tag: String, config: Data, blobs: [(Data, String)], manifest: Data) async throws
    /// Stores several artifacts of `repository` (a signature and attestations): by default one
    /// `put` each; the store writes them in one step.
    func putAll(repository: String, _ artifacts: [ArtifactWrite]) async throws
    /// OCI 1.1 referrers of `digest` with `artifactType` (none where there are no referrers).
    func referrerArtifacts(repository: String, digest: Digest, artifactType: String) async throws
        -> [(manifest: Data, blob: (Descriptor) async throws -> Data)]
}

/// An artifact to store under a tag: its config, its layer blobs with their media types, its manifest.
public struct ArtifactWrite: Sendable {
    public var tag: String
    public var config: Data
    public var blobs: [(Data, String)]
    public var manifest: Data
}

extension SignatureArtifact {
    /// This artifact encoded for storing under `tag`.
    func write(tag: String) throws -> ArtifactWrite {
        let (config, blobs, manifest) = try encoded()
        return ArtifactWrite(tag: tag, config: config, blobs: blobs.map { ($0, Cosign.simpleSigningMediaType) }, manifest: manifest)
    }
}

extension AttestationArtifact {
    /// This artifact encoded for storing under `tag`.
    func write(tag: String) throws -> ArtifactWrite {
        let (config, blobs, manifest) = try encoded()
        return ArtifactWrite(tag: tag, config: config, blobs: blobs.map { ($0, Attestation.envelopeMediaType) }, manifest: manifest)
    }
}

extension SignatureLocation {
    public func putAll(repository: String, _ artifacts: [ArtifactWrite]) async throws {
        for a in artifacts { try await put(repository: repository, tag: a.tag, config: a.config, blobs: a.blobs, manifest: a.manifest) }
    }

    public func referrerArtifacts(repository: String, digest: Digest, artifactType: String) async throws
        -> [(manifest: Data, blob: (Descriptor) async throws -> Data)] { [] }

    /// The artifact tagged `tag` (nil when there is none) as a write of the same manifest, config
    /// and layers under `newTag`: a copy elsewhere, or under another image's tag.
    public func artifactWrite(repository: String, tag: String, as newTag: String) async throws -> ArtifactWrite? {
        guard let (manifest, blob) = try await artifact(repository: repository, tag: tag) else { return nil }
        let parsed = try Cosign.manifest(manifest, what: "\(repository):\(tag)")
        var blobs: [(Data, String)] = []
        for layer in parsed.layers { blobs.append((try await blob(layer), layer.mediaType)) }
        return ArtifactWrite(tag: newTag, config: try await blob(parsed.config), blobs: blobs, manifest: manifest)
    }

    /// The tag-schema artifact tagged `tag` (when there is one), then every OCI 1.1 referrer of
    /// `digest` with `artifactType`.
    func artifacts(repository: String, tag: String, digest: Digest, artifactType: String) async throws
        -> [(manifest: Data, blob: (Descriptor) async throws -> Data)] {
        let legacy = try await artifact(repository: repository, tag: tag)
        return (legacy.map { [$0] } ?? []) + (try await referrerArtifacts(repository: repository, digest: digest, artifactType: artifactType))
    }

    /// The signatures of `digest`: the tag-schema artifact's and every OCI 1.1 referrer's, merged.
    public func signatures(repository: String, digest: Digest) async throws -> SignatureArtifact? {
        let tag = Cosign.signatureTag(for: digest)
        let found = try await artifacts(repository: repository, tag: tag, digest: digest, artifactType: CosignReferrer.signatureArtifactType)
        guard !found.isEmpty else { return nil }
        var merged = SignatureArtifact(layers: [])
        for (manifest, blob) in found {
            for layer in try await SignatureArtifact.decode(manifest: manifest, what: "\(repository):\(tag)", blob: blob).layers { merged.add(layer) }
        }
        return merged
    }

    /// The attestations of `digest`: the tag-schema artifact's and every OCI 1.1 referrer's.
    public func attestations(repository: String, digest: Digest) async throws -> AttestationArtifact? {
        let tag = Attestation.tag(for: digest)
        let found = try await artifacts(repository: repository, tag: tag, digest: digest, artifactType: CosignReferrer.attestationArtifactType)
        guard !found.isEmpty else { return nil }
        var merged = AttestationArtifact()
        for (manifest, blob) in found {
            for e in try await AttestationArtifact.decode(manifest: manifest, what: "\(repository):\(tag)", blob: blob).envelopes {
                merged.add(predicateType: e.predicateType, envelope: e.envelope)
            }
        }
        return merged
    }

    /// Signs `digest` with `key` and adds the signature to the artifact (cosign keeps one layer
    /// per signature). Returns the payload signed.
    @discardableResult
    public func sign(repository: String, digest: Digest, key: SigningKey) async throws -> Data {
        let (write, payload) = try await signatureWrite(repository: repository, digest: digest, key: key)
        try await putAll(repository: repository, [write])
        return payload
    }

    /// Signs an in-toto statement about `digest` (DSSE) and adds it to the `.att` artifact.
    public func attest(repository: String, digest: Digest, predicateType: String, predicate: Data, key: SigningKey) async throws {
        try await attest(repository: repository, digest: digest, predicates: [(predicateType, predicate)], key: key)
    }

    /// Several statements about `digest` added to the `.att` artifact in one write.
    public func attest(repository: String, digest: Digest, predicates: [(type: String, predicate: Data)], key: SigningKey) async throws {
        try await putAll(repository: repository, [try await attestationWrite(repository: repository, digest: digest, predicates: predicates, key: key)])
    }

    /// The signature and the statements about `digest` in one write (a build's: the store
    /// syncs its blob directory and rewrites its index once, not once per artifact).
    public func signAndAttest(repository: String, digest: Digest, predicates: [(type: String, predicate: Data)], key: SigningKey) async throws {
        try await putAll(repository: repository, try await signAndAttestWrites(repository: repository, digest: digest, predicates: predicates, key: key))
    }

    /// What `signAndAttest` stores, made but not stored.
    public func signAndAttestWrites(repository: String, digest: Digest, predicates: [(type: String, predicate: Data)], key: SigningKey) async throws
        -> [ArtifactWrite] {
        let signature = try await signatureWrite(repository: repository, digest: digest, key: key).write
        return [signature, try await attestationWrite(repository: repository, digest: digest, predicates: predicates, key: key)]
    }

    func signatureWrite(repository: String, digest: Digest, key: SigningKey) async throws -> (write: ArtifactWrite, payload: Data) {
        let payload = Cosign.payload(repository: repository, digest: digest)
        var artifact = try await signatures(repository: repository, digest: digest) ?? SignatureArtifact(layers: [])
        artifact.add(SignatureLayer(payload: payload, signature: try key.sign(payload)))
        return (try artifact.write(tag: Cosign.signatureTag(for: digest)), payload)
    }

    func attestationWrite(repository: String, digest: Digest, predicates: [(type: String, predicate: Data)], key: SigningKey) async throws -> ArtifactWrite {
        var artifact = try await attestations(repository: repository, digest: digest) ?? AttestationArtifact()
        for (type, predicate) in predicates {
            let statement = Attestation.statement(repository: repository, digest: digest, predicateType: type, predicate: predicate)
            artifact.add(predicateType: type, envelope: try Attestation.envelope(statement, key: key))
        }
        return try artifact.write(tag: Attestation.tag(for: digest))
    }

    /// Verifies that `digest` carries a signature by `key`; throws naming what failed.
    public func verify(repository: String, digest: Digest, key: VerificationKey, image: String) async throws -> SignatureCheck {
        guard let artifact = try await signatures(repository: repository, digest: digest) else {
            throw TrustError.noSignature(image: image, tag: Cosign.signatureTag(for: digest))
        }
        let check = SignatureCheck.check(artifact, digest: digest, key: key)
        guard !check.valid.isEmpty else {
            throw TrustError.invalidSignature(image: image, detail: check.failures.joined(separator: "; "))
        }
        return check
    }

    /// The attestations of `digest`, each checked against `key` (none is not an error here).
    public func verifyAttestations(repository: String, digest: Digest, key: VerificationKey) async throws -> AttestationCheck {
        guard let artifact = try await attestations(repository: repository, digest: digest) else { return AttestationCheck() }
        return AttestationCheck.check(artifact, digest: digest, key: key)
    }
}

/// Signatures in a Cairn image store: an artifact is a manifest named `<repository>:<tag>`.
public struct StoreSignatures: SignatureLocation {
    public let store: ImageStore

    public init(store: ImageStore) { self.store = store }

    public func artifact(repository: String, tag: String) async throws -> (manifest: Data, blob: (Descriptor) async throws -> Data)? {
        let wanted = try ImageStore.storedName(repository + ":" + tag)
        guard let entry = try store.images().first(where: { $0.name == wanted }) else { return nil }
        return (try store.readBlob(entry.descriptor.digest), { [store] d in try store.readBlob(d.digest) })
    }

    public func put(repository: String, tag: String, config: Data, blobs: [(Data, String)], manifest: Data) async throws {
        try await putAll(repository: repository, [ArtifactWrite(tag: tag, config: config, blobs: blobs, manifest: manifest)])
    }

    /// Every blob of every artifact, then every name in one index update.
    public func putAll(repository: String, _ artifacts: [ArtifactWrite]) async throws {
        let session = try store.beginWriteSession()
        try session.tag(try writeBlobs(repository: repository, artifacts, in: session))
    }

    /// Every blob of every artifact (in one `writeBlobs` call: the blob directory is synced once
    /// for all of them); returns the names that record them, for the caller's index update.
    public func writeBlobs(repository: String, _ artifacts: [ArtifactWrite], in session: WriteSession) throws
        -> [(descriptor: Descriptor, reference: String)] {
        let blobs = artifacts.map { a in [(a.config, MediaType.ociConfig)] + a.blobs.map { ($0.0, $0.1) } + [(a.manifest, MediaType.ociManifest)] }
        let written = try session.writeBlobs(blobs.flatMap { $0 })
        var names: [(descriptor: Descriptor, reference: String)] = []
        var end = 0
        for (a, group) in zip(artifacts, blobs) {
            end += group.count
            names.append((written[end - 1], try ImageStore.storedName(repository + ":" + a.tag)))
        }
        return names
    }
}

/// Signatures on a registry. Blobs pass through `work` (the local store).
public struct RegistrySignatures: SignatureLocation {
    public let client: RegistryClient
    public let work: ImageStore
    public init(client: RegistryClient, work: ImageStore) {
        self.client = client
        self.work = work
    }

    func repo(_ repository: String) throws -> Repository {
        Repository(try ImageReference(parsing: repository))
    }

    public func artifact(repository: String, tag: String) async throws -> (manifest: Data, blob: (Descriptor) async throws -> Data)? {
        let repo = try repo(repository)
        let manifest: Data
        do { manifest = try await client.manifest(repo, reference: tag).data } catch RegistryError.notFound {
            return nil
        }
        return (manifest, blobReader(repo))
    }

    func blobReader(_ repo: Repository) -> (Descriptor) async throws -> Data {
        { [client, work] d in
            let session = try work.beginWriteSession()
            if !work.hasBlob(d.digest) { try await client.download(repo, d, into: session, progress: nil) }
            return try withExtendedLifetime(session) { try work.readBlob(d.digest) }
        }
    }

    public func put(repository: String, tag: String, config: Data, blobs: [(Data, String)], manifest: Data) async throws {
        let repo = try repo(repository)
        let session = try work.beginWriteSession()
        var descriptors = [try session.writeBlob(config, mediaType: MediaType.ociConfig)]
        for (b, mediaType) in blobs { descriptors.append(try session.writeBlob(b, mediaType: mediaType)) }
        for d in descriptors {
            _ = try await client.upload(repo, d, path: work.blobPath(d.digest), mountFrom: [], progress: nil)
        }
        try await client.putManifest(repo, reference: tag, data: manifest, mediaType: MediaType.ociManifest)
        // Also as an OCI 1.1 referrer (see CosignReferrer).
        try await publishReferrer(repository: repository, tag: tag, legacyManifest: manifest)
        withExtendedLifetime(session) {}
    }
}

/// Copies the `.sig`, `.att` and `.build-sbom` artifacts of `digest` from one location to another
/// (push and pull carry them, as `cosign copy` does): the same manifest and blobs, so signatures and
/// attestations verify the same there. Where the source has only OCI 1.1 referrers (cosign's
/// `--registry-referrers-mode=oci-1-1`), their layers are written as a tag-schema artifact.
/// Returns the tags copied.
public func copyTrustArtifacts(digest: Digest, from source: any SignatureLocation, repository sourceRepository: String,
                               to target: any SignatureLocation, repository targetRepository: String) async throws -> [String] {
    var copied: [String] = []
    for tag in [Cosign.signatureTag(for: digest), Attestation.tag(for: digest), BuildSBOM.tag(for: digest)] {
        let write: ArtifactWrite
        if let stored = try await source.artifactWrite(repository: sourceRepository, tag: tag, as: tag) {
            write = stored
        } else if tag.hasSuffix(".sig"), let merged = try await source.signatures(repository: sourceRepository, digest: digest) {
            write = try merged.write(tag: tag)
        } else if tag.hasSuffix(".att"), let merged = try await source.attestations(repository: sourceRepository, digest: digest) {
            write = try merged.write(tag: tag)
        } else {
            continue
        }
        try await target.putAll(repository: targetRepository, [write])
        copied.append(tag)
    }
    return copied
}

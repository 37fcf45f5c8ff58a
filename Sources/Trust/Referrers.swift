import FoundationEssentials
import OCI

/// Signatures and attestations as OCI 1.1 referrers: the same config and layers as the tag-schema
/// artifact (`sha256-<hex>.sig` / `.att`), in a manifest whose `subject` is the image and whose
/// `artifactType` says what it is. This is what `cosign sign --registry-referrers-mode=oci-1-1`
/// writes (config media type = artifact type = `application/vnd.dev.cosign.artifact.sig.v1+json`)
/// and what `cosign verify --experimental-oci11` reads. Attestations use the same scheme with
/// `att` (cosign v2 writes none as referrers; its bundle format is another thing).
public enum CosignReferrer {
    public static let signatureArtifactType = "application/vnd.dev.cosign.artifact.sig.v1+json"
    public static let attestationArtifactType = "application/vnd.dev.cosign.artifact.att.v1+json"

    /// The artifact type of the tag-schema artifact tagged `tag`, and the digest it is about;
    /// nil for any other tag.
    static func kind(ofTag tag: String) -> (artifactType: String, subject: Digest)? {
        guard tag.hasPrefix("sha256-"), tag.count == 7 + 64 + 4 else { return nil }
        let hex = String(tag.dropFirst(7).prefix(64))
        guard let digest = Digest("sha256:" + hex) else { return nil }
        if tag.hasSuffix(".sig") { return (signatureArtifactType, digest) }
        if tag.hasSuffix(".att") { return (attestationArtifactType, digest) }
        return nil
    }

    /// The referrer manifest for a tag-schema artifact manifest about `subject`.
    static func manifest(from legacy: Data, artifactType: String, subject: Descriptor, what: String) throws -> Data {
        var manifest = try Cosign.manifest(legacy, what: what)
        manifest.mediaType = MediaType.ociManifest
        manifest.config.mediaType = artifactType
        manifest.artifactType = artifactType
        manifest.subject = subject
        return try CanonicalJSON.encode(manifest)
    }
}

extension RegistrySignatures {
    /// Writes the referrer form of the artifact just tagged `tag`: by digest, with the subject
    /// the tag names, and in the subject's referrers tag index when the registry has no
    /// referrers API. The blobs are the tag-schema artifact's, already there.
    func publishReferrer(repository: String, tag: String, legacyManifest: Data) async throws {
        guard let (artifactType, digest) = CosignReferrer.kind(ofTag: tag) else { return }
        let repo = try repo(repository)
        let image = try await client.manifest(repo, reference: digest.description)
        let subject = Descriptor(mediaType: image.mediaType, digest: digest, size: Int64(image.data.count))
        let manifest = try CosignReferrer.manifest(from: legacyManifest, artifactType: artifactType, subject: subject, what: "\(repository):\(tag)")
        do { try await client.putReferrer(repo, manifest: manifest) } catch {
            throw TrustError.artifact(what: "\(repository):\(tag)", reason: "was pushed, but its OCI 1.1 referrer form was not: \(error)")
        }
    }

    public func referrerArtifacts(repository: String, digest: Digest, artifactType: String) async throws
        -> [(manifest: Data, blob: (Descriptor) async throws -> Data)] {
        let repo = try repo(repository)
        var out: [(manifest: Data, blob: (Descriptor) async throws -> Data)] = []
        for d in try await client.referrers(repo, of: digest, artifactType: artifactType) where d.mediaType == MediaType.ociManifest {
            out.append((try await client.manifest(repo, reference: d.digest.description).data, blobReader(repo)))
        }
        return out
    }
}

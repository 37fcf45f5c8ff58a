import FoundationEssentials
import OCI

/// The build-time SBOM of an image: what its buildpacks reported using while building
/// (`<layers>/sbom/build/<buildpack>/[<layer>/]sbom.<ext>`, Buildpack API 0.7+) but did not put in
/// the image. The lifecycle leaves these files in the layers directory and the image does not
/// carry them, so a later question ("is this advisory's package in the image?") cannot tell a
/// build tool from a runtime dependency. Cairn keeps them beside the image, the way cosign keeps
/// an attached SBOM (`cosign attach sbom`: an artifact tagged `sha256-<hex>.sbom`, one layer per
/// document, the config an empty image), but under its own suffix `.build-sbom`: a tool reading
/// `.sbom` takes it for the SBOM of what the image contains, which these files are not. Each
/// layer's title annotation is the file's path under `sbom/` (`build/<bp>/sbom.cdx.json`); its
/// media type is the format's (CycloneDX, SPDX, Syft JSON).
public enum BuildSBOM {
    public static let tagSuffix = ".build-sbom"
    static let titleAnnotation = "org.opencontainers.image.title"

    /// `sha256-<hex>.build-sbom`: where the build-time SBOM of the manifest `digest` lives.
    public static func tag(for digest: Digest) -> String { "\(digest.algorithm)-\(digest.encoded)\(tagSuffix)" }

    /// The media type of an SBOM file by its extension (`sbom.cdx.json` …); nil for other files.
    public static func mediaType(ofFile name: String) -> String? {
        if name.hasSuffix(".cdx.json") { return "application/vnd.cyclonedx+json" }
        if name.hasSuffix(".spdx.json") { return "application/spdx+json" }
        if name.hasSuffix(".syft.json") { return "application/vnd.syft+json" }
        return nil
    }

    /// The artifact holding `files` (path under `sbom/`, contents), for storing under `tag(for:)`.
    public static func write(for digest: Digest, files: [(path: String, data: Data)]) throws -> ArtifactWrite {
        let sorted = files.sorted { $0.path < $1.path }
        let descriptors = try sorted.map { f -> Descriptor in
            guard let type = mediaType(ofFile: f.path) else {
                throw TrustError.artifact(what: f.path, reason: "is not an SBOM file (sbom.cdx.json, sbom.spdx.json or sbom.syft.json)")
            }
            return Descriptor(mediaType: type, digest: Digest.sha256(of: f.data), size: Int64(f.data.count), annotations: [titleAnnotation: f.path])
        }
        let (config, blobs, manifest) = try Cosign.encode(layers: descriptors, blobs: sorted.map(\.data))
        return ArtifactWrite(tag: tag(for: digest), config: config, blobs: zip(blobs, descriptors).map { ($0, $1.mediaType) }, manifest: manifest)
    }

    /// The files of a build-SBOM artifact: each layer's title and bytes, checked against its digest.
    public static func files(manifest data: Data, what: String, blob: (Descriptor) throws -> Data) throws -> [(path: String, data: Data)] {
        let manifest = try Cosign.manifest(data, what: what)
        var out: [(path: String, data: Data)] = []
        for d in manifest.layers {
            guard let path = d.annotations?[titleAnnotation], mediaType(ofFile: path) != nil else {
                throw TrustError.artifact(what: what, reason: "layer \(d.digest) has no \(titleAnnotation) naming an SBOM file")
            }
            let bytes = try blob(d)
            guard Digest.sha256(of: bytes) == d.digest else { throw TrustError.artifact(what: what, reason: "layer \(path) does not match its digest") }
            out.append((path, bytes))
        }
        return out
    }
}

extension BuildSBOM {
    /// Carries the build-time SBOM of `old` to `new` in `repository` (a rebase or a layer patch
    /// makes a new image of the same build); false when `old` has none.
    @discardableResult
    public static func carry(repository: String, from old: Digest, to new: Digest, at location: any SignatureLocation) async throws -> Bool {
        guard old != new else { return false }
        return try await keep(try await take(repository: repository, of: old, at: location), for: new, repository: repository, at: location)
    }

    /// The build-time SBOM of `old`, read before the image's name moves (a store that retires
    /// the old image's artifact names with it, `ImageStore.artifactSubject`, would no longer
    /// have it afterwards); nil when it has none.
    public static func take(repository: String, of old: Digest, at location: any SignatureLocation) async throws -> ArtifactWrite? {
        try await location.artifactWrite(repository: repository, tag: tag(for: old), as: tag(for: old))
    }

    /// Writes what `take` read beside `new`; false when there was nothing.
    @discardableResult
    public static func keep(_ taken: ArtifactWrite?, for new: Digest, repository: String, at location: any SignatureLocation) async throws -> Bool {
        guard var write = taken, write.tag != tag(for: new) else { return false }
        write.tag = tag(for: new)
        try await location.putAll(repository: repository, [write])
        return true
    }
}

import Buildpacks
import Foundation
import Inventory
import OCI
import Phases
import Trust

/// The build-time SBOM files of a build, kept beside its image (see `Trust.BuildSBOM`), so the
/// inventory can tell packages the image contains from those only its build used.
enum BuildTimeSBOM {
    /// The SBOM files under `<layers>/sbom/build` with their paths under `sbom/`
    /// (`build/<bp>/[<layer>/]sbom.<ext>`); none when the buildpacks wrote none.
    static func files(layers: String) throws -> [(path: String, data: Data)] {
        let root = layers + "/sbom"
        guard FS.isDirectory(root + "/build"), let walk = FileManager.default.enumerator(atPath: root + "/build") else { return [] }
        var out: [(path: String, data: Data)] = []
        for case let relative as String in walk {
            let path = "build/" + relative
            guard BuildSBOM.mediaType(ofFile: relative) != nil, SBOMReader.parse("sbom/" + path, scope: "build") != nil,
                  !FS.isDirectory(root + "/" + path) else { continue }
            let size = (try FileManager.default.attributesOfItem(atPath: root + "/" + path)[.size] as? NSNumber)?.intValue ?? 0
            guard size <= SBOMReader.maxDocument else { throw PlatformError.tooLarge(what: "build SBOM \(path)", limitMiB: SBOMReader.maxDocument >> 20) }
            out.append((path, try Data(contentsOf: URL(fileURLWithPath: root + "/" + path))))
        }
        return out
    }

    /// The documents of a build-SBOM artifact's files, as the launch SBOM's are read.
    static func documents(_ files: [(path: String, data: Data)]) -> [SBOMDocument] {
        files.compactMap { f in
            guard var doc = SBOMReader.parse("sbom/" + f.path, scope: "build") else { return nil }
            doc.data = f.data
            return doc
        }
    }
}

extension BuildRunner {
    /// The build's build-time SBOM files (`BuildTimeSBOM.files`), written beside `image` (named
    /// `reference`) in the store, the blobs, for `sha256-<hex>.build-sbom`: the names to record
    /// and how many files; none when its buildpacks wrote none.
    func buildSBOMNames(_ files: [(path: String, data: Data)], _ image: StoredImage, reference: String, _ session: WriteSession) throws
        -> (names: [(descriptor: Descriptor, reference: String)], files: Int) {
        guard !files.isEmpty else { return ([], 0) }
        let repository = try ImageReference(parsing: reference).fullName
        return (try StoreSignatures(store: store).writeBlobs(repository: repository, [try BuildSBOM.write(for: image.digest, files: files)], in: session),
                files.count)
    }
}

extension InventoryIndexer {
    /// Adds the packages of the build-time SBOM kept beside `image` (the artifact's manifest and a
    /// reader of its blobs) to `record`. A document that cannot be read is reported and skipped:
    /// these packages never make findings, they only let VEX say what the image does not contain.
    func addBuildPackages(_ record: inout ImageRecord, of image: StoredImage, manifest: Data, blob: (Descriptor) throws -> Data) throws {
        let what = "build SBOM of \(image.name ?? image.digest.description)"
        let escaped = Self.buildpackIDs(try image.lifecycleMetadata())
        for doc in BuildTimeSBOM.documents(try BuildSBOM.files(manifest: manifest, what: what, blob: blob)) {
            do {
                for c in try doc.components() {
                    record.buildPackages.append(.init(package: PackageRecord(name: c.name, version: c.version, purl: c.purl),
                                                      buildpack: escaped[doc.buildpack] ?? doc.buildpack, layer: doc.layer ?? ""))
                }
            } catch {
                warn("\(what): \(error); its packages are not indexed")
            }
        }
    }

    /// `addBuildPackages` for an image in `store`, whose artifact (if any) is among `names`.
    func addBuildPackages(_ record: inout ImageRecord, of image: StoredImage, store: ImageStore, names: [String: Descriptor]) {
        guard let name = image.name, let repository = try? ImageReference(parsing: name).fullName,
              let stored = try? ImageStore.storedName(repository + ":" + BuildSBOM.tag(for: image.digest)), let artifact = names[stored] else { return }
        do {
            let manifest = try store.readBlob(artifact.digest)
            try addBuildPackages(&record, of: image, manifest: manifest) { try store.readBlob($0.digest) }
        } catch {
            warn("\(name): its build SBOM cannot be read: \(error)")
        }
    }

    /// `addBuildPackages` for a registry image whose repository has the artifact's tag among `tags`;
    /// the blobs come through `cache`.
    func addBuildPackages(_ record: inout ImageRecord, of image: StoredImage, repo: Repository, tags: Set<String>,
                          client: RegistryClient, cache: ImageStore) async {
        let tag = BuildSBOM.tag(for: image.digest)
        guard tags.contains(tag) else { return }
        do {
            let manifest = try await client.manifest(repo, reference: tag).data
            try await fetch(try CanonicalJSON.decode(Manifest.self, from: manifest, what: tag).layers, of: repo, client: client, cache: cache)
            try addBuildPackages(&record, of: image, manifest: manifest) { try cache.readBlob($0.digest) }
        } catch {
            warn("\(image.name ?? tag): its build SBOM cannot be read: \(error)")
        }
    }
}

extension ImageLocation {
    /// Where the signatures, attestations and build-time SBOMs of this location's images live;
    /// nil for an OCI layout (Cairn keeps none there).
    public var artifacts: (any SignatureLocation)? {
        switch self {
        case .store(let store): return StoreSignatures(store: store)
        case .registry(let client, let work): return RegistrySignatures(client: client, work: work)
        case .layout: return nil
        }
    }

    /// After a rebase or layer patch of `image` from `old` to `new`: the build-time SBOM of `old`
    /// (if any) is kept beside `new` too.
    public func carryBuildSBOM(image: String, from old: Digest, to new: Digest) async throws {
        guard let artifacts else { return }
        try await BuildSBOM.carry(repository: try ImageReference(parsing: image).fullName, from: old, to: new, at: artifacts)
    }

    /// `carryBuildSBOM` in two steps, for a caller whose own write moves the name (and so, in a
    /// store, retires `old`'s artifact names): read before, written after.
    public func takeBuildSBOM(image: String, of old: Digest) async throws -> ArtifactWrite? {
        guard let artifacts else { return nil }
        return try await BuildSBOM.take(repository: try ImageReference(parsing: image).fullName, of: old, at: artifacts)
    }

    public func keepBuildSBOM(_ taken: ArtifactWrite?, image: String, for new: Digest) async throws {
        guard let artifacts else { return }
        try await BuildSBOM.keep(taken, for: new, repository: try ImageReference(parsing: image).fullName, at: artifacts)
    }
}

import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// Inputs of the restore phase (platform.md, restorer).
public struct RestorerInputs: Sendable {
    public var layersDirectory: String
    public var groupPath: String
    public var analyzedPath: String
    public var cacheDirectory: String?
    public var cacheImage: String?
    public var skipLayers: Bool
    public var location: ImageLocation
    public var uid: Int
    public var gid: Int
    /// The exporter's layer options, so restored layers can be recognised unchanged at export.
    public var epoch: Int64
    public var compression: Compression
    /// This build's execution environment: layer metadata of an image built for another one is
    /// not restored (platform.md, Layer Restoration).
    public var execEnv: String?
    /// `-build-image`: recorded in analyzed.toml as a digest reference (platform.md, restorer).
    public var buildImage: String?

    public init(layersDirectory: String, groupPath: String, analyzedPath: String, cacheDirectory: String?, cacheImage: String?,
                skipLayers: Bool, location: ImageLocation, uid: Int, gid: Int, epoch: Int64, compression: Compression = .gzip,
                execEnv: String? = nil) {
        self.execEnv = execEnv
        self.layersDirectory = layersDirectory
        self.groupPath = groupPath
        self.analyzedPath = analyzedPath
        self.cacheDirectory = cacheDirectory
        self.cacheImage = cacheImage
        self.skipLayers = skipLayers
        self.location = location
        self.uid = uid
        self.gid = gid
        self.epoch = epoch
        self.compression = compression
    }
}

/// The restore phase (platform.md, restorer; buildpack.md, Layer Restoration): layer metadata
/// from the previous image, cached layer contents from the cache, store.toml.
public struct Restorer {
    let inputs: RestorerInputs
    let log: Logger

    public init(inputs: RestorerInputs, log: Logger) {
        self.inputs = inputs
        self.log = log
    }

    public func run() async throws(LifecycleError) {
        let group = try readGroup(inputs.groupPath)
        let analyzed = try await recordBuildImage()
        var appMetadata = decode(analyzed.metadata, what: "\(inputs.analyzedPath): [metadata] (the previous image's \(CNBLabel.lifecycleMetadata))")
            ?? LifecycleMetadataLabel()
        if let previous = appMetadata.execEnv, let current = inputs.execEnv, previous != current {
            log.info("The previous image was built for execution environment \(previous), this build is for \(current): its layers are not reused")
            // store.toml is not layer metadata: it stays.
            appMetadata = LifecycleMetadataLabel(buildpacks: appMetadata.buildpacks.map { .init(key: $0.key, version: $0.version, store: $0.store) })
        }
        let (cacheStore, cacheMetadata, cacheImage) = try await openCache()
        let book = FingerprintBook(cacheDirectory: inputs.cacheDirectory)
        // Layer SBOMs: cached layers' from the cache's SBOM layer, launch layers' from the
        // previous image's SBOM layer (when its bytes are at hand).
        let scratch = inputs.layersDirectory + "/.sbom-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let cacheSBOMs = try extractSBOMLayer(cacheMetadata?.sbom, store: cacheStore, image: cacheImage, into: scratch + "/cache")
        var appSBOMs: String?
        if !inputs.skipLayers, let sbom = appMetadata.sbom, let ref = analyzed.image?.reference {
            var previous: LocatedImage?
            do { previous = try await inputs.location.find(ref, layers: false) } catch {
                log.warn("previous image \(ref) cannot be read, so its launch layers' SBOMs are not restored: \(error)")
            }
            if let previous {
                await fetchSBOMLayer(sbom, of: previous, reference: ref)
                appSBOMs = try extractSBOMLayer(sbom, store: previous.store, image: previous.image, into: scratch + "/app")
                    .map { $0 + "/" + layerPath(inputs.layersDirectory + "/sbom/launch") }
            }
        }

        for bp in group.group {
            let escaped = bp.id.escaped
            let bpDir = inputs.layersDirectory + "/" + escaped
            let fromApp = appMetadata.buildpack(bp.id.description)
            let fromCache = cacheMetadata?.buildpack(bp.id.description)
            var names = Set(fromApp?.layers.keys.map { $0 } ?? [])
            names.formUnion(fromCache?.layers.keys.map { $0 } ?? [])
            // A buildpack with nothing to restore gets no directory (the builder makes it).
            guard fromApp?.store != nil || (!inputs.skipLayers && !names.isEmpty) else { continue }
            do { try FS.makeDirectories(bpDir) } catch { throw .io(operation: "create", path: bpDir, reason: "\(error)") }
            try own(bpDir)
            if let store = fromApp?.store {
                try writeFile(store, bpDir + "/store.toml", owner: owner)
            }
            guard !inputs.skipLayers else { continue }
            for name in names.sorted() {
                let appLayer = fromApp?.layers[name]
                let cacheLayer = fromCache?.layers[name]
                let what = "\(bp.id):\(name)"
                if let cacheLayer, cacheLayer.cache {
                    // A launch+cache layer is restored only when the cache matches the app image.
                    if cacheLayer.launch, let appLayer, appLayer.sha != cacheLayer.sha {
                        log.info("Not restoring '\(what)': the cached layer differs from the previous image's")
                        continue
                    }
                    guard let cacheStore, let cacheImage else { continue }
                    try restoreContents(cacheLayer, name: name, bpDir: bpDir, store: cacheStore, image: cacheImage, book: book, what: what)
                    try writeFile(cacheLayer.restoredLayerFile, bpDir + "/" + name + ".toml", owner: owner)
                    try restoreSBOMs(from: cacheSBOMs.map { "\($0)/\(escaped)" }, prefix: name + ".sbom.", bpDir: bpDir, name: name)
                    log.info("Restored layer '\(what)' from the cache")
                } else if let appLayer, appLayer.launch, !appLayer.build {
                    // Launch-only layers: metadata (and SBOM) only; the exporter reuses the image's
                    // layer when kept. A build layer that is not cached is not restored at all
                    // (buildpack.md, Layer Types table).
                    try writeFile(appLayer.restoredLayerFile, bpDir + "/" + name + ".toml", owner: owner)
                    try restoreSBOMs(from: appSBOMs.map { "\($0)/\(escaped)/\(name)" }, prefix: "sbom.", bpDir: bpDir, name: name)
                    log.info("Restored metadata of layer '\(what)'")
                }
            }
        }
        do { try book.save() } catch { log.warn("cannot save layer fingerprints: \(error)") }
    }

    /// analyzed.toml, with `-build-image`'s unique reference recorded in it (platform.md, restorer).
    func recordBuildImage() async throws(LifecycleError) -> AnalyzedFile {
        var analyzed = try readFileIfPresent(AnalyzedFile.self, inputs.analyzedPath) ?? AnalyzedFile()
        guard let buildImage = inputs.buildImage, !buildImage.isEmpty else { return analyzed }
        guard let found = try await inputs.location.find(buildImage, layers: false) else {
            throw .imageNotFound(role: "build image", reference: buildImage)
        }
        var record = analyzed.buildImage ?? .init()
        record.reference = inputs.location.uniqueReference(buildImage, found.image)
        analyzed.buildImage = record
        try writeFile(analyzed, inputs.analyzedPath, owner: owner)
        return analyzed
    }

    /// From a registry the previous image was read without its layers: its SBOM layer (small)
    /// is fetched so the launch layers' SBOMs are restored there too, as the reference does. A
    /// failure is said, not fatal: the buildpacks then re-create the SBOMs.
    func fetchSBOMLayer(_ sha: LifecycleMetadataLabel.LayerSHA, of previous: LocatedImage, reference: String) async {
        guard case .registry(let client, _) = inputs.location, let diffID = Digest(sha.sha),
              let descriptor = previous.image.layer(diffID: diffID)?.descriptor, !previous.store.hasBlob(descriptor.digest),
              let ref = try? ImageReference(parsing: reference) else { return }
        do {
            try await client.download(Repository(ref), descriptor, into: try previous.store.beginWriteSession(), progress: nil)
        } catch {
            log.warn("the SBOM layer of \(reference) cannot be fetched, so its launch layers' SBOMs are not restored: \(error)")
        }
    }

    /// Extracts an SBOM layer of `image` (by diffID) into `directory`; nil when there is none or
    /// its bytes are not in `store`.
    func extractSBOMLayer(_ sha: LifecycleMetadataLabel.LayerSHA?, store: ImageStore?, image: StoredImage?,
                          into directory: String) throws(LifecycleError) -> String? {
        guard let sha, let store, let image, let diffID = Digest(sha.sha), let blob = image.layer(diffID: diffID)?.descriptor.digest
        else { return nil }
        guard store.hasBlob(blob) else {
            log.debug("SBOM layer \(blob) is not available locally; layer SBOMs not restored")
            return nil
        }
        do {
            try FS.makeDirectories(directory)
            _ = try LayerExtractor.apply(blobPath: store.blobPath(blob), to: directory, layerName: "SBOM layer")
        } catch {
            throw .layer(operation: "read", layer: "the SBOM layer \(blob)", cause: error)
        }
        return directory
    }

    /// Copies `<dir>/<prefix><ext>` files to `<bpDir>/<name>.sbom.<ext>`.
    func restoreSBOMs(from dir: String?, prefix: String, bpDir: String, name: String) throws(LifecycleError) {
        guard let dir else { return }
        for file in ((try? FS.listDirectory(dir)) ?? []).sorted() where file.hasPrefix(prefix) {
            let ext = String(file.dropFirst(prefix.count))
            let target = bpDir + "/" + name + ".sbom." + ext
            try? FileManager.default.removeItem(atPath: target)
            if (try? FileManager.default.copyItem(atPath: dir + "/" + file, toPath: target)) != nil { try own(target) }
        }
    }

    /// Restored files belong to the CNB user, who runs the buildpacks next (the restorer may
    /// run as root).
    var owner: (uid: Int, gid: Int)? { geteuid() == 0 ? (inputs.uid, inputs.gid) : nil }

    func own(_ path: String) throws(LifecycleError) {
        try giveTo(owner, path)
    }

    /// Layer metadata that cannot be read means no layer is restored from it: said, not silent.
    func decode(_ value: AnyTOML?, what: String) -> LifecycleMetadataLabel? {
        guard let value else { return nil }
        do {
            return try JSONDecoder().decode(LifecycleMetadataLabel.self, from: try JSONEncoder().encode(value))
        } catch {
            log.warn("\(what) is not valid layer metadata, so no layer is restored from it: \(error)")
            return nil
        }
    }

    /// The cache store, its metadata and cache image, when a cache is configured and present.
    func openCache() async throws(LifecycleError) -> (ImageStore?, LifecycleMetadataLabel?, StoredImage?) {
        let located: LocatedImage?
        if let dir = inputs.cacheDirectory {
            guard FileManager.default.fileExists(atPath: dir + "/index.json") else { return (nil, nil, nil) }
            do {
                let store = try ImageStore(root: dir)
                located = (try? store.resolve(cacheReference)).map { LocatedImage(store: store, image: $0) }
            } catch {
                throw .io(operation: "open cache", path: dir, reason: "\(error)")
            }
        } else if let image = inputs.cacheImage, case .registry = inputs.location {
            located = try await inputs.location.find(image)
        } else {
            return (nil, nil, nil)
        }
        guard let located, let metadata = try located.image.cacheMetadata() else { return (nil, nil, nil) }
        return (located.store, metadata, located.image)
    }

    /// Extracts a cached layer into `<layers>/<bp>/<name>/` and records its fingerprint with the
    /// layer it came from, so an untouched layer is recognised at export without re-reading it.
    func restoreContents(_ layer: LifecycleMetadataLabel.Layer, name: String, bpDir: String, store: ImageStore, image: StoredImage,
                         book: FingerprintBook, what: String) throws(LifecycleError) {
        guard let diffID = Digest(layer.sha), let descriptor = image.layer(diffID: diffID)?.descriptor else {
            log.warn("cache has no layer \(layer.sha) for '\(what)'; not restored")
            return
        }
        let target = bpDir + "/" + name
        let scratch = inputs.layersDirectory + "/.restore-" + UUID().uuidString
        do {
            try FS.makeDirectories(scratch)
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            _ = try LayerExtractor.apply(blobPath: store.blobPath(descriptor.digest), to: scratch, layerName: what)
            // The layer holds the path it was exported from; move the directory itself into place.
            let inner = try Self.exportedDirectory(in: scratch, current: layerPath(target),
                                                   suffix: String(bpDir.split(separator: "/").last ?? "") + "/" + name, what: what)
            try? FileManager.default.removeItem(atPath: target)
            guard rename(inner, target) == 0 else {
                throw LifecycleError.io(operation: "move restored layer to", path: target, reason: String(cString: strerror(errno)))
            }
            // A layer from another layers directory holds other paths: exported anew, not reused.
            guard inner == scratch + "/" + layerPath(target) else { return }
            var o = layerOptions(epoch: inputs.epoch, compression: inputs.compression, owner: (inputs.uid, inputs.gid))
            o.prefix = layerPath(target)
            let key = FingerprintBook.key(directory: target, options: o)
            book.record(key, fingerprint: try Fingerprint.of(target),
                        LayerResult(diffID: diffID, digest: descriptor.digest, size: descriptor.size, uncompressedSize: 0,
                                    mediaType: descriptor.mediaType, entries: 0))
        } catch let e as LifecycleError {
            throw e
        } catch {
            throw .layer(operation: "restore", layer: "layer \(what)", cause: error)
        }
    }

    /// The layer's directory inside the extracted `scratch`: at `current` (the layers directory
    /// did not move), else wherever the layer put `<bp>/<name>`, following the chain of single
    /// directories down from the root. Layers are restored by their path relative to the layers
    /// directory they were exported from, so a rebuild with `<layers>` elsewhere restores into the
    /// current one (the reference extracts into the old path and the buildpack never sees it).
    static func exportedDirectory(in scratch: String, current: String, suffix: String, what: String) throws(LifecycleError) -> String {
        if FS.isDirectory(scratch + "/" + current) { return scratch + "/" + current }
        var rel = ""
        while true {
            let dir = rel.isEmpty ? scratch : scratch + "/" + rel
            if rel == suffix || rel.hasSuffix("/" + suffix) { return dir }
            let children = ((try? FS.listDirectory(dir)) ?? []).filter { FS.isDirectory(dir + "/" + $0) }
            guard children.count == 1 else {
                throw .layer(operation: "restore", layer: what, cause: LifecycleError.unsupported(
                    "the cached layer holds no directory ending in \(suffix) (looked under /\(rel))"))
            }
            rel += (rel.isEmpty ? "" : "/") + children[0]
        }
    }
}

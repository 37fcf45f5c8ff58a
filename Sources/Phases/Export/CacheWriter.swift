import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// The name of the cache image inside a cache directory.
public let cacheReference = "cairn-cache:latest"

/// Writes the cache (platform.md, exporter: `-cache-dir` or `-cache-image`): every `cache = true`
/// layer under one cache image whose label records each layer's diffID and metadata. A cache
/// directory is an image store; a cache image in a registry is pushed from the export's work store.
/// Launch+cache layers share the app image's blob. The image is written even when nothing is
/// cached, as the reference does (kpack relies on it).
struct CacheWriter {
    let inputs: ExporterInputs
    let log: Logger

    func write(outputs: [BuildpackOutput], launchResults: [String: LayerResult], dest: ImageStore, book: FingerprintBook,
               created: String) async throws(LifecycleError) {
        guard inputs.cacheDirectory != nil || inputs.cacheImage != nil else { return }
        let cacheStore = try store()
        // The session ends with the call: `commit` prunes the cache directory, which would wait for it.
        let (metadata, cacheLayers) = try layers(outputs, launchResults: launchResults, dest: dest, into: try writeSession(cacheStore, for: "the cache"), book: book)
        try await commit(metadata, layers: cacheLayers, into: cacheStore, book: book, created: created)
    }

    /// The cached layers, written to the cache, and the label that lists them.
    func layers(_ outputs: [BuildpackOutput], launchResults: [String: LayerResult], dest: ImageStore, into cacheStore: WriteSession,
                book: FingerprintBook) throws(LifecycleError) -> (LifecycleMetadataLabel, [LayerResult]) {
        var metadata = LifecycleMetadataLabel()
        var cacheLayers: [LayerResult] = []
        // The cached layers' SBOM files go in one layer: `<bp>/<layer>.sbom.<ext>`.
        var sbomFiles: [(target: String, source: String)] = []
        for out in outputs {
            var entry = LifecycleMetadataLabel.BuildpackLayers(key: out.element.id.description, version: out.element.version)
            for (name, file) in out.layers where file.effectiveTypes.cache && FileManager.default.fileExists(atPath: out.path(name)) {
                let what = "\(out.element.id):\(name)"
                let result = try layer(out.path(name), what: what, shared: launchResults[what], dest: dest, cache: cacheStore, book: book)
                cacheLayers.append(result)
                let types = file.effectiveTypes
                entry.layers[name] = .init(sha: result.diffID.description, data: file.metadata, build: types.build, launch: types.launch, cache: true)
                log.debug("Caching layer '\(what)' with SHA \(result.diffID)")
            }
            for sbom in out.sbomFiles where entry.layers[sbom.owner] != nil {
                sbomFiles.append((out.element.id.escaped + "/" + URL(fileURLWithPath: sbom.path).lastPathComponent, sbom.path))
            }
            metadata.buildpacks.append(entry)
        }
        let options = layerOptions(epoch: inputs.epoch, compression: inputs.compression)
        if let sbom = try filesLayer(sbomFiles, root: "", options: options.owned(by: (inputs.uid, inputs.gid)), into: cacheStore) {
            cacheLayers.append(sbom)
            metadata.sbom = .init(sha: sbom.diffID.description)
        }
        return (metadata, cacheLayers)
    }

    /// The cache directory's store, or the registry target's work store for a cache image.
    func store() throws(LifecycleError) -> ImageStore {
        do {
            if let dir = inputs.cacheDirectory { return try ImageStore(root: dir) }
            if case .registry(_, let work) = inputs.location { return work }
        } catch {
            throw .io(operation: "open cache", path: inputs.cacheDirectory ?? "", reason: "\(error)")
        }
        throw .unsupported("a cache image needs a registry target; use a cache directory instead")
    }

    /// One cached layer: the app image's blob when the layer was exported for launch too, else
    /// the directory's layer, recognised by fingerprint in the cache or written there.
    func layer(_ directory: String, what: String, shared: LayerResult?, dest: ImageStore, cache: WriteSession,
               book: FingerprintBook) throws(LifecycleError) -> LayerResult {
        do {
            if let shared {
                try copyBlob(shared.digest, from: dest, to: cache)
                return shared
            }
            var o = layerOptions(epoch: inputs.epoch, compression: inputs.compression, owner: (inputs.uid, inputs.gid))
            o.prefix = layerPath(directory)
            let key = FingerprintBook.key(directory: directory, options: o)
            let fingerprint = try Fingerprint.of(directory)
            if let known = book.lookup(key, fingerprint: fingerprint, in: cache.store) { return known }
            let result = try cache.writeLayer(directory: directory, options: o)
            book.record(key, fingerprint: fingerprint, result)
            return result
        } catch {
            throw .layer(operation: "cache", layer: "layer \(what)", cause: error)
        }
    }

    /// The cache image, named `cacheReference` in a cache directory (then pruned of older
    /// layers), or pushed as `-cache-image`.
    func commit(_ metadata: LifecycleMetadataLabel, layers: [LayerResult], into cacheStore: ImageStore, book: FingerprintBook,
                created: String) async throws(LifecycleError) {
        do {
            let labelValue = try json(metadata)
            // Its own session, ended before the prune below (which would wait for it).
            let image = try cacheStore.writing { session in
                try session.commitImage(base: nil, layers: layers, history: [], created: created, reference: cacheReference) { config in
                    var exec = config.config ?? ExecutionConfig()
                    exec.labels = [CNBLabel.cacheMetadata: labelValue]
                    config.config = exec
                }
            }
            if inputs.cacheDirectory != nil { _ = try cacheStore.prune() }
            try book.save()
            if let cacheImage = inputs.cacheImage, case .registry = inputs.location {
                try await inputs.location.publish(image, from: cacheStore, as: cacheImage)
            }
            log.info("Cache: \(layers.count) layer(s)")
        } catch let e as LifecycleError {
            throw e
        } catch {
            throw .imageIO(operation: "write", image: "the cache", cause: error)
        }
    }
}

extension LayerWriteOptions {
    /// The same options with entries owned by `owner`.
    func owned(by owner: (uid: Int, gid: Int)) -> LayerWriteOptions {
        var o = self
        o.uid = owner.uid
        o.gid = owner.gid
        return o
    }
}

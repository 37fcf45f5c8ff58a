import Buildpacks
import FoundationEssentials
import OCI
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// Writes the layers of an app image into the export target: buildpack layers and app slices
/// from directories, the launcher, the launch config and the SBOM layer. An unchanged directory
/// is recognised by its fingerprint (in the target, else in the cache directory) and its layer
/// reused without reading its bytes. Records which layers were reused and which added, for the log.
final class LayerFactory: @unchecked Sendable {
    let dest: WriteSession
    let book: FingerprintBook
    /// The cache directory's store: layers the restorer extracted from it have their blobs there.
    let cacheStore: ImageStore?
    /// The image being replaced: launch layers kept by metadata only come from it.
    let previous: LocatedImage?
    /// In a registry, the previous image's layers: their blobs are in the target repository (the
    /// work store holds only its manifest and config), so a directory whose fingerprint matches
    /// the layer recorded last time is reused without being read again, as in a store, and the
    /// push skips the blob. Empty elsewhere, where the previous image's blobs are local.
    let previousRemoteLayers: Set<Digest>
    let epoch: Int64
    let compression: Compression
    /// The CNB user, owner of buildpack layers, the SBOM layer and `<layers>/config`.
    let owner: (uid: Int, gid: Int)
    let log: Logger
    private(set) var reused: [String] = []
    private(set) var added: [String] = []

    init(dest: WriteSession, book: FingerprintBook, cacheStore: ImageStore?, previous: LocatedImage?, previousInRegistry: Bool = false,
         epoch: Int64, compression: Compression, owner: (uid: Int, gid: Int), log: Logger) {
        self.dest = dest
        self.book = book
        self.cacheStore = cacheStore
        self.previous = previous
        previousRemoteLayers = previousInRegistry ? Set(previous?.image.manifest.layers.map(\.digest) ?? []) : []
        self.epoch = epoch
        self.compression = compression
        self.owner = owner
        self.log = log
    }

    /// Options of layers owned by root (launcher, process links): reproducible time, chosen compression.
    var rootOptions: LayerWriteOptions { layerOptions(epoch: epoch, compression: compression) }
    /// Options of layers owned by the CNB user.
    var ownerOptions: LayerWriteOptions { layerOptions(epoch: epoch, compression: compression, owner: owner) }

    /// A directory to write as a layer: its absolute path is the entries' prefix; `part`
    /// limits it to one layer of the app's slicing (named `slice`); `what` names it in the log.
    struct DirectoryLayer: Sendable {
        var directory: String
        var slice = ""
        var what: String
        var part: Part? = nil
    }

    /// Layer `index` of an app's slicing: fingerprinted from the slicing walk's lstats.
    struct Part: Sendable {
        var slicing: AppSlices.Slicing
        var index: Int
    }

    /// The layers of several directories, in order. Those not recognised by fingerprint are
    /// written concurrently by `writers` threads (each layer compresses on every core too, but
    /// reading files, tar framing and the diffID hash are one thread's work per layer). The log says, in order, which
    /// were reused and which added; the first failure in order is thrown.
    func directories(_ requests: [DirectoryLayer]) throws(LifecycleError) -> [LayerResult] {
        let progress = LayerProgress.make(requests.count == 1 ? "layer '\(requests[0].what)'" : "\(requests.count) layers", parts: requests.count)
        let outcomes = concurrentMap(requests.count, width: Self.writers) { i in
            Result { () throws(LifecycleError) in try self.write(requests[i], progress: progress?.part(i)) }
        }
        LayerProgress.clear(progress)
        var results: [LayerResult] = []
        for (request, outcome) in zip(requests, outcomes) {
            let (result, how) = try outcome.get()
            switch how {
            case .recognised:
                log.info("Reusing layer '\(request.what)' with SHA \(result.diffID) (unchanged since the last export)")
            case .inPrevious:
                log.info("Reusing layer '\(request.what)' with SHA \(result.diffID)")
            case .added:
                log.info("Adding layer '\(request.what)' with SHA \(result.diffID)")
            }
            if how == .added { added.append(request.what) } else { reused.append(request.what) }
            results.append(result)
        }
        return results
    }

    /// How many layers are written at once: `CAIRN_LAYER_WRITERS` (1 writes them one after
    /// another, as bench/export.sh's baseline does), else one per two cores. A layer keeps about
    /// two cores busy by itself (one reading files and hashing, the rest compressing), so only
    /// cores beyond that are spare: on 2 cores, 2 writers measured 0.98x of 1 for three large
    /// layers and 1.0x for four layers of small files (bench/export.sh, 2026-12-03).
    static let writers: Int = {
        if let v = ProcessInfo.processInfo.environment["CAIRN_LAYER_WRITERS"], let n = Int(v), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
    }()

    enum Outcome { case recognised, inPrevious, added }

    /// One directory's layer: recognised by fingerprint in the target or the cache directory,
    /// else written (then recorded in the fingerprint book). Runs on any thread.
    private func write(_ r: DirectoryLayer, progress: (@Sendable (Int64) -> Void)?) throws(LifecycleError) -> (LayerResult, Outcome) {
        var o = ownerOptions
        o.prefix = layerPath(r.directory)
        let key = FingerprintBook.key(directory: r.directory, options: o, slice: r.slice)
        do {
            let fingerprint = try r.part.map { try $0.slicing.fingerprint($0.index) } ?? Fingerprint.of(r.directory)
            var known = book.lookup(key, fingerprint: fingerprint, in: dest.store, remote: previousRemoteLayers)
            if known == nil, let cacheStore, let cached = book.lookup(key, fingerprint: fingerprint, in: cacheStore) {
                try copyBlob(cached.digest, from: cacheStore, to: dest)
                known = cached
            }
            if let known { return (known, .recognised) }
            o.progress = progress
            o.include = r.part.flatMap { $0.slicing.include($0.index) }
            let result = try dest.writeLayer(directory: r.directory, options: o)
            book.record(key, fingerprint: fingerprint, result)
            let inPrevious = previous?.image.config.rootfs.diffIDs.contains(result.diffID) ?? false
            return (result, inPrevious ? .inPrevious : .added)
        } catch let e as LifecycleError {
            throw e
        } catch {
            throw .layer(operation: "write", layer: "layer \(r.what) from \(r.directory)", cause: error)
        }
    }

    /// A launch layer kept by metadata only (buildpack.md, Export 2): the previous image's layer
    /// with `diffID` (from its lifecycle metadata), its blob copied to the target.
    func fromPrevious(diffID sha: String?, what: String) throws(LifecycleError) -> LayerResult {
        guard let sha, let diffID = Digest(sha), let previous, let d = previous.image.layer(diffID: diffID)?.descriptor else {
            throw .imageContent(image: "the previous image", reason: "has no layer \(what) to reuse, and the layer has launch = true but no directory")
        }
        do { try copyBlob(d.digest, from: previous.store, to: dest) } catch { throw .layer(operation: "reuse", layer: "layer \(what)", cause: error) }
        log.info("Reusing layer '\(what)' with SHA \(diffID) from the previous image")
        reused.append(what)
        return LayerResult(diffID: diffID, digest: d.digest, size: d.size, uncompressedSize: 0, mediaType: d.mediaType, entries: 0)
    }

    /// `/cnb/lifecycle/launcher` from the file at `path`, recognised by the file's digest.
    func launcher(_ path: String) throws(LifecycleError) -> LayerResult {
        do {
            let digest = try sha256(file: path)
            let key = "launcher|\(epoch)|\(compression)|\(rootOptions.level.map(String.init) ?? "default")"
            if let known = book.lookup(key, fingerprint: digest, in: dest.store) { return known }
            let o = rootOptions
            let (result, _, _) = try dest.writeBlob { output in
                try LayerWriter.writeStream(options: o, to: output) { tar in
                    for dir in ["cnb", "cnb/lifecycle"] {
                        try tar.writeHeader(TarHeader(name: dir, type: .directory, mode: 0o755, mtime: o.mtime))
                    }
                    let fd = open(path, O_RDONLY | O_CLOEXEC)
                    guard fd >= 0 else { throw LifecycleError.io(operation: "open", path: path, reason: String(cString: strerror(errno))) }
                    defer { close(fd) }
                    var st = stat()
                    guard fstat(fd, &st) == 0 else {
                        throw LifecycleError.io(operation: "stat", path: path, reason: String(cString: strerror(errno)))
                    }
                    var h = TarHeader(name: "cnb/lifecycle/launcher", type: .regular, mode: 0o755, mtime: o.mtime)
                    h.size = Int64(st.st_size)
                    try tar.writeFile(h, fd: fd, path: path)
                    return 3
                }
            }
            book.record(key, fingerprint: digest, result)
            return result
        } catch let e as LifecycleError {
            throw e
        } catch {
            throw .layer(operation: "write", layer: "the launcher layer from \(path)", cause: error)
        }
    }

    /// `/cnb/process/<type>` links to the launcher and `<layers>/config/metadata.toml`.
    func launchConfig(processes: [String], metadataPath: String, layersDirectory: String) throws(LifecycleError) -> LayerResult {
        do {
            let metadata = [UInt8](try FS.read(metadataPath))
            let o = rootOptions
            let owner = owner
            let (result, _, _) = try dest.writeBlob { output in
                try LayerWriter.writeStream(options: o, to: output) { tar in
                    var n = 0
                    for dir in ["cnb", "cnb/process"] {
                        try tar.writeHeader(TarHeader(name: dir, type: .directory, mode: 0o755, mtime: o.mtime))
                        n += 1
                    }
                    for type in Set(processes).sorted() {
                        var h = TarHeader(name: "cnb/process/" + type, type: .symlink, mode: 0o777, mtime: o.mtime)
                        h.linkName = CNBPath.launcher
                        try tar.writeHeader(h)
                        n += 1
                    }
                    var path = ""
                    for component in layersDirectory.split(separator: "/").map(String.init) + ["config"] {
                        path += (path.isEmpty ? "" : "/") + component
                        try tar.writeHeader(TarHeader(name: path, type: .directory, mode: 0o755, uid: owner.uid, gid: owner.gid, mtime: o.mtime))
                        n += 1
                    }
                    try tar.writeFile(TarHeader(name: path + "/metadata.toml", type: .regular, mode: 0o644, uid: owner.uid, gid: owner.gid,
                                                mtime: o.mtime), contents: metadata)
                    return n + 1
                }
            }
            return result
        } catch {
            throw .layer(operation: "write", layer: "the launch config layer", cause: error)
        }
    }

    /// `<layers>/sbom/launch/<bp>/sbom.<ext>` and `<layers>/sbom/launch/<bp>/<layer>/sbom.<ext>`
    /// from the buildpacks' `launch.sbom.<ext>` and `<layer>.sbom.<ext>` files (platform.md,
    /// exporter); nil when no buildpack wrote one.
    func sbom(_ outputs: [BuildpackOutput], layersDirectory: String) throws(LifecycleError) -> LayerResult? {
        var files: [(target: String, source: String)] = []
        for out in outputs {
            let escaped = out.element.id.escaped
            let launchLayers = Set(out.layers.filter { $0.file.effectiveTypes.launch }.map(\.name))
            for sbom in out.sbomFiles {
                if sbom.owner == "launch" {
                    files.append(("\(escaped)/sbom.\(sbom.ext)", sbom.path))
                } else if launchLayers.contains(sbom.owner) {
                    files.append(("\(escaped)/\(sbom.owner)/sbom.\(sbom.ext)", sbom.path))
                }
            }
        }
        return try filesLayer(files, root: layerPath(layersDirectory + "/sbom/launch"), options: ownerOptions, into: dest)
    }
}

/// A layer of files (`target` paths under `root`, with their parent directories) owned by
/// `options.owner`; nil when there are none. It holds SBOM files, in the app image and the cache.
func filesLayer(_ files: [(target: String, source: String)], root: String, options o: LayerWriteOptions,
                into store: WriteSession) throws(LifecycleError) -> LayerResult? {
    guard !files.isEmpty else { return nil }
    do {
        let (result, _, _) = try store.writeBlob { output in
            try LayerWriter.writeStream(options: o, to: output) { tar in
                var written = Set<String>()
                var n = 0
                for (target, source) in files.sorted(by: { $0.target < $1.target }) {
                    let full = root.isEmpty ? target : root + "/" + target
                    var dir = ""
                    for component in full.split(separator: "/").dropLast() {
                        dir += (dir.isEmpty ? "" : "/") + component
                        if written.insert(dir).inserted {
                            try tar.writeHeader(TarHeader(name: dir, type: .directory, mode: 0o755, uid: o.uid, gid: o.gid, mtime: o.mtime))
                            n += 1
                        }
                    }
                    try tar.writeFile(TarHeader(name: full, type: .regular, mode: 0o644, uid: o.uid, gid: o.gid, mtime: o.mtime),
                                      contents: [UInt8](try FS.read(source)))
                    n += 1
                }
                return n
            }
        }
        return result
    } catch {
        throw .layer(operation: "write", layer: "the SBOM layer", cause: error)
    }
}

import Buildpacks
import Foundation
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// What the exporter reads and where it writes (platform.md, exporter Inputs).
public struct ExporterInputs: Sendable {
    public var layersDirectory: String
    public var appDirectory: String
    public var groupPath: String
    public var analyzedPath: String
    public var runPath: String?
    /// `runPath` is a stack.toml (Platform API < 0.12), not a run.toml.
    public var runPathIsStackFile = false
    /// `-run-image` (Platform API < 0.12): the run image, instead of analyzed.toml's.
    public var runImage: String?
    public var projectMetadataPath: String
    public var reportPath: String
    public var launcherPath: String
    public var processType: String?
    public var cacheDirectory: String?
    public var cacheImage: String?
    public var tags: [String]
    public var location: ImageLocation
    public var uid: Int
    public var gid: Int
    /// mtime of new layers and `created` of the config: SOURCE_DATE_EPOCH or the fixed time.
    public var epoch: Int64
    public var compression: Compression
    public var platformAPI: APIVersion
    /// `-parallel`: write the cache while the image is published.
    public var parallel = false
    /// The execution environment of the build (`CNB_EXEC_ENV`), recorded in the image.
    public var execEnv: String?

    public init(layersDirectory: String, appDirectory: String, groupPath: String, analyzedPath: String, runPath: String?,
                projectMetadataPath: String, reportPath: String, launcherPath: String, processType: String?,
                cacheDirectory: String?, cacheImage: String?, tags: [String], location: ImageLocation, uid: Int, gid: Int,
                epoch: Int64, compression: Compression = .gzip, platformAPI: APIVersion) {
        self.layersDirectory = layersDirectory
        self.appDirectory = appDirectory
        self.groupPath = groupPath
        self.analyzedPath = analyzedPath
        self.runPath = runPath
        self.projectMetadataPath = projectMetadataPath
        self.reportPath = reportPath
        self.launcherPath = launcherPath
        self.processType = processType
        self.cacheDirectory = cacheDirectory
        self.cacheImage = cacheImage
        self.tags = tags
        self.location = location
        self.uid = uid
        self.gid = gid
        self.epoch = epoch
        self.compression = compression
        self.platformAPI = platformAPI
    }
}

/// What an export did, for the report and the log.
public struct ExportResult: Sendable {
    public var image: StoredImage
    public var reused: [String]
    public var added: [String]
}

/// The export phase: run image + launch layers + app slices + launcher + launch config + SBOM →
/// an app image; cache layers → the cache (platform.md, exporter; buildpack.md, Export).
public struct Exporter: Sendable {
    let inputs: ExporterInputs
    let log: Logger

    public init(inputs: ExporterInputs, log: Logger) {
        self.inputs = inputs
        self.log = log
    }

    /// One layer of the new image and its history line.
    struct NewLayer {
        var result: LayerResult
        var createdBy: String
    }

    public func run() async throws(LifecycleError) -> ExportResult {
        guard let firstTag = inputs.tags.first else { throw .invalidInput("at least one image tag is required") }
        for tag in inputs.tags {
            do {
                let ref = try ImageReference(parsing: tag)
                guard ref.digest == nil else { throw LifecycleError.invalidInput("\(tag) is a digest reference; the exporter needs tag references") }
            } catch let e as LifecycleError { throw e } catch { throw .invalidInput("image reference \"\(tag)\": \(error)") }
        }
        let group = try readFile(GroupFile.self, inputs.groupPath)
        let metadataPath = inputs.layersDirectory + "/" + CNBPath.configMetadata
        let buildMetadata = try readFile(BuildMetadataFile.self, metadataPath)
        let analyzed = try readFile(AnalyzedFile.self, inputs.analyzedPath)
        // An unknown -process-type fails before anything is written to the target.
        if let requested = inputs.processType, !requested.isEmpty,
           !buildMetadata.processes.contains(where: { $0.type.description == requested }) {
            let known = buildMetadata.processes.map(\.type.description).sorted().joined(separator: ", ")
            throw .invalidInput("process type \(requested) is not one of the buildpack-provided processes (\(known.isEmpty ? "none" : known))")
        }

        // Run image
        guard let runName = inputs.runImage ?? analyzed.runImage?.image ?? analyzed.runImage?.reference else {
            throw .invalidInput("\(inputs.analyzedPath) names no run image ([run-image] image)")
        }
        guard let run = try await inputs.location.find(runName, layers: false) else { throw .image("run image \(runName) not found") }
        // Previous image, for layers that were kept by metadata only
        var previous: LocatedImage?
        var previousMetadata = LifecycleMetadataLabel()
        if let ref = analyzed.image?.reference {
            previous = try await inputs.location.find(ref, layers: false)
            // An unreadable label means no layer is reused from the previous image, as none is known.
            previousMetadata = (try? previous?.image.lifecycleMetadata()) ?? LifecycleMetadataLabel()
        }

        let dest = try inputs.location.destination(for: firstTag)
        let book = FingerprintBook(cacheDirectory: inputs.cacheDirectory)
        // Layers the restorer extracted from the cache are recorded with the cache's blobs.
        let cacheStore = inputs.cacheDirectory.flatMap { FileManager.default.fileExists(atPath: $0 + "/index.json") ? try? ImageStore(root: $0) : nil }
        var reused: [String] = []
        var added: [String] = []
        var layers: [NewLayer] = []
        var label = LifecycleMetadataLabel(execEnv: inputs.execEnv)
        do {
            try copyImage(run.image, from: run.store, to: dest)
        } catch {
            throw .image("cannot copy run image \(runName) to the export target: \(error)")
        }

        let created = inputs.epoch == LayerWriteOptions.normalizedTime ? normalizedCreated : rfc3339(inputs.epoch)
        let options = layerOptions(owner: (inputs.uid, inputs.gid))
        let outputs = try buildpackOutputs(group)
        // Launch layers written from a directory, by "<bp>:<layer>": the cache shares their blobs.
        var launchResults: [String: LayerResult] = [:]

        /// Writes (or recognises by fingerprint) the layer of a directory.
        func layer(_ directory: String, prefix: String, include: Set<String>? = nil, slice: String = "", what: String) throws(LifecycleError) -> LayerResult {
            var o = options
            o.prefix = prefix
            o.include = include
            let key = FingerprintBook.key(directory: directory, options: o, slice: slice)
            do {
                let fingerprint = try Fingerprint.of(directory, include: include)
                var known = book.lookup(key, fingerprint: fingerprint, in: dest)
                if known == nil, let cacheStore, let cached = book.lookup(key, fingerprint: fingerprint, in: cacheStore) {
                    try copyBlob(cached.digest, from: cacheStore, to: dest)
                    known = cached
                }
                if let known {
                    log.info("Reusing layer '\(what)' with SHA \(known.diffID) (unchanged since the last export)")
                    reused.append(what)
                    return known
                }
                o.progress = LayerProgress.make(what)
                let result = try dest.writeLayer(directory: directory, options: o)
                LayerProgress.clear(o.progress)
                book.record(key, fingerprint: fingerprint, result)
                if previousHas(result.diffID) {
                    log.info("Reusing layer '\(what)' with SHA \(result.diffID)")
                    reused.append(what)
                } else {
                    log.info("Adding layer '\(what)' with SHA \(result.diffID)")
                    added.append(what)
                }
                return result
            } catch let e as LifecycleError {
                throw e
            } catch {
                throw .image("cannot write layer \(what) from \(directory): \(error)")
            }
        }
        func previousHas(_ diffID: Digest) -> Bool { previous?.image.config.rootfs.diffIDs.contains(diffID) ?? false }

        // 1. Launch layers of each buildpack, in group order then layer name.
        for out in outputs {
            let bp = out.element
            var entry = LifecycleMetadataLabel.BuildpackLayers(key: bp.id.description, version: bp.version)
            entry.store = try readFileIfPresent(StoreFile.self, out.directory + "/store.toml")
            for (name, file) in out.layers {
                let types = file.effectiveTypes
                guard types.launch else { continue }
                let what = "\(bp.id):\(name)"
                let result: LayerResult
                if FileManager.default.fileExists(atPath: out.path(name)) {
                    result = try layer(out.path(name), prefix: layerPath(out.path(name)), what: what)
                    launchResults[what] = result
                } else {
                    // Kept by metadata only: the layer of the previous image (buildpack.md, Export 2).
                    guard let sha = previousMetadata.buildpack(bp.id.description)?.layers[name]?.sha, let diffID = Digest(sha),
                          let previous, let d = previous.image.layer(diffID: diffID)?.descriptor
                    else {
                        throw .image("layer \(what) has launch = true but no directory, and the previous image has no such layer to reuse")
                    }
                    do { try copyBlob(d.digest, from: previous.store, to: dest) } catch { throw .image("cannot reuse layer \(what): \(error)") }
                    result = LayerResult(diffID: diffID, digest: d.digest, size: d.size, uncompressedSize: 0, mediaType: d.mediaType, entries: 0)
                    log.info("Reusing layer '\(what)' with SHA \(diffID) from the previous image")
                    reused.append(what)
                }
                layers.append(NewLayer(result: result, createdBy: "Buildpacks Launch Layer: \(what)"))
                entry.layers[name] = .init(sha: result.diffID.description, data: file.metadata, build: types.build, launch: true, cache: types.cache)
            }
            label.buildpacks.append(entry)
        }

        // 2. App layers: one per slice with files, then the rest.
        let slices = try appSlices(buildMetadata.slices)
        for (i, include) in slices.enumerated() {
            let what = i == slices.count - 1 ? "app" : "slice-\(i + 1)"
            let result = try layer(inputs.appDirectory, prefix: layerPath(inputs.appDirectory), include: include, slice: what, what: what)
            layers.append(NewLayer(result: result, createdBy: "Application Layer"))
            label.app.append(.init(sha: result.diffID.description))
        }

        // 3. Launcher, 4. launch config (process links + metadata.toml), 5. SBOM.
        let launcher = try launcherLayer(dest: dest, book: book)
        layers.append(NewLayer(result: launcher, createdBy: "Buildpacks Application Launcher"))
        label.launcher = .init(sha: launcher.diffID.description)
        let config = try configLayer(dest: dest, processes: buildMetadata.processes.map(\.type.description), metadataPath: metadataPath)
        layers.append(NewLayer(result: config, createdBy: "Buildpacks Process Types"))
        label.config = .init(sha: config.diffID.description)
        if let sbom = try sbomLayer(dest: dest, outputs: outputs) {
            layers.append(NewLayer(result: sbom, createdBy: "Software Bill-of-Materials"))
            label.sbom = .init(sha: sbom.diffID.description)
        }

        // Run image identity for rebase.
        let runFile = try inputs.runPath.flatMap { path throws(LifecycleError) in try readRunFile(path, stackFile: inputs.runPathIsStackFile) }
        let mirrors = runFile?.images.first { $0.image == runName || ($0.mirrors ?? []).contains(runName) }?.mirrors
        label.runImage = .init(topLayer: run.image.config.rootfs.diffIDs.last?.description,
                               reference: analyzed.runImage?.reference ?? inputs.location.uniqueReference(runName, run.image),
                               image: runName, mirrors: mirrors)
        label.stack = .init(runImage: .init(image: runName, mirrors: mirrors))

        // Entrypoint (platform.md, exporter Outputs).
        let processTypes = Set(buildMetadata.processes.map(\.type.description))
        let entrypoint: String
        if let requested = inputs.processType, !requested.isEmpty {
            guard processTypes.contains(requested) else {
                throw .invalidInput("process type \(requested) is not one of the buildpack-provided processes (\(processTypes.sorted().joined(separator: ", ")))")
            }
            entrypoint = CNBPath.processDir + "/" + requested
        } else if let d = buildMetadata.buildpackDefaultProcessType, processTypes.contains(d) {
            entrypoint = CNBPath.processDir + "/" + d
        } else {
            entrypoint = CNBPath.launcher
        }

        let buildLabel = BuildMetadataLabel(
            processes: buildMetadata.processes.map(BuildMetadataLabel.Process.init),
            buildpacks: group.group.map(BuildMetadataLabel.Module.init),
            extensions: group.groupExtensions.map { $0.map(BuildMetadataLabel.Module.init) },
            launcher: .init(version: cairnVersion))
        let project = try readFileIfPresent(AnyTOML.self, inputs.projectMetadataPath) ?? .table([:])
        let labels: [String: String]
        do {
            var l: [String: String] = [:]
            for launchLabel in buildMetadata.labels ?? [] { l[launchLabel.key] = launchLabel.value }
            l[CNBLabel.lifecycleMetadata] = try json(label)
            l[CNBLabel.buildMetadata] = try json(buildLabel)
            l[CNBLabel.projectMetadata] = try json(project)
            l[CNBLabel.rebasable] = "true"
            labels = l
        } catch {
            throw .image("cannot encode image labels: \(error)")
        }

        let app = inputs.appDirectory
        let layersDir = inputs.layersDirectory
        let image: StoredImage
        do {
            image = try dest.commitImage(
                base: run.image, layers: layers.map(\.result),
                history: layers.map { History(created: created, createdBy: $0.createdBy) },
                created: created, reference: firstTag
            ) { config in
                var exec = config.config ?? ExecutionConfig()
                var env = (exec.env ?? []).filter {
                    !$0.hasPrefix(CNBEnv.layersDir + "=") && !$0.hasPrefix(CNBEnv.appDir + "=") && !$0.hasPrefix("PATH=")
                }
                let runPath = (exec.env ?? []).first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) }
                    ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                env.append(CNBEnv.layersDir + "=" + layersDir)
                env.append(CNBEnv.appDir + "=" + app)
                env.append("PATH=" + CNBPath.processDir + ":" + runPath)
                exec.env = env
                exec.entrypoint = [entrypoint]
                exec.cmd = nil
                exec.workingDir = app
                var merged = exec.labels ?? [:]
                merged.merge(labels) { _, new in new }
                exec.labels = merged
                config.config = exec
            }
        } catch {
            throw .image("cannot write the app image: \(error)")
        }
        // With -parallel the cache is written while the image is published (a push can take long).
        let cacheTask: Task<Void, any Error>? = inputs.parallel
            ? Task { [self, outputs, launchResults, dest, book, options, created] in
                try await exportCache(outputs: outputs, launchResults: launchResults, dest: dest, book: book, options: options, created: created)
            }
            : nil
        do {
            for tag in inputs.tags {
                try await inputs.location.publish(image, from: dest, as: tag)
                log.info("*** Image: \(tag)@\(image.digest)")
            }
        } catch {
            _ = await cacheTask?.result
            throw error
        }
        var report = ReportFile(image: .init(tags: inputs.tags, digest: image.digest.description, manifestSize: image.descriptor.size))
        report.image.imageID = image.manifest.config.digest.description
        try writeFile(report, inputs.reportPath)

        if let cacheTask {
            do { try await cacheTask.value } catch let e as LifecycleError { throw e } catch { throw .image("cannot write the cache: \(error)") }
        } else {
            try await exportCache(outputs: outputs, launchResults: launchResults, dest: dest, book: book, options: options, created: created)
        }
        do { try book.save() } catch { log.warn("cannot save layer fingerprints: \(error)") }
        return ExportResult(image: image, reused: reused, added: added)
    }

    // MARK: pieces

    /// A buildpack's `<layers>/<bp>/` after the build, its layer metadata read once.
    struct BuildpackOutput: Sendable {
        let element: GroupElement
        let directory: String
        /// Every `<layer>.toml` but the buildpack's own files, by layer name.
        let layers: [(name: String, file: LayerMetadataFile)]

        func path(_ name: String) -> String { directory + "/" + name }

        var sbomFiles: [SBOMFile] { Lifecycle.sbomFiles(in: directory) }
    }

    func buildpackOutputs(_ group: GroupFile) throws(LifecycleError) -> [BuildpackOutput] {
        var outputs: [BuildpackOutput] = []
        for bp in group.group {
            let dir = inputs.layersDirectory + "/" + bp.id.escaped
            let names = ((try? FS.listDirectory(dir)) ?? [])
                .filter { $0.hasSuffix(".toml") }
                .map { String($0.dropLast(5)) }
                .filter { !Builder.reservedNames.contains($0) }
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            var layers: [(name: String, file: LayerMetadataFile)] = []
            for name in names { layers.append((name, try readFile(LayerMetadataFile.self, dir + "/" + name + ".toml"))) }
            outputs.append(BuildpackOutput(element: bp, directory: dir, layers: layers))
        }
        return outputs
    }

    /// Options of the layers the exporter writes itself (owned by root): reproducible time,
    /// chosen compression.
    var layerOptions: LayerWriteOptions { Lifecycle.layerOptions(epoch: inputs.epoch, compression: inputs.compression) }

    /// The same for layers of buildpack directories, owned by the CNB user.
    func layerOptions(owner: (uid: Int, gid: Int)) -> LayerWriteOptions {
        Lifecycle.layerOptions(epoch: inputs.epoch, compression: inputs.compression, owner: owner)
    }

    /// The app directory split by slices (buildpack.md, launch.toml slices): one include set per
    /// slice that matched something, then the rest. Each set holds matched paths and their parents.
    func appSlices(_ slices: [LaunchFile.Slice]) throws(LifecycleError) -> [Set<String>?] {
        guard !slices.isEmpty else { return [nil] }
        var all: [(path: String, isDir: Bool)] = []
        func walk(_ dir: String, _ inner: String) throws {
            for name in try FS.listDirectory(dir).sorted() {
                let rel = inner + name
                let isDir = FS.isDirectory(dir + "/" + name)
                all.append((rel, isDir))
                if isDir { try walk(dir + "/" + name, rel + "/") }
            }
        }
        do { try walk(inputs.appDirectory, "") } catch { throw .io(operation: "read", path: inputs.appDirectory, reason: "\(error)") }
        var owner: [String: Int] = [:]
        for (i, slice) in slices.enumerated() {
            let patterns = slice.paths.map { p -> String in
                var p = p
                if p.hasPrefix(inputs.appDirectory + "/") { p = String(p.dropFirst(inputs.appDirectory.count + 1)) }
                while p.hasPrefix("./") { p = String(p.dropFirst(2)) }
                return p
            }
            for entry in all where owner[entry.path] == nil {
                // A path belongs to the slice when it or one of its parents matches a glob.
                var candidate = entry.path
                var matched = false
                while true {
                    if patterns.contains(where: { fnmatch($0, candidate, FNM_PATHNAME) == 0 }) { matched = true; break }
                    guard let slash = candidate.lastIndex(of: "/") else { break }
                    candidate = String(candidate[..<slash])
                }
                if matched { owner[entry.path] = i }
            }
        }
        var sets = [Set<String>](repeating: [], count: slices.count + 1)
        for (n, entry) in all.enumerated() {
            let i = owner[entry.path] ?? slices.count
            // An unowned directory with entries below it comes along as their parent, wherever they go.
            let hasChildren = n + 1 < all.count && all[n + 1].path.hasPrefix(entry.path + "/")
            if entry.isDir && owner[entry.path] == nil && hasChildren { continue }
            var p = entry.path
            sets[i].insert(p)
            while let slash = p.lastIndex(of: "/") {
                p = String(p[..<slash])
                sets[i].insert(p)
            }
        }
        var out: [Set<String>?] = sets.dropLast().filter { !$0.isEmpty }
        out.append(sets.last!)  // the rest: always one layer, even when empty
        return out
    }

    /// `/cnb/lifecycle/launcher`, recognised by the launcher file's digest.
    func launcherLayer(dest: ImageStore, book: FingerprintBook) throws(LifecycleError) -> LayerResult {
        let path = inputs.launcherPath
        do {
            let digest = try sha256(file: path)
            let key = "launcher|\(inputs.epoch)|\(inputs.compression)"
            if let known = book.lookup(key, fingerprint: digest, in: dest) { return known }
            let o = layerOptions
            let (result, _, _) = try dest.writeBlob { output in
                try LayerWriter.writeStream(options: o, to: output) { tar in
                    var n = 0
                    for dir in ["cnb", "cnb/lifecycle"] {
                        try tar.writeHeader(TarHeader(name: dir, type: .directory, mode: 0o755, mtime: o.mtime))
                        n += 1
                    }
                    let fd = open(path, O_RDONLY | O_CLOEXEC)
                    guard fd >= 0 else { throw LifecycleError.io(operation: "open", path: path, reason: String(cString: strerror(errno))) }
                    defer { close(fd) }
                    var st = stat()
                    fstat(fd, &st)
                    var h = TarHeader(name: "cnb/lifecycle/launcher", type: .regular, mode: 0o755, mtime: o.mtime)
                    h.size = Int64(st.st_size)
                    try tar.writeFile(h, fd: fd, path: path)
                    return n + 1
                }
            }
            book.record(key, fingerprint: digest, result)
            return result
        } catch let e as LifecycleError {
            throw e
        } catch {
            throw .image("cannot write the launcher layer from \(path): \(error)")
        }
    }

    /// `/cnb/process/<type>` links to the launcher and `<layers>/config/metadata.toml`.
    func configLayer(dest: ImageStore, processes: [String], metadataPath: String) throws(LifecycleError) -> LayerResult {
        do {
            let metadata = [UInt8](try FS.read(metadataPath))
            let o = layerOptions
            let layersPrefix = inputs.layersDirectory.split(separator: "/").map(String.init)
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
                    for component in layersPrefix + ["config"] {
                        path += (path.isEmpty ? "" : "/") + component
                        try tar.writeHeader(TarHeader(name: path, type: .directory, mode: 0o755, uid: inputs.uid, gid: inputs.gid, mtime: o.mtime))
                        n += 1
                    }
                    try tar.writeFile(TarHeader(name: path + "/metadata.toml", type: .regular, mode: 0o644, uid: inputs.uid, gid: inputs.gid,
                                                mtime: o.mtime), contents: metadata)
                    return n + 1
                }
            }
            return result
        } catch {
            throw .image("cannot write the launch config layer: \(error)")
        }
    }

    /// `<layers>/sbom/launch/<bp>/sbom.<ext>` and `<layers>/sbom/launch/<bp>/<layer>/sbom.<ext>`
    /// from the buildpacks' `launch.sbom.<ext>` and `<layer>.sbom.<ext>` files (platform.md,
    /// exporter); nil when no buildpack wrote one.
    func sbomLayer(dest: ImageStore, outputs: [BuildpackOutput]) throws(LifecycleError) -> LayerResult? {
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
        let root = layerPath(inputs.layersDirectory + "/sbom/launch")
        return try writeFiles(files, root: root, into: dest)
    }

    /// A layer of files (`target` paths under `root`, with their parent directories) owned by
    /// the CNB user; nil when there are none.
    func writeFiles(_ files: [(target: String, source: String)], root: String, into store: ImageStore) throws(LifecycleError) -> LayerResult? {
        guard !files.isEmpty else { return nil }
        do {
            let o = layerOptions
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
                                try tar.writeHeader(TarHeader(name: dir, type: .directory, mode: 0o755, uid: inputs.uid, gid: inputs.gid, mtime: o.mtime))
                                n += 1
                            }
                        }
                        try tar.writeFile(TarHeader(name: full, type: .regular, mode: 0o644, uid: inputs.uid, gid: inputs.gid, mtime: o.mtime),
                                          contents: [UInt8](try FS.read(source)))
                        n += 1
                    }
                    return n
                }
            }
            return result
        } catch {
            throw .image("cannot write the SBOM layer: \(error)")
        }
    }

    /// Cache layers (`cache = true`) go to the cache directory (an image store) under one cache
    /// image whose label records each layer's diffID and metadata; a cache image in a registry
    /// is pushed from it. Launch+cache layers share the app image's blob.
    func exportCache(outputs: [BuildpackOutput], launchResults: [String: LayerResult], dest: ImageStore, book: FingerprintBook,
                     options: LayerWriteOptions, created: String) async throws(LifecycleError) {
        guard inputs.cacheDirectory != nil || inputs.cacheImage != nil else { return }
        let cacheStore: ImageStore
        do {
            if let dir = inputs.cacheDirectory {
                cacheStore = try ImageStore(root: dir)
            } else if case .registry(_, let work) = inputs.location {
                cacheStore = work
            } else {
                throw LifecycleError.invalidInput("a cache image needs a registry target; use a cache directory instead")
            }
        } catch let e as LifecycleError { throw e } catch { throw .io(operation: "open cache", path: inputs.cacheDirectory ?? "", reason: "\(error)") }

        var metadata = LifecycleMetadataLabel()
        var cacheLayers: [LayerResult] = []
        // The cached layers' SBOM files go in one layer: `<bp>/<layer>.sbom.<ext>`.
        var sbomFiles: [(target: String, source: String)] = []
        for out in outputs {
            let bp = out.element
            var entry = LifecycleMetadataLabel.BuildpackLayers(key: bp.id.description, version: bp.version)
            for (name, file) in out.layers {
                let types = file.effectiveTypes
                guard types.cache, FileManager.default.fileExists(atPath: out.path(name)) else { continue }
                let what = "\(bp.id):\(name)"
                do {
                    let result: LayerResult
                    if let shared = launchResults[what] {
                        // Written (or recognised) for the app image just now: same bytes.
                        try copyBlob(shared.digest, from: dest, to: cacheStore)
                        result = shared
                    } else {
                        var o = options
                        o.prefix = layerPath(out.path(name))
                        let key = FingerprintBook.key(directory: out.path(name), options: o)
                        let fingerprint = try Fingerprint.of(out.path(name))
                        if let known = book.lookup(key, fingerprint: fingerprint, in: cacheStore) {
                            result = known
                        } else {
                            result = try cacheStore.writeLayer(directory: out.path(name), options: o)
                            book.record(key, fingerprint: fingerprint, result)
                        }
                    }
                    cacheLayers.append(result)
                    entry.layers[name] = .init(sha: result.diffID.description, data: file.metadata, build: types.build,
                                               launch: types.launch, cache: true)
                    log.debug("Caching layer '\(what)' with SHA \(result.diffID)")
                } catch {
                    throw .image("cannot cache layer \(what): \(error)")
                }
            }
            for sbom in out.sbomFiles where entry.layers[sbom.owner] != nil {
                sbomFiles.append((bp.id.escaped + "/" + URL(fileURLWithPath: sbom.path).lastPathComponent, sbom.path))
            }
            metadata.buildpacks.append(entry)
        }
        if let sbom = try writeFiles(sbomFiles, root: "", into: cacheStore) {
            cacheLayers.append(sbom)
            metadata.sbom = .init(sha: sbom.diffID.description)
        }
        do {
            let labelValue = try json(metadata)
            let image = try cacheStore.commitImage(base: nil, layers: cacheLayers, history: [], created: created,
                                                   reference: cacheReference) { config in
                var exec = config.config ?? ExecutionConfig()
                exec.labels = [CNBLabel.cacheMetadata: labelValue]
                config.config = exec
            }
            if inputs.cacheDirectory != nil { _ = try cacheStore.prune() }
            try book.save()
            if let cacheImage = inputs.cacheImage, case .registry = inputs.location {
                try await inputs.location.publish(image, from: cacheStore, as: cacheImage)
            }
            log.info("Cache: \(cacheLayers.count) layer(s)")
        } catch let e as LifecycleError {
            throw e
        } catch {
            throw .image("cannot write the cache: \(error)")
        }
    }
}

/// A one-line byte counter per layer being written, on a terminal only (stdout is the log).
enum LayerProgress {
    static let onTerminal = isatty(1) == 1

    static func make(_ what: String) -> (@Sendable (Int64) -> Void)? {
        guard onTerminal else { return nil }
        let last = LockedBox(Date.distantPast)
        return { bytes in
            let now = Date()
            guard last.swap(if: { now.timeIntervalSince($0) > 0.2 }, now) else { return }
            FileHandle.standardOutput.write(Data("\r  writing layer '\(what)': \(bytes >> 20) MiB\u{1b}[K".utf8))
        }
    }

    static func clear(_ progress: (@Sendable (Int64) -> Void)?) {
        if progress != nil { FileHandle.standardOutput.write(Data("\r\u{1b}[K".utf8)) }
    }
}

/// A value behind a lock.
final class LockedBox<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    /// Replaces the value with `new` when `condition` holds for the current one.
    func swap(if condition: (T) -> Bool, _ new: T) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard condition(value) else { return false }
        value = new
        return true
    }
}

/// The name of the cache image inside a cache directory.
public let cacheReference = "cairn-cache:latest"

/// The version recorded as the launcher's in `io.buildpacks.build.metadata`.
public let cairnVersion = "0.1.0"

/// A label value: the value's canonical JSON.
func json<T: Encodable>(_ value: T) throws -> String {
    String(decoding: try CanonicalJSON.encode(value), as: UTF8.self)
}

/// A `<owner>.sbom.<ext>` file in a buildpack's layers directory (owner: a layer name, or
/// `launch`/`build`).
typealias SBOMFile = (owner: String, ext: String, path: String)

/// The SBOM files of a buildpack's layers directory, sorted by name.
func sbomFiles(in directory: String) -> [SBOMFile] {
    ((try? FS.listDirectory(directory)) ?? []).sorted().compactMap { name in
        guard let r = name.range(of: ".sbom.") else { return nil }
        return (String(name[..<r.lowerBound]), String(name[r.upperBound...]), directory + "/" + name)
    }
}

/// An absolute path as a layer entry name (no leading slash).
func layerPath(_ absolute: String) -> String { absolute.split(separator: "/").joined(separator: "/") }

func sha256(file path: String) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw LifecycleError.io(operation: "read", path: path, reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    var d = DigestingCounter()
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break }
        buffer.withUnsafeBytes { d.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
    return d.finalize().description
}

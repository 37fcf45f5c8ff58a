import Buildpacks
import FoundationEssentials
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
    /// `-extended` (`CNB_EXTENDED_DIR`, default `<layers>/extended`): `run/` holds the extended run
    /// image (an OCI layout with its manifest, config and new layers) when extensions changed it.
    public var extendedDirectory: String?

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

    /// What the build left for the export, read once.
    struct BuildOutputs {
        var group: GroupFile
        var metadata: BuildMetadataFile
        var analyzed: AnalyzedFile
        var buildpacks: [BuildpackOutput]
    }

    public func run() async throws(LifecycleError) -> ExportResult {
        let firstTag = try checkedTags()
        let metadataPath = inputs.layersDirectory + "/" + CNBPath.configMetadata
        let group = try readGroup(inputs.groupPath)
        let build = BuildOutputs(group: group, metadata: try readFile(BuildMetadataFile.self, metadataPath),
                                 analyzed: try readFile(AnalyzedFile.self, inputs.analyzedPath),
                                 buildpacks: try BuildpackOutput.read(group, layersDirectory: inputs.layersDirectory))
        // An unknown -process-type fails before anything is written to the target.
        let entrypoint = try entrypoint(build.metadata)

        guard let runName = inputs.runImage ?? build.analyzed.runImage?.image ?? build.analyzed.runImage?.reference else {
            throw .missingInput(what: "no run image", hint: "\(inputs.analyzedPath) names none ([run-image] image)")
        }
        // In a registry, the run image as the analyzer resolved it (its digest reference): the
        // creator's analyzer has read that manifest already, so no request; else by name.
        var found: LocatedImage?
        if case .registry = inputs.location, inputs.runImage == nil, let pinned = build.analyzed.runImage?.reference {
            found = try await inputs.location.find(pinned, layers: false)
        }
        if found == nil { found = try await inputs.location.find(runName, layers: false) }
        guard let run = found else { throw .imageNotFound(role: "run image", reference: runName) }
        var previous: LocatedImage?
        if let ref = build.analyzed.image?.reference { previous = try await inputs.location.find(ref, layers: false) }
        // An unreadable label means no layer is reused from the previous image, as none is known.
        var previousMetadata = LifecycleMetadataLabel()
        do {
            previousMetadata = try previous?.image.lifecycleMetadata() ?? LifecycleMetadataLabel()
        } catch {
            log.warn("previous image \(build.analyzed.image?.reference ?? "?"): label \(CNBLabel.lifecycleMetadata) cannot be read, so none of its layers is reused: \(error)")
        }

        let extended = try extendedRunImage(build.analyzed)
        let dest = try writeSession(inputs.location.destination(for: firstTag), for: "the app image")
        do { try copyImage(run.image, from: run.store, to: dest) } catch {
            throw .imageIO(operation: "copy to the export target", image: "run image \(runName)", cause: error)
        }
        var base = run.image
        if let extended {
            // The extension layers and config; the run image's own layers came with it above.
            do {
                for d in [extended.image.manifest.config] + extended.image.manifest.layers { try copyBlob(d.digest, from: extended.store, to: dest) }
            } catch {
                throw .imageIO(operation: "copy", image: "the extended run image from \(extended.store.root)", cause: error)
            }
            base = extended.image
            log.info("Using the extended run image (\(extended.image.manifest.layers.count - run.image.manifest.layers.count) extension layer(s))")
        }
        let book = FingerprintBook(cacheDirectory: inputs.cacheDirectory)
        // Layers the restorer extracted from the cache are recorded with the cache's blobs.
        let cacheStore = inputs.cacheDirectory.flatMap { FileManager.default.fileExists(atPath: $0 + "/index.json") ? try? ImageStore(root: $0) : nil }
        let factory = LayerFactory(dest: dest, book: book, cacheStore: cacheStore, previous: previous,
                                   previousInRegistry: !inputs.location.namesAssembledImages, epoch: inputs.epoch,
                                   compression: inputs.compression, owner: (inputs.uid, inputs.gid), log: log)

        var label = LifecycleMetadataLabel(execEnv: inputs.execEnv)
        // The launch layers' directories and the app slices are written together, concurrently.
        let launchDirectories = launchDirectories(build.buildpacks)
        let slices = try appSlices(build.metadata)
        let written = try factory.directories(launchDirectories + slices)
        // (A group naming a buildpack twice, hand-written, must not trap here: the first wins.)
        let byName = Dictionary(zip(launchDirectories.map(\.what), written), uniquingKeysWith: { first, _ in first })
        let launch = try launchLayers(build.buildpacks, written: byName, factory: factory, previousMetadata: previousMetadata)
        label.buildpacks = launch.entries
        var layers = launch.layers
        for result in written.suffix(slices.count) {
            layers.append(NewLayer(result: result, createdBy: "Application Layer"))
            label.app.append(.init(sha: result.diffID.description))
        }
        layers += try lifecycleLayers(build, factory: factory, metadataPath: metadataPath, label: &label)
        try recordRunImage(runName, run.image, analyzed: build.analyzed, in: &label)

        // Rebasable unless an extension changed the run image without declaring its layers rebasable.
        let rebasable = extended.map { $0.image.config.config?.labels?[CNBLabel.rebasable] == "true" } ?? true
        let image = try commit(layers, base: base, into: dest, reference: firstTag,
                               config: try imageConfig(build, label: label, entrypoint: entrypoint, rebasable: rebasable))
        try await publish(image, from: dest.store, build: build, launchResults: launch.results, book: book)
        withExtendedLifetime(dest) {}  // until the image is named or pushed
        return ExportResult(image: image, reused: factory.reused, added: factory.added)
    }

    /// The extended run image in `<extended>/run` when analyzed.toml says the run image is
    /// extended (platform.md, exporter: the app image MUST be based on it); its base layers'
    /// blobs may be absent there (they are the run image's).
    func extendedRunImage(_ analyzed: AnalyzedFile) throws(LifecycleError) -> LocatedImage? {
        guard analyzed.runImage?.extend == true else { return nil }
        let parent = (inputs.extendedDirectory ?? inputs.layersDirectory + "/extended") + "/run"
        guard let dir = Self.extendedLayout(parent) else {
            throw .missingInput(what: "no extended run image in \(parent)", hint: "\(inputs.analyzedPath) says the run image is extended; run the extender with -kind run first")
        }
        do {
            let store = try ImageStore(root: dir)
            guard let descriptor = try store.index().manifests.first else { throw LifecycleError.imageContent(image: "the extended run image", reason: "\(dir)/index.json names no image") }
            return LocatedImage(store: store, image: try store.load(descriptor, name: nil))
        } catch let e as LifecycleError {
            throw e
        } catch {
            throw .imageIO(operation: "read", image: "the extended run image in \(dir)", cause: error)
        }
    }

    /// The layout holding the extended run image: `run/` itself, or its one subdirectory (the
    /// reference lifecycle's extender writes `run/sha256:<hex>/`, a sparse layout); nil if neither.
    static func extendedLayout(_ parent: String) -> String? {
        if FS.exists(parent + "/index.json") { return parent }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: parent), entries.count == 1,
              FS.exists(parent + "/" + entries[0] + "/index.json") else { return nil }
        return parent + "/" + entries[0]
    }

    /// The tags, each a tag reference (not a digest); the first names the export target.
    func checkedTags() throws(LifecycleError) -> String {
        guard let firstTag = inputs.tags.first else { throw .missingInput(what: "no image tag", hint: "at least one image tag is required") }
        for tag in inputs.tags {
            let ref: ImageReference
            do { ref = try ImageReference(parsing: tag) } catch { throw .invalidReference(tag, cause: error) }
            guard ref.digest == nil else { throw .invalidArgument(tag, reason: "a digest reference; the exporter needs tag references") }
        }
        return firstTag
    }

    /// The image's entrypoint (platform.md, exporter Outputs): `-process-type`'s process, else the
    /// buildpack default process, else the launcher itself.
    func entrypoint(_ metadata: BuildMetadataFile) throws(LifecycleError) -> String {
        let processTypes = Set(metadata.processes.map(\.type.description))
        if let requested = inputs.processType, !requested.isEmpty {
            guard processTypes.contains(requested) else {
                throw .unknownProcessType(requested, known: processTypes.sorted())
            }
            return CNBPath.processDir + "/" + requested
        }
        if let d = metadata.buildpackDefaultProcessType, processTypes.contains(d) { return CNBPath.processDir + "/" + d }
        return CNBPath.launcher
    }

    /// The launch layers that have a directory, as `<bp>:<layer>`, in group order then layer name.
    func launchDirectories(_ outputs: [BuildpackOutput]) -> [LayerFactory.DirectoryLayer] {
        outputs.flatMap { out in
            out.layers.filter { $0.file.effectiveTypes.launch && FileManager.default.fileExists(atPath: out.path($0.name)) }
                .map { LayerFactory.DirectoryLayer(directory: out.path($0.name), what: "\(out.element.id):\($0.name)") }
        }
    }

    /// 1. Launch layers of each buildpack, in group order then layer name: those with a directory
    /// from `written`, a layer kept by metadata only from the previous image. Also returns the
    /// label entries and, by `<bp>:<layer>`, the layers written from a directory (the cache
    /// shares their blobs).
    func launchLayers(_ outputs: [BuildpackOutput], written: [String: LayerResult], factory: LayerFactory,
                      previousMetadata: LifecycleMetadataLabel) throws(LifecycleError)
        -> (layers: [NewLayer], entries: [LifecycleMetadataLabel.BuildpackLayers], results: [String: LayerResult]) {
        var layers: [NewLayer] = []
        var entries: [LifecycleMetadataLabel.BuildpackLayers] = []
        var results: [String: LayerResult] = [:]
        for out in outputs {
            let bp = out.element
            var entry = LifecycleMetadataLabel.BuildpackLayers(key: bp.id.description, version: bp.version)
            entry.store = try readFileIfPresent(StoreFile.self, out.directory + "/store.toml")
            for (name, file) in out.layers where file.effectiveTypes.launch {
                let what = "\(bp.id):\(name)"
                let result: LayerResult
                if let w = written[what] {
                    result = w
                    results[what] = result
                } else {
                    result = try factory.fromPrevious(diffID: previousMetadata.buildpack(bp.id.description)?.layers[name]?.sha, what: what)
                }
                layers.append(NewLayer(result: result, createdBy: "Buildpacks Launch Layer: \(what)"))
                let types = file.effectiveTypes
                entry.layers[name] = .init(sha: result.diffID.description, data: file.metadata, build: types.build, launch: true, cache: types.cache)
            }
            entries.append(entry)
        }
        return (layers, entries, results)
    }

    /// 2. App layers: one per slice with files, then the rest (`slice-N`, …, `app`).
    func appSlices(_ metadata: BuildMetadataFile) throws(LifecycleError) -> [LayerFactory.DirectoryLayer] {
        let slicing = try AppSlices.slicing(inputs.appDirectory, metadata.slices,
                                            largeFiles: AppSlices.largeFileMinimum(ProcessInfo.processInfo.environment))
        return (0..<slicing.count).map { i in
            let what = i == slicing.count - 1 ? "app" : "slice-\(i + 1)"
            return LayerFactory.DirectoryLayer(directory: inputs.appDirectory, slice: what, what: what, part: .init(slicing: slicing, index: i))
        }
    }

    /// 3. Launcher, 4. launch config (process links + metadata.toml), 5. SBOM.
    func lifecycleLayers(_ build: BuildOutputs, factory: LayerFactory, metadataPath: String,
                         label: inout LifecycleMetadataLabel) throws(LifecycleError) -> [NewLayer] {
        let launcher = try factory.launcher(inputs.launcherPath)
        label.launcher = .init(sha: launcher.diffID.description)
        let config = try factory.launchConfig(processes: build.metadata.processes.map(\.type.description), metadataPath: metadataPath,
                                              layersDirectory: inputs.layersDirectory)
        label.config = .init(sha: config.diffID.description)
        var layers = [NewLayer(result: launcher, createdBy: "Buildpacks Application Launcher"),
                      NewLayer(result: config, createdBy: "Buildpacks Process Types")]
        if let sbom = try factory.sbom(build.buildpacks, layersDirectory: inputs.layersDirectory) {
            layers.append(NewLayer(result: sbom, createdBy: "Software Bill-of-Materials"))
            label.sbom = .init(sha: sbom.diffID.description)
        }
        return layers
    }

    /// The run image's identity in the label, for rebase: top layer, reference, name and mirrors.
    func recordRunImage(_ runName: String, _ run: StoredImage, analyzed: AnalyzedFile, in label: inout LifecycleMetadataLabel) throws(LifecycleError) {
        let runFile = try inputs.runPath.flatMap { path throws(LifecycleError) in try readRunFile(path, stackFile: inputs.runPathIsStackFile) }
        let mirrors = runFile?.images.first { $0.image == runName || ($0.mirrors ?? []).contains(runName) }?.mirrors
        label.runImage = .init(topLayer: run.config.rootfs.diffIDs.last?.description,
                               reference: analyzed.runImage?.reference ?? inputs.location.uniqueReference(runName, run),
                               image: runName, mirrors: mirrors)
        label.stack = .init(runImage: .init(image: runName, mirrors: mirrors))
    }

    /// The app image's config edit: environment (`CNB_LAYERS_DIR`, `CNB_APP_DIR`, `PATH` with
    /// the process links first), entrypoint, working directory and labels over the run image's.
    func imageConfig(_ build: BuildOutputs, label: LifecycleMetadataLabel, entrypoint: String, rebasable: Bool) throws(LifecycleError)
        -> @Sendable (inout ImageConfig) -> Void {
        let buildLabel = BuildMetadataLabel(
            processes: build.metadata.processes.map(BuildMetadataLabel.Process.init),
            buildpacks: build.group.group.map(BuildMetadataLabel.Module.init),
            extensions: build.group.groupExtensions.map { $0.map(BuildMetadataLabel.Module.init) },
            launcher: .init(version: cairnVersion))
        let project = try readFileIfPresent(AnyTOML.self, inputs.projectMetadataPath) ?? .table([:])
        var labels: [String: String] = [:]
        do {
            for launchLabel in build.metadata.labels ?? [] { labels[launchLabel.key] = launchLabel.value }
            labels[CNBLabel.lifecycleMetadata] = try json(label)
            labels[CNBLabel.buildMetadata] = try json(buildLabel)
            labels[CNBLabel.projectMetadata] = try json(project)
            labels[CNBLabel.rebasable] = rebasable ? "true" : "false"
            // The reference labels the image with its execution environment from 0.15 (not a
            // spec label; platforms read it, so Cairn writes it too).
            if inputs.platformAPI.supports(PlatformFeature.execEnv), let execEnv = inputs.execEnv {
                labels[CNBLabel.execEnv] = execEnv
            }
        } catch {
            throw .label(image: "the app image", label: "labels", reason: "cannot be encoded", cause: error)
        }
        let app = inputs.appDirectory
        let layersDir = inputs.layersDirectory
        return { [labels] config in
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
            exec.labels = (exec.labels ?? [:]).merging(labels) { _, new in new }
            config.config = exec
        }
    }

    /// The image: the run image's layers, then `layers`, with one history line each.
    func commit(_ layers: [NewLayer], base: StoredImage, into dest: WriteSession, reference: String,
                config: @Sendable (inout ImageConfig) -> Void) throws(LifecycleError) -> StoredImage {
        let created = inputs.epoch == LayerWriteOptions.normalizedTime ? normalizedCreated : rfc3339(inputs.epoch)
        do {
            return try dest.commitImage(base: base, layers: layers.map(\.result),
                                        history: layers.map { History(created: created, createdBy: $0.createdBy) },
                                        created: created, reference: reference, configure: config)
        } catch {
            throw .imageIO(operation: "write", image: "the app image", cause: error)
        }
    }

    /// Names the image with every tag (pushing it for a registry target), writes the report,
    /// then the cache; with `-parallel` the cache is written while the image is published.
    func publish(_ image: StoredImage, from dest: ImageStore, build: BuildOutputs, launchResults: [String: LayerResult],
                 book: FingerprintBook) async throws(LifecycleError) {
        let created = inputs.epoch == LayerWriteOptions.normalizedTime ? normalizedCreated : rfc3339(inputs.epoch)
        let cache = CacheWriter(inputs: inputs, log: log)
        let outputs = build.buildpacks
        let cacheTask: Task<Void, any Error>? = inputs.parallel
            ? Task { try await cache.write(outputs: outputs, launchResults: launchResults, dest: dest, book: book, created: created) }
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
            do { try await cacheTask.value } catch let e as LifecycleError { throw e } catch { throw .imageIO(operation: "write", image: "the cache", cause: error) }
        } else {
            try await cache.write(outputs: outputs, launchResults: launchResults, dest: dest, book: book, created: created)
        }
        do { try book.save() } catch { log.warn("cannot save layer fingerprints: \(error)") }
    }
}

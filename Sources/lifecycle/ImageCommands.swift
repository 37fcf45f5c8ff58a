import Buildpacks
import FoundationEssentials
import Processes
import Phases
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` in an image location (`LocationOptions.location`), then its clean-up (a registry
/// client's shutdown), whether `body` throws or not.
func inLocation<T>(_ located: (ImageLocation, () async -> Void), _ body: (ImageLocation) async throws -> T) async throws -> T {
    let (location, cleanup) = located
    do {
        let result = try await body(location)
        await cleanup()
        return result
    } catch {
        await cleanup()
        throw error
    }
}

/// Where images live, for every phase that reads or writes them: a registry (default), an OCI
/// layout (`-layout`), or a Cairn image store (`-store`, Cairn's own).
struct LocationOptions: ParsableArguments {
    @Flag(name: .dash("daemon"), help: "Export to a Docker daemon (CNB_USE_DAEMON): not supported, Cairn is daemonless") var daemon = false
    @Option(name: .dash("insecure-registry"), help: "Registry reached without TLS (CNB_INSECURE_REGISTRIES)") var insecureRegistries: [String] = []
    @Flag(name: .dash("layout"), help: "Read and write images as OCI layouts (CNB_USE_LAYOUT; experimental)") var layout = false
    @Option(name: .dash("layout-dir"), help: "Root of the OCI layouts (CNB_LAYOUT_DIR)") var layoutDir: String?
    @Option(name: .dash("store"), help: "A Cairn image store to read and write images in (CNB_CAIRN_STORE)") var store: String?

    /// The image location, and a clean-up to run when the phase ends.
    func location(_ env: [String: String], log: Logger) throws(LifecycleError) -> (ImageLocation, () async -> Void) {
        if daemon || envFlag(CNBEnv.useDaemon, env) {
            throw .unsupported("-daemon is not supported: Cairn runs without a Docker daemon (use -layout, -store or a registry)")
        }
        let useLayout = layout || envFlag(CNBEnv.useLayout, env)
        if useLayout {
            try experimental("-layout", env, log: log)
            let dir = resolve(layoutDir, CNBEnv.layoutDir, env, default: "")
            guard !dir.isEmpty else { throw .missingInput(what: "-layout", hint: "it needs -layout-dir or \(CNBEnv.layoutDir)") }
            return (.layout(root: absolute(dir)), {})
        }
        let storeDir = resolve(store, CNBEnv.cairnStore, env, default: "")
        if !storeDir.isEmpty {
            do { return (.store(try ImageStore(root: absolute(storeDir))), {}) } catch {
                throw .io(operation: "open image store", path: storeDir, reason: "\(error)")
            }
        }
        do {
            let client = try RegistryClient(configuration: try registryConfiguration(environment: env, insecure: insecureRegistries))
            let workDir = Self.scratchDirectory()
            let work = try ImageStore(root: workDir, durable: false)
            return (.registry(client, work: work), {
                try? await client.shutdown()
                try? FileManager.default.removeItem(atPath: workDir)
            })
        } catch {
            throw .unexpected(error)
        }
    }

    /// The registry work store's directory (a scratch store, removed when the phase ends): under
    /// a parent of this user's in the temporary directory whose subdirectories ext4 spreads over
    /// its block groups (`FS.spreadSubdirectories`: on ext4 without a journal each new file
    /// otherwise skips the inodes its group lost in the last minutes), when that parent is a
    /// directory of ours that no one else can write; else directly in the temporary directory.
    static func scratchDirectory() -> String {
        let tmp = FileManager.default.temporaryDirectory.path
        let parent = tmp + "/cairn-lifecycle-\(getuid())"
        var st = stat()
        if mkdir(parent, 0o700) == 0 || errno == EEXIST, lstat(parent, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR,
           st.st_uid == getuid(), st.st_mode & 0o077 == 0 {
            FS.spreadSubdirectories(parent)
            return parent + "/" + UUID().uuidString
        }
        return tmp + "/cairn-lifecycle-" + UUID().uuidString
    }
}

/// Flags of the phases that read or write images and layers (platform.md, analyzer/restorer/
/// exporter/creator Inputs): the location, the cache, the build image user.
struct ImageOptions: ParsableArguments {
    @Option(name: .dash("cache-dir"), help: "Cache directory (CNB_CACHE_DIR)") var cacheDir: String?
    @Option(name: .dash("cache-image"), help: "Cache image in a registry (CNB_CACHE_IMAGE)") var cacheImage: String?
    @Option(name: .dash("gid"), help: "GID of the build image user (CNB_GROUP_ID)") var gid: Int?
    @Option(name: .dash("uid"), help: "UID of the build image user (CNB_USER_ID)") var uid: Int?
    @OptionGroup var target: LocationOptions

    func userID(_ env: [String: String]) -> Int { uid ?? env[CNBEnv.userID].flatMap(Int.init) ?? Int(getuid()) }
    func groupID(_ env: [String: String]) -> Int { gid ?? env[CNBEnv.groupID].flatMap(Int.init) ?? Int(getgid()) }
    func cacheDirectory(_ env: [String: String]) -> String? {
        let v = resolve(cacheDir, CNBEnv.cacheDir, env, default: "")
        return v.isEmpty ? nil : absolute(v)
    }
    func cacheImageReference(_ env: [String: String]) -> String? {
        let v = resolve(cacheImage, CNBEnv.cacheImage, env, default: "")
        return v.isEmpty ? nil : v
    }
    func location(_ env: [String: String], log: Logger) throws(LifecycleError) -> (ImageLocation, () async -> Void) {
        try target.location(env, log: log)
    }

    /// Run as root, a phase leaves the shared volumes (`<layers>`, the cache directory) to the
    /// build image user, as the reference does: the next phase may run as that user.
    func ownVolumes(_ options: PhaseOptions, _ env: [String: String]) throws(LifecycleError) {
        try ensureOwner(uid: userID(env), gid: groupID(env), paths: [options.layersDirectory(env)] + [cacheDirectory(env)].compactMap { $0 })
    }
}

/// SOURCE_DATE_EPOCH, or the spec's fixed time.
func epoch(_ env: [String: String]) throws(LifecycleError) -> Int64 {
    do { return try LayerWriteOptions.fromEnvironment(env).mtime } catch { throw .invalidArgument("environment", reason: "\(error)") }
}

struct AnalyzerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyzer",
        abstract: "Read the previous image's layer metadata and resolve the run image (platform.md, analyzer).")

    @OptionGroup var options: PhaseOptions
    @OptionGroup var images: ImageOptions
    @Option(name: .dash("previous-image"), help: "Image to analyze (CNB_PREVIOUS_IMAGE; default <image>)") var previousImage: String?
    @Option(name: .dash("run-image"), help: "Run image (CNB_RUN_IMAGE; default from run.toml)") var runImage: String?
    @Option(name: .dash("run"), help: "run.toml (CNB_RUN_PATH; default /cnb/run.toml)") var runPath: String?
    @Option(name: .dash("stack"), help: "stack.toml (CNB_STACK_PATH; default /cnb/stack.toml; Platform API < 0.12)") var stackPath: String?
    @Option(name: .dash("tag"), help: "Additional tag (checked for write access by the reference lifecycle)") var tags: [String] = []
    @Option(name: .dash("launch-cache"), help: "Launch layer cache (CNB_LAUNCH_CACHE_DIR; used with -daemon only)") var launchCache: String?
    @Flag(name: .dash("skip-layers"), help: "Do not read the previous image's layer metadata (CNB_SKIP_LAYERS)") var skipLayers = false
    @Argument(help: "The app image to be built") var image: String

    func run() async throws {
        try await runPhase(.analyze, action: "analyze") {
            let env = ProcessInfo.processInfo.environment
            let api = try platformAPI(env)
            let log = try logger(options.logLevel, env)
            try await inLocation(images.location(env, log: log)) { location in
                let runImages = runImagesFile(run: runPath, stack: stackPath, env, api)
                var inputs = AnalyzerInputs(
                    image: image,
                    previousImage: nonEmpty(resolve(previousImage, CNBEnv.previousImage, env, default: "")),
                    runImage: nonEmpty(resolve(runImage, CNBEnv.runImage, env, default: "")),
                    runPath: runImages.path,
                    analyzedPath: options.analyzedPath(env), location: location, platformAPI: api,
                    skipLayers: skipLayers || envFlag(CNBEnv.skipLayers, env))
                inputs.runPathIsStackFile = runImages.isStackFile
                try await Analyzer(inputs: inputs, log: log).run()
                try ensureOwner(uid: images.userID(env), gid: images.groupID(env), paths: [inputs.analyzedPath])
            }
        }
    }
}

struct RestorerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restorer",
        abstract: "Restore layer metadata and cached layers for the detected group (platform.md, restorer).")

    @OptionGroup var options: PhaseOptions
    @OptionGroup var images: ImageOptions
    @Flag(name: .dash("skip-layers"), help: "Do not restore layer metadata or contents (CNB_SKIP_LAYERS)") var skipLayers = false
    @Option(name: .dash("build-image"), help: "Build image (CNB_BUILD_IMAGE): its digest reference is recorded in analyzed.toml (Platform API 0.13+)") var buildImage: String?
    @Option(name: .dash("run"), help: "run.toml (CNB_RUN_PATH; for extended run images, not used yet)") var runPath: String?

    func run() async throws {
        try await runPhase(.restore, action: "restore") {
            let env = ProcessInfo.processInfo.environment
            let api = try platformAPI(env)
            let log = try logger(options.logLevel, env)
            try await inLocation(images.location(env, log: log)) { location in
                var inputs = RestorerInputs(
                    layersDirectory: options.layersDirectory(env), groupPath: options.groupPath(env), analyzedPath: options.analyzedPath(env),
                    cacheDirectory: images.cacheDirectory(env), cacheImage: images.cacheImageReference(env),
                    skipLayers: skipLayers || envFlag(CNBEnv.skipLayers, env), location: location,
                    uid: images.userID(env), gid: images.groupID(env), epoch: try epoch(env), execEnv: options.execEnv(env, api))
                if api.supports(PlatformFeature.buildImageRecord) { inputs.buildImage = nonEmpty(resolve(buildImage, CNBEnv.buildImage, env, default: "")) }
                try await Restorer(inputs: inputs, log: log).run()
                try images.ownVolumes(options, env)
            }
        }
    }
}

/// Flags the exporter and creator share.
struct ExportFlags: ParsableArguments {
    @Option(name: .dash("launcher"), help: "The launcher executable (default /cnb/lifecycle/launcher)") var launcher: String?
    @Option(name: .dash("process-type"), help: "Default process type (CNB_PROCESS_TYPE)") var processType: String?
    @Option(name: .dash("project-metadata"), help: "project-metadata.toml (CNB_PROJECT_METADATA_PATH)") var projectMetadata: String?
    @Option(name: .dash("report"), help: "report.toml (CNB_REPORT_PATH; default <layers>/report.toml)") var report: String?
    @Option(name: .dash("run"), help: "run.toml (CNB_RUN_PATH; default /cnb/run.toml)") var run: String?
    @Option(name: .dash("stack"), help: "stack.toml (CNB_STACK_PATH; default /cnb/stack.toml; Platform API < 0.12)") var stack: String?
    @Flag(name: .dash("parallel"), help: "Export app image and cache in parallel (CNB_PARALLEL_EXPORT)") var parallel = false
    @Option(name: .dash("extended"), help: "Extended run image (CNB_EXTENDED_DIR; default <layers>/extended)") var extended: String?
    @Option(name: .dash("launch-cache"), help: "Launch layer cache (CNB_LAUNCH_CACHE_DIR; used with -daemon only)") var launchCache: String?
    @Option(name: .dash("launcher-sbom"), help: "Directory of the launcher's SBOM files") var launcherSBOM: String?

    func inputs(_ options: PhaseOptions, _ images: ImageOptions, tags: [String], location: ImageLocation, env: [String: String],
                api: APIVersion) throws(LifecycleError) -> ExporterInputs {
        let layers = options.layersDirectory(env)
        let runImages = runImagesFile(run: run, stack: stack, env, api)
        var inputs = ExporterInputs(
            layersDirectory: layers, appDirectory: options.appDirectory(env), groupPath: options.groupPath(env),
            analyzedPath: options.analyzedPath(env), runPath: runImages.path,
            projectMetadataPath: resolvePath(projectMetadata, CNBEnv.projectMetadataPath, env, default: layers + "/" + CNBPath.projectMetadataFile),
            reportPath: resolvePath(report, CNBEnv.reportPath, env, default: layers + "/" + CNBPath.reportFile),
            launcherPath: absolute(launcher ?? CNBPath.launcher),
            processType: nonEmpty(resolve(processType, CNBEnv.processType, env, default: "")),
            cacheDirectory: images.cacheDirectory(env), cacheImage: images.cacheImageReference(env), tags: tags, location: location,
            uid: images.userID(env), gid: images.groupID(env), epoch: try epoch(env), platformAPI: api)
        inputs.runPathIsStackFile = runImages.isStackFile
        inputs.parallel = parallel || envFlag(CNBEnv.parallelExport, env)
        inputs.execEnv = options.execEnv(env, api)
        inputs.extendedDirectory = resolvePath(extended, CNBEnv.extendedDir, env, default: layers + "/extended")
        return inputs
    }
}

struct ExporterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exporter",
        abstract: "Write the app image from the run image, launch layers and app (platform.md, exporter).")

    @OptionGroup var options: PhaseOptions
    @OptionGroup var images: ImageOptions
    @OptionGroup var export: ExportFlags
    @Option(name: .dash("run-image"), help: "Run image (CNB_RUN_IMAGE; Platform API < 0.12, later from analyzed.toml)") var runImage: String?
    @Argument(help: "Tag references the app image is written to") var tags: [String] = []

    func run() async throws {
        try await runPhase(.export, action: "export") {
            let env = ProcessInfo.processInfo.environment
            let api = try platformAPI(env)
            let log = try logger(options.logLevel, env)
            guard !tags.isEmpty else { throw LifecycleError.missingInput(what: "no image tag", hint: "at least one image tag is required") }
            try await inLocation(images.location(env, log: log)) { location in
                var inputs = try export.inputs(options, images, tags: tags, location: location, env: env, api: api)
                if !api.supports(PlatformFeature.runTOML) { inputs.runImage = nonEmpty(resolve(runImage, CNBEnv.runImage, env, default: "")) }
                _ = try await Exporter(inputs: inputs, log: log).run()
                try images.ownVolumes(options, env)
            }
        }
    }
}

func nonEmpty(_ s: String) -> String? { s.isEmpty ? nil : s }

struct CreatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "creator",
        abstract: "Analyze, detect, restore, build and export in one process (platform.md, creator).")

    @OptionGroup var options: PhaseOptions
    @OptionGroup var images: ImageOptions
    @OptionGroup var export: ExportFlags
    @Option(name: .dash("order"), help: "order.toml (CNB_ORDER_PATH)") var order: String?
    @Option(name: .dash("previous-image"), help: "Image to analyze (CNB_PREVIOUS_IMAGE; default <image>)") var previousImage: String?
    @Option(name: .dash("run-image"), help: "Run image (CNB_RUN_IMAGE; default from run.toml)") var runImage: String?
    @Flag(name: .dash("skip-restore"), help: "Restore nothing but store.toml (CNB_SKIP_RESTORE)") var skipRestore = false
    @Option(name: .dash("tag"), help: "Additional tag to apply to the exported image") var tags: [String] = []
    @Argument(help: "The app image to build") var image: String

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let api: APIVersion
        let log: Logger
        let location: ImageLocation
        let cleanup: () async -> Void
        do {
            api = try platformAPI(env)
            log = try logger(options.logLevel, env)
            // As the reference creator: an order with image extensions is refused up front.
            let orderPath = try DetectorCommand.inputs(options, extensions: nil, generated: nil, order: order, run: export.run, system: nil,
                                                       env: env, api: api, usesExtensions: false).orderPath
            if FS.exists(orderPath), !(try readFile(OrderFile.self, orderPath).orderExtensions ?? []).isEmpty {
                let message = "\(orderPath) has [[order-extensions]]: the creator does not apply image extensions; "
                    + "run the phases one by one (analyzer, detector, restorer, extender, builder, exporter)"
                StandardStream.error.write("ERROR: failed to create: \(message)\n")
                throw ExitCode(usageExit)
            }
            (location, cleanup) = try images.location(env, log: log)
        } catch let e as ExitCode {
            throw e
        } catch let error as LifecycleError {
            StandardStream.error.write("ERROR: failed to create: \(error)\n")
            throw ExitCode(error.exitCode(phase: .analyze))
        }
        do {
            try await runPhase(.analyze, action: "analyze") {
                log.info("===> ANALYZING")
                let runImages = runImagesFile(run: export.run, stack: export.stack, env, api)
                var inputs = AnalyzerInputs(
                    image: image, previousImage: nonEmpty(resolve(previousImage, CNBEnv.previousImage, env, default: "")),
                    runImage: nonEmpty(resolve(runImage, CNBEnv.runImage, env, default: "")),
                    runPath: runImages.path, analyzedPath: options.analyzedPath(env), location: location, platformAPI: api)
                inputs.runPathIsStackFile = runImages.isStackFile
                try await Analyzer(inputs: inputs, log: log).run()
            }
            try await runPhase(.detect, action: "detect") {
                log.info("===> DETECTING")
                let inputs = try DetectorCommand.inputs(options, extensions: nil, generated: nil, order: order, run: export.run, system: nil,
                                                       env: env, api: api, usesExtensions: false)
                _ = try await Detector(inputs: inputs, log: log).run()
            }
            try await runPhase(.restore, action: "restore") {
                log.info("===> RESTORING")
                let skip = skipRestore || envFlag(CNBEnv.skipRestore, env)
                try await Restorer(inputs: RestorerInputs(
                    layersDirectory: options.layersDirectory(env), groupPath: options.groupPath(env),
                    analyzedPath: options.analyzedPath(env), cacheDirectory: images.cacheDirectory(env),
                    cacheImage: images.cacheImageReference(env), skipLayers: skip, location: location,
                    uid: images.userID(env), gid: images.groupID(env), epoch: try epoch(env), execEnv: options.execEnv(env, api)), log: log).run()
            }
            try await runPhase(.build, action: "build") {
                log.info("===> BUILDING")
                try BuildPhase(inputs: try BuildPhaseCommand.inputs(options, env: env, api: api), log: log).run()
            }
            try await runPhase(.export, action: "export") {
                log.info("===> EXPORTING")
                let inputs = try export.inputs(options, images, tags: [image] + tags, location: location, env: env, api: api)
                _ = try await Exporter(inputs: inputs, log: log).run()
                try images.ownVolumes(options, env)
            }
        } catch {
            await cleanup()
            throw error
        }
        await cleanup()
    }
}

/// An experimental feature is used only when `CNB_EXPERIMENTAL_MODE` allows it, as the reference
/// lifecycle gates them: `warn` warns, `silent` says nothing, anything else refuses.
func experimental(_ feature: String, _ env: [String: String], log: Logger) throws(LifecycleError) {
    switch env[CNBEnv.experimentalMode] ?? "" {
    case "warn": log.warn("\(feature) is an experimental feature")
    case "silent": break
    default: throw .unsupported("\(feature) is experimental: set \(CNBEnv.experimentalMode)=warn or silent to use it")
    }
}

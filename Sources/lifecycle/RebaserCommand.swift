import Buildpacks
import FoundationEssentials
import Phases

#if canImport(Glibc)
import Glibc
#endif

struct RebaserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebaser",
        abstract: "Put an app image on a new run image without rebuilding it (platform.md, rebaser).")

    @OptionGroup var target: LocationOptions
    @Flag(name: .dash("force"), help: "Allow an unsafe rebase: io.buildpacks.rebasable=false, another target, a run image the image does not name (CNB_FORCE_REBASE)")
    var force = false
    @Option(name: .dash("gid"), help: "GID of the build image user (CNB_GROUP_ID): owner of the report") var gid: Int?
    @Option(name: .dash("uid"), help: "UID of the build image user (CNB_USER_ID): owner of the report") var uid: Int?
    @Option(name: .dash("log-level"), help: "debug, info, warn or error (CNB_LOG_LEVEL)") var logLevel: String?
    @Flag(name: .dash("no-color"), help: "Disable color output (Cairn's output has none)") var noColor = false
    @Option(name: .dash("previous-image"), help: "The image to rebase (default: the first <image>)") var previousImage: String?
    @Option(name: .dash("report"), help: "report.toml (CNB_REPORT_PATH; default <layers>/report.toml)") var report: String?
    @Option(name: .dash("run-image"), help: "The new run image (CNB_RUN_IMAGE; default: resolved from the image's runImage metadata)")
    var runImage: String?
    @Option(name: .dash("image"), help: "Deprecated name of -run-image") var deprecatedImage: String?
    @Option(name: .dash("layer-patches"), help: "Layer patches file (JSON): buildpack layers and the launcher to replace from patch images (CNB_LAYER_PATCHES_FILE; experimental)")
    var layerPatches: String?
    @Argument(help: "Tag references the rebased image is written to") var images: [String] = []

    func run() async throws {
        try await runPhase(.rebase, action: "rebase") {
            let env = ProcessInfo.processInfo.environment
            let api = try platformAPI(env)
            let log = try logger(logLevel, env)
            if deprecatedImage != nil { log.warn("-image is deprecated: use -run-image") }
            if runImage != nil && deprecatedImage != nil { throw LifecycleError.invalidArgument("-image", reason: "give -run-image or -image, not both") }
            let layers = resolvePath(nil, CNBEnv.layersDir, env, default: CNBPath.layers)
            let owner: (uid: Int, gid: Int)? = {
                guard let u = uid ?? env[CNBEnv.userID].flatMap(Int.init), let g = gid ?? env[CNBEnv.groupID].flatMap(Int.init) else { return nil }
                return (u, g)
            }()
            let patchesPath = resolve(layerPatches, CNBEnv.layerPatchesFile, env, default: "")
            var patches: LayerPatchFile?
            if !patchesPath.isEmpty {
                try experimental("-layer-patches", env, log: log)
                do throws(LayerPatchError) { patches = try LayerPatchFile.read(patchesPath) } catch { throw LifecycleError.layerPatchFile(error) }
            }
            try await inLocation(target.location(env, log: log)) { location in
                let inputs = RebaserInputs(
                    images: images,
                    previousImage: previousImage.flatMap(nonEmpty),
                    runImage: nonEmpty(resolve(runImage ?? deprecatedImage, CNBEnv.runImage, env, default: "")),
                    force: force || envFlag(CNBEnv.forceRebase, env),
                    reportPath: resolvePath(report, CNBEnv.reportPath, env, default: layers + "/" + CNBPath.reportFile),
                    reportOwner: owner, location: location, platformAPI: api, layerPatches: patches)
                try await Rebaser(inputs: inputs, log: log).run()
            }
        }
    }
}

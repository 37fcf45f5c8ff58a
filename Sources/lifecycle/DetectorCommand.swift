import Buildpacks
import FoundationEssentials
import Phases

#if canImport(Glibc)
import Glibc
#endif

struct DetectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detector",
        abstract: "Choose the buildpack group for an app and resolve its build plan (platform.md, detector).")

    @OptionGroup var options: PhaseOptions
    @Option(name: .dash("extensions"), help: "Extensions directory (CNB_EXTENSIONS_DIR; default /cnb/extensions)") var extensions: String?
    @Option(name: .dash("generated"), help: "Generated Dockerfiles directory (CNB_GENERATED_DIR; default <layers>/generated)") var generated: String?
    @Option(name: .dash("order"), help: "order.toml (CNB_ORDER_PATH; default <layers>/order.toml if present, else /cnb/order.toml)") var order: String?
    @Option(name: .dash("run"), help: "run.toml (CNB_RUN_PATH; default /cnb/run.toml)") var run: String?
    @Option(name: .dash("system"), help: "system.toml (CNB_SYSTEM_PATH; default /cnb/system.toml)") var system: String?

    func run() async throws {
        try await runPhase(.detect, action: "detect") {
            let env = ProcessInfo.processInfo.environment
            let api = try platformAPI(env)
            let log = try logger(options.logLevel, env)
            let inputs = try Self.inputs(options, extensions: extensions, generated: generated, order: order, run: run, system: system, env: env, api: api)
            _ = try await Detector(inputs: inputs, log: log).run()
        }
    }

    static func inputs(_ options: PhaseOptions, extensions: String?, generated: String?, order: String?, run: String?, system: String?,
                       env: [String: String], api: APIVersion, usesExtensions: Bool = true) throws(LifecycleError) -> DetectorInputs {
        let layersDir = options.layersDirectory(env)
        let layersOrder = layersDir + "/" + CNBPath.orderFile
        return DetectorInputs(
            appDirectory: options.appDirectory(env),
            buildpacksDirectory: options.buildpacksDirectory(env),
            extensionsDirectory: resolvePath(extensions, CNBEnv.extensionsDir, env, default: CNBPath.extensions),
            platformDirectory: options.platformDirectory(env),
            buildConfigDirectory: options.buildConfigDirectory(env),
            orderPath: resolvePath(order, CNBEnv.orderPath, env,
                               default: FileManager.default.fileExists(atPath: layersOrder) ? layersOrder : CNBPath.order),
            groupPath: options.groupPath(env),
            planPath: options.planPath(env),
            analyzedPath: options.analyzedPath(env),
            systemPath: api.supports(PlatformFeature.systemBuildpacks) ? resolvePath(system, CNBEnv.systemPath, env, default: CNBPath.system) : nil,
            generatedDirectory: resolvePath(generated, CNBEnv.generatedDir, env, default: layersDir + "/" + CNBPath.generatedDir),
            runPath: resolvePath(run, CNBEnv.runPath, env, default: CNBPath.run),
            usesExtensions: usesExtensions && api.supports(PlatformFeature.imageExtensions),
            execEnv: options.execEnv(env, api),
            platformAPI: api,
            user: try buildpackUser(env),
            environment: env,
            concurrency: 4 * ProcessInfo.processInfo.activeProcessorCount)
    }
}

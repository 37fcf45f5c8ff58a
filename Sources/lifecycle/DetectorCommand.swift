import ArgumentParser
import Buildpacks
import Foundation
import Lifecycle

struct DetectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detector",
        abstract: "Choose the buildpack group for an app and resolve its build plan (platform.md, detector).")

    @Option(name: .dash("analyzed"), help: "analyzed.toml (CNB_ANALYZED_PATH; default <layers>/analyzed.toml)") var analyzed: String?
    @Option(name: .dash("app"), help: "App directory (CNB_APP_DIR; default /workspace)") var app: String?
    @Option(name: .dash("buildpacks"), help: "Buildpacks directory (CNB_BUILDPACKS_DIR; default /cnb/buildpacks)") var buildpacks: String?
    @Option(name: .dash("build-config"), help: "Build config directory (CNB_BUILD_CONFIG_DIR; default /cnb/build-config)") var buildConfig: String?
    @Option(name: .dash("extensions"), help: "Extensions directory (CNB_EXTENSIONS_DIR; default /cnb/extensions)") var extensions: String?
    @Option(name: .dash("generated"), help: "Generated Dockerfiles directory (CNB_GENERATED_DIR; default <layers>/generated)") var generated: String?
    @Option(name: .dash("group"), help: "Output group.toml (CNB_GROUP_PATH; default <layers>/group.toml)") var group: String?
    @Option(name: .dash("layers"), help: "Layers directory (CNB_LAYERS_DIR; default /layers)") var layers: String?
    @Option(name: .dash("log-level"), help: "debug, info, warn or error (CNB_LOG_LEVEL)") var logLevel: String?
    @Option(name: .dash("order"), help: "order.toml (CNB_ORDER_PATH; default <layers>/order.toml if present, else /cnb/order.toml)") var order: String?
    @Option(name: .dash("plan"), help: "Output plan.toml (CNB_PLAN_PATH; default <layers>/plan.toml)") var plan: String?
    @Option(name: .dash("platform"), help: "Platform directory (CNB_PLATFORM_DIR; default /platform)") var platform: String?
    @Option(name: .dash("run"), help: "run.toml (CNB_RUN_PATH; default /cnb/run.toml)") var run: String?
    @Option(name: .dash("system"), help: "system.toml (CNB_SYSTEM_PATH; default /cnb/system.toml)") var system: String?

    func run() async throws {
        try await runPhase(.detect, action: "detect") {
            let env = ProcessInfo.processInfo.environment
            let api = try platformAPI(env)
            let log = try logger(logLevel, env)
            let layersDir = resolvePath(layers, CNBEnv.layersDir, env, default: CNBPath.layers)
            let layersOrder = layersDir + "/" + CNBPath.orderFile
            let inputs = DetectorInputs(
                appDirectory: resolvePath(app, CNBEnv.appDir, env, default: CNBPath.app),
                buildpacksDirectory: resolvePath(buildpacks, CNBEnv.buildpacksDir, env, default: CNBPath.buildpacks),
                extensionsDirectory: resolvePath(extensions, CNBEnv.extensionsDir, env, default: CNBPath.extensions),
                platformDirectory: resolvePath(platform, CNBEnv.platformDir, env, default: CNBPath.platform),
                buildConfigDirectory: resolvePath(buildConfig, CNBEnv.buildConfigDir, env, default: CNBPath.buildConfig),
                orderPath: resolvePath(order, CNBEnv.orderPath, env,
                                   default: FileManager.default.fileExists(atPath: layersOrder) ? layersOrder : CNBPath.order),
                groupPath: resolvePath(group, CNBEnv.groupPath, env, default: layersDir + "/" + CNBPath.groupFile),
                planPath: resolvePath(plan, CNBEnv.planPath, env, default: layersDir + "/" + CNBPath.planFile),
                analyzedPath: resolvePath(analyzed, CNBEnv.analyzedPath, env, default: layersDir + "/" + CNBPath.analyzedFile),
                systemPath: api.supports(PlatformFeature.systemBuildpacks) ? resolvePath(system, CNBEnv.systemPath, env, default: CNBPath.system) : nil,
                execEnv: api.supports(PlatformFeature.execEnv) ? resolve(nil, CNBEnv.execEnv, env, default: ExecEnv.production) : ExecEnv.production,
                platformAPI: api,
                user: try buildpackUser(env),
                environment: env,
                concurrency: 4 * ProcessInfo.processInfo.activeProcessorCount)
            _ = try await Detector(inputs: inputs, log: log).run()
        }
    }
}

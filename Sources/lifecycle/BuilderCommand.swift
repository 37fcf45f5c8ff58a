import ArgumentParser
import Buildpacks
import Foundation
import Lifecycle

struct BuilderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "builder",
        abstract: "Run the build of each buildpack in the detected group (platform.md, builder).")

    @Option(name: .dash("analyzed"), help: "analyzed.toml (CNB_ANALYZED_PATH; default <layers>/analyzed.toml)") var analyzed: String?
    @Option(name: .dash("app"), help: "App directory (CNB_APP_DIR; default /workspace)") var app: String?
    @Option(name: .dash("buildpacks"), help: "Buildpacks directory (CNB_BUILDPACKS_DIR; default /cnb/buildpacks)") var buildpacks: String?
    @Option(name: .dash("build-config"), help: "Build config directory (CNB_BUILD_CONFIG_DIR; default /cnb/build-config)") var buildConfig: String?
    @Option(name: .dash("group"), help: "group.toml (CNB_GROUP_PATH; default <layers>/group.toml)") var group: String?
    @Option(name: .dash("layers"), help: "Layers directory (CNB_LAYERS_DIR; default /layers)") var layers: String?
    @Option(name: .dash("log-level"), help: "debug, info, warn or error (CNB_LOG_LEVEL)") var logLevel: String?
    @Option(name: .dash("plan"), help: "plan.toml (CNB_PLAN_PATH; default <layers>/plan.toml)") var plan: String?
    @Option(name: .dash("platform"), help: "Platform directory (CNB_PLATFORM_DIR; default /platform)") var platform: String?

    func run() async throws {
        try await runPhase(.build, action: "build") {
            let env = ProcessInfo.processInfo.environment
            let api = try platformAPI(env)
            let log = try logger(logLevel, env)
            let layersDir = resolvePath(layers, CNBEnv.layersDir, env, default: CNBPath.layers)
            let inputs = BuilderInputs(
                appDirectory: resolvePath(app, CNBEnv.appDir, env, default: CNBPath.app),
                buildpacksDirectory: resolvePath(buildpacks, CNBEnv.buildpacksDir, env, default: CNBPath.buildpacks),
                layersDirectory: layersDir,
                platformDirectory: resolvePath(platform, CNBEnv.platformDir, env, default: CNBPath.platform),
                buildConfigDirectory: resolvePath(buildConfig, CNBEnv.buildConfigDir, env, default: CNBPath.buildConfig),
                groupPath: resolvePath(group, CNBEnv.groupPath, env, default: layersDir + "/" + CNBPath.groupFile),
                planPath: resolvePath(plan, CNBEnv.planPath, env, default: layersDir + "/" + CNBPath.planFile),
                analyzedPath: resolvePath(analyzed, CNBEnv.analyzedPath, env, default: layersDir + "/" + CNBPath.analyzedFile),
                execEnv: api.supports(PlatformFeature.execEnv) ? resolve(nil, CNBEnv.execEnv, env, default: ExecEnv.production) : ExecEnv.production,
                platformAPI: api,
                user: try buildpackUser(env),
                environment: env)
            try Builder(inputs: inputs, log: log).run()
        }
    }
}

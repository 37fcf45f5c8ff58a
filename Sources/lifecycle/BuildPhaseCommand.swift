import Buildpacks
import FoundationEssentials
import Phases

#if canImport(Glibc)
import Glibc
#endif

struct BuildPhaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "builder",
        abstract: "Run the build of each buildpack in the detected group (platform.md, builder).")

    @OptionGroup var options: PhaseOptions

    func run() async throws {
        try await runPhase(.build, action: "build") {
            let env = ProcessInfo.processInfo.environment
            let api = try platformAPI(env)
            let log = try logger(options.logLevel, env)
            let inputs = try Self.inputs(options, env: env, api: api)
            try BuildPhase(inputs: inputs, log: log).run()
        }
    }

    static func inputs(_ options: PhaseOptions, env: [String: String], api: APIVersion) throws(LifecycleError) -> BuildPhaseInputs {
        return BuildPhaseInputs(
            appDirectory: options.appDirectory(env),
            buildpacksDirectory: options.buildpacksDirectory(env),
            layersDirectory: options.layersDirectory(env),
            platformDirectory: options.platformDirectory(env),
            buildConfigDirectory: options.buildConfigDirectory(env),
            groupPath: options.groupPath(env),
            planPath: options.planPath(env),
            analyzedPath: options.analyzedPath(env),
            execEnv: options.execEnv(env, api),
            platformAPI: api,
            user: try buildpackUser(env),
            environment: env)
    }
}

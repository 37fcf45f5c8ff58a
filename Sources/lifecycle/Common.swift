import Buildpacks
import FoundationEssentials
import Processes
import Phases

#if canImport(Glibc)
import Glibc
#endif

/// Resolves an input: flag first, then environment variable, then default (platform.md, Usage).
func resolve(_ flag: String?, _ env: String, _ environment: [String: String], default: @autoclosure () -> String) -> String {
    if let flag, !flag.isEmpty { return flag }
    if let v = environment[env], !v.isEmpty { return v }
    return `default`()
}

/// Resolves a path input like `resolve`, made absolute against the working directory: buildpacks
/// run in the app directory, so a relative path would point elsewhere for them.
func resolvePath(_ flag: String?, _ env: String, _ environment: [String: String], default: @autoclosure () -> String) -> String {
    absolute(resolve(flag, env, environment, default: `default`()))
}

func absolute(_ path: String) -> String {
    guard !path.hasPrefix("/") else { return path }
    let cwd = FileManager.default.currentDirectoryPath
    return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: cwd, isDirectory: true)).standardizedFileURL.path
}

/// The Platform API this run follows: `CNB_PLATFORM_API`, checked before any other input.
/// Unset, the phase stops (exit 11) as the reference lifecycle does: platform.md only says the
/// platform SHOULD set it, and guessing a version would silently pick behaviour the platform may
/// not expect (Tests/Fixtures/differential, case `phases/platform-api-unset`).
func platformAPI(_ environment: [String: String]) throws(LifecycleError) -> APIVersion {
    guard let raw = environment[CNBEnv.platformAPI], !raw.isEmpty else { throw .platformAPIUnset }
    guard let v = APIVersion(raw), SupportedAPIs.isSupported(platform: v) else { throw .unsupportedPlatformAPI(raw) }
    if SupportedAPIs.deprecatedPlatform.contains(v) {
        StandardStream.error.write("Warning: platform API \(v) is deprecated\n")
    }
    return v
}

/// The user buildpacks run as. As root, privileges are dropped to `CNB_USER_ID`/`CNB_GROUP_ID`;
/// buildpacks never run as root.
func buildpackUser(_ environment: [String: String]) throws(LifecycleError) -> (uid: Int, gid: Int)? {
    guard geteuid() == 0 else { return nil }
    guard let u = environment[CNBEnv.userID].flatMap(Int.init), let g = environment[CNBEnv.groupID].flatMap(Int.init) else {
        throw .privileges("running as root: set \(CNBEnv.userID) and \(CNBEnv.groupID) to the CNB user so buildpacks do not run as root")
    }
    guard u != 0 else { throw .privileges("\(CNBEnv.userID) is 0: buildpacks never run as root") }
    return (u, g)
}

func logger(_ flag: String?, _ environment: [String: String]) throws(LifecycleError) -> Logger {
    let name = resolve(flag, CNBEnv.logLevel, environment, default: "info")
    guard let level = Logger.Level(name: name) else {
        throw .invalidArgument("log level \"\(name)\"", reason: "not one of debug, info, warn, error")
    }
    return Logger(level: level)
}

/// With `CAIRN_TRACE` set (not "" or "0"; `cairn build` passes it into the sandbox), each phase
/// says how long it took on stderr, `[trace] lifecycle: <action> <ms> ms`, beside `cairn`'s own
/// steps: the breakdown inside the creator.
let tracePhases: Bool = {
    let value = ProcessInfo.processInfo.environment["CAIRN_TRACE"] ?? ""
    return !value.isEmpty && value != "0"
}()

/// Runs a phase body, printing a failure once as "ERROR: failed to <action>: <cause>" and exiting
/// with platform.md's code.
func runPhase(_ phase: LifecycleError.Phase, action: String, _ body: () async throws -> Void) async throws {
    let start = tracePhases ? monotonicMilliseconds() : 0
    defer {
        if tracePhases {
            let ms = monotonicMilliseconds() - start
            StandardStream.error.write("[trace] lifecycle: \(action) \((ms * 100).rounded() / 100) ms\n")
        }
    }
    do {
        try await body()
    } catch let e as LifecycleError {
        StandardStream.error.write("ERROR: failed to \(action): \(e)\n")
        throw ExitCode(e.exitCode(phase: phase))
    } catch let e as ExitCode {
        throw e
    } catch {
        StandardStream.error.write("ERROR: failed to \(action): \(error)\n")
        throw ExitCode(LifecycleError.unexpected(error).exitCode(phase: phase))
    }
}

/// A boolean environment variable as Go's strconv.ParseBool reads it (`true`, `1`, `t`, ...).
func envFlag(_ name: String, _ env: [String: String]) -> Bool {
    GoFlags.parseBool(Substring(env[name] ?? "")) ?? false
}

/// Where the run images are listed: run.toml (`-run`), or for Platform API < 0.12 stack.toml
/// (`-stack`); the second value says which.
func runImagesFile(run: String?, stack: String?, _ env: [String: String], _ api: APIVersion) -> (path: String, isStackFile: Bool) {
    if api.supports(PlatformFeature.runTOML) { return (resolvePath(run, CNBEnv.runPath, env, default: CNBPath.run), false) }
    return (resolvePath(stack, CNBEnv.stackPath, env, default: CNBPath.stack), true)
}

/// The flags detector and builder share (platform.md, their Inputs tables), resolved
/// flag → environment → default, paths made absolute.
struct PhaseOptions: ParsableArguments {
    @Option(name: .dash("analyzed"), help: "analyzed.toml (CNB_ANALYZED_PATH; default <layers>/analyzed.toml)") var analyzed: String?
    @Option(name: .dash("app"), help: "App directory (CNB_APP_DIR; default /workspace)") var app: String?
    @Option(name: .dash("buildpacks"), help: "Buildpacks directory (CNB_BUILDPACKS_DIR; default /cnb/buildpacks)") var buildpacks: String?
    @Option(name: .dash("build-config"), help: "Build config directory (CNB_BUILD_CONFIG_DIR; default /cnb/build-config)") var buildConfig: String?
    @Option(name: .dash("exec-env"), help: "Target execution environment (CNB_EXEC_ENV; default production; Platform API 0.15+)") var execEnvironment: String?
    @Option(name: .dash("group"), help: "group.toml (CNB_GROUP_PATH; default <layers>/group.toml)") var group: String?
    @Option(name: .dash("layers"), help: "Layers directory (CNB_LAYERS_DIR; default /layers)") var layers: String?
    @Option(name: .dash("log-level"), help: "debug, info, warn or error (CNB_LOG_LEVEL)") var logLevel: String?
    @Option(name: .dash("plan"), help: "plan.toml (CNB_PLAN_PATH; default <layers>/plan.toml)") var plan: String?
    @Option(name: .dash("platform"), help: "Platform directory (CNB_PLATFORM_DIR; default /platform)") var platform: String?
    @Flag(name: .dash("no-color"), help: "Disable color output (Cairn's output has none)") var noColor = false

    func layersDirectory(_ env: [String: String]) -> String { resolvePath(layers, CNBEnv.layersDir, env, default: CNBPath.layers) }
    func appDirectory(_ env: [String: String]) -> String { resolvePath(app, CNBEnv.appDir, env, default: CNBPath.app) }
    func buildpacksDirectory(_ env: [String: String]) -> String {
        resolvePath(buildpacks, CNBEnv.buildpacksDir, env, default: CNBPath.buildpacks)
    }
    func buildConfigDirectory(_ env: [String: String]) -> String {
        resolvePath(buildConfig, CNBEnv.buildConfigDir, env, default: CNBPath.buildConfig)
    }
    func platformDirectory(_ env: [String: String]) -> String { resolvePath(platform, CNBEnv.platformDir, env, default: CNBPath.platform) }
    func groupPath(_ env: [String: String]) -> String {
        resolvePath(group, CNBEnv.groupPath, env, default: layersDirectory(env) + "/" + CNBPath.groupFile)
    }
    func planPath(_ env: [String: String]) -> String {
        resolvePath(plan, CNBEnv.planPath, env, default: layersDirectory(env) + "/" + CNBPath.planFile)
    }
    func analyzedPath(_ env: [String: String]) -> String {
        resolvePath(analyzed, CNBEnv.analyzedPath, env, default: layersDirectory(env) + "/" + CNBPath.analyzedFile)
    }
    func execEnv(_ env: [String: String], _ api: APIVersion) -> String {
        api.supports(PlatformFeature.execEnv) ? resolve(execEnvironment, CNBEnv.execEnv, env, default: ExecEnv.production) : ExecEnv.production
    }
}


/// Exit codes of platform.md for the launcher (its one exit-code table).
public enum LaunchExit {
    public static let incompatiblePlatformAPI = LifecycleExit.incompatiblePlatformAPI
    public static let incompatibleBuildpackAPI = LifecycleExit.incompatibleBuildpackAPI
    /// A failure before the process starts (80-89: launch-specific errors).
    public static let failedLaunch = LifecycleExit.launchError
}

/// A launcher failure: the exit code and one line for the user.
public struct LaunchError: Error {
    public var code: Int32
    public var message: String

    public init(code: Int32 = LaunchExit.failedLaunch, message: String) {
        self.code = code
        self.message = message
    }
}

/// A process as the launcher will run it.
public struct LaunchProcess: Equatable, Sendable {
    public var type: String?
    public var command: [String]
    public var args: [String]
    public var direct: Bool
    public var workingDirectory: String
    /// A command given on the command line without `--`: evaluated by the shell after the
    /// profile scripts, each argument one token (variables expand, words do not split).
    public var userShellCommand = false

    public init(type: String?, command: [String], args: [String], direct: Bool, workingDirectory: String,
                userShellCommand: Bool = false) {
        self.type = type
        self.command = command
        self.args = args
        self.direct = direct
        self.workingDirectory = workingDirectory
        self.userShellCommand = userShellCommand
    }
}

/// Which process the launcher runs for its arguments (platform.md, launcher Inputs): a pure
/// function of the image's launch metadata, so that it can be tested without launching.
public struct LaunchSelection {
    /// `[[processes]]` of `<layers>/config/metadata.toml`.
    public var processes: [[String: TOMLValue]]
    /// `[[buildpacks]]` of it: id and buildpack API.
    public var buildpacks: [(id: String, api: String)]
    /// CNB_EXEC_ENV (default production).
    public var execEnv: String
    /// The app directory: the working directory unless a process names another.
    public var app: String

    public init(processes: [[String: TOMLValue]], buildpacks: [(id: String, api: String)], execEnv: String, app: String) {
        self.processes = processes
        self.buildpacks = buildpacks
        self.execEnv = execEnv
        self.app = app
    }

    /// `argv[0]`'s last path element names a buildpack process, else `--` marks a direct
    /// command, else the first argument is a shell command.
    public func select(argv: [String]) throws(LaunchError) -> LaunchProcess {
        let name = argv.first.map { String($0.split(separator: "/").last ?? "") } ?? ""
        let userArgs = Array(argv.dropFirst())
        let ofType = processes.filter { $0["type"]?.string == name }
        if name != "launcher", !ofType.isEmpty {
            guard let proc = ofType.last(where: eligible) else {
                throw LaunchError(message: "process type \(name) is not eligible for execution environment \(execEnv)")
            }
            return try buildpackProcess(name, proc, userArgs: userArgs)
        }
        if userArgs.first == "--" {
            guard userArgs.count >= 2 else { throw LaunchError(message: "no command after --") }
            return LaunchProcess(type: nil, command: [userArgs[1]], args: Array(userArgs.dropFirst(2)), direct: true,
                                 workingDirectory: app)
        }
        guard let first = userArgs.first else {
            throw LaunchError(message: "no process: the image has no default process type and no command was given")
        }
        return LaunchProcess(type: nil, command: [first], args: Array(userArgs.dropFirst()), direct: false, workingDirectory: app,
                             userShellCommand: true)
    }

    /// A buildpack-provided process: from Buildpack API 0.9 always direct, user arguments
    /// replacing the default ones; before, appended to them, `direct` as declared.
    func buildpackProcess(_ name: String, _ proc: [String: TOMLValue], userArgs: [String]) throws(LaunchError) -> LaunchProcess {
        let command: [String] = proc["command"]?.strings ?? proc["command"]?.string.map { [$0] } ?? []
        guard !command.isEmpty else { throw LaunchError(message: "process type \(name) has no command") }
        let defaults = proc["args"]?.strings ?? []
        let owner = proc["buildpack-id"]?.string ?? proc["buildpackID"]?.string ?? ""
        let api = APIVersion(buildpacks.first { $0.id == owner }?.api ?? "") ?? SupportedAPIs.buildpack[0]
        let workingDirectory = proc["working-dir"]?.string.flatMap { $0.isEmpty ? nil : $0 } ?? app
        if api.supports(BuildpackFeature.commandArray) {
            return LaunchProcess(type: name, command: command, args: userArgs.isEmpty ? defaults : userArgs,
                                 direct: true, workingDirectory: workingDirectory)
        }
        return LaunchProcess(type: name, command: command, args: defaults + userArgs,
                             direct: proc["direct"]?.bool ?? false, workingDirectory: workingDirectory)
    }

    /// A process without `exec-env` runs everywhere; else its list must name the environment or `*`.
    public func eligible(_ proc: [String: TOMLValue]) -> Bool {
        guard let envs = proc["exec-env"]?.strings, !envs.isEmpty else { return true }
        return envs.contains("*") || envs.contains(execEnv)
    }
}

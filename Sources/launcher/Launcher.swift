import CairnBasics
import CNBCore

#if hasFeature(Embedded)
import CLibc
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// The launcher placed at /cnb/lifecycle/launcher in every app image (platform.md, launcher).
// No Foundation: it is linked statically and runs on any base image.

/// The launch environment under construction (buildpack.md, Environment Variable Modification
/// Rules).
struct LaunchEnvironment {
    var values: [String: String]

    mutating func prependPath(_ name: String, _ dir: String) {
        values[name] = EnvFiles.prependingPath(dir, to: values[name])
    }

    /// Applies one env directory; a file without suffix overrides (launch behaviour).
    mutating func apply(envDirectory dir: String) {
        let names = Posix.list(dir).filter { Posix.kind(dir + "/" + $0) == .file }
        EnvFiles.apply(names: names, read: { Posix.readFile(dir + "/" + $0) }, to: &values, defaultAction: .override)
    }

    var envp: [String] { values.keys.sorted().map { $0 + "=" + values[$0]! } }

    /// Finds `command` in this environment's PATH as execvp would, but against the launch PATH.
    func lookPath(_ command: String) -> String? {
        searchPath(command, in: values["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
    }
}

struct Launcher {
    let layers: String
    let app: String
    let execEnv: String
    let buildpacks: [(id: String, api: String)]
    let processes: [[String: TOMLValue]]
    var env: LaunchEnvironment

    init(environment: [(String, String)]) throws(LaunchError) {
        var values: [String: String] = [:]
        for (k, v) in environment { values[k] = v }
        if let api = values[CNBEnv.platformAPI], !api.isEmpty {
            guard let v = APIVersion(api), SupportedAPIs.isSupported(platform: v) else {
                throw LaunchError(code: LaunchExit.incompatiblePlatformAPI,
                                  message: "platform API \(api) is not supported (\(SupportedAPIs.list(SupportedAPIs.platform)))")
            }
        }
        layers = values[CNBEnv.layersDir].flatMap { $0.isEmpty ? nil : $0 } ?? CNBPath.layers
        app = values[CNBEnv.appDir].flatMap { $0.isEmpty ? nil : $0 } ?? CNBPath.app
        execEnv = values[CNBEnv.execEnv].flatMap { $0.isEmpty ? nil : $0 } ?? ExecEnv.production
        // platform.md, Launch Environment: these are not passed on; /cnb/process leaves PATH.
        values[CNBEnv.appDir] = nil
        values[CNBEnv.layersDir] = nil
        values[CNBEnv.processType] = nil
        if var path = values["PATH"] {
            while path == CNBPath.processDir || path.hasPrefix(CNBPath.processDir + ":") {
                path = path == CNBPath.processDir ? "" : String(path.dropFirst(CNBPath.processDir.count + 1))
            }
            values["PATH"] = path
        }
        env = LaunchEnvironment(values: values)

        let metadataPath = layers + "/" + CNBPath.configMetadata
        guard let text = Posix.readFile(metadataPath) else {
            throw LaunchError(message: "cannot read \(metadataPath): \(Posix.errorText(errno))")
        }
        let metadata: [String: TOMLValue]
        do {
            metadata = try TOMLParser.parse(text)
        } catch {
            throw LaunchError(message: "\(metadataPath): \(error)")
        }
        buildpacks = (metadata["buildpacks"]?.array ?? []).compactMap { bp in
            guard let id = bp["id"]?.string else { return nil }
            return (id, bp["api"]?.string ?? SupportedAPIs.buildpack[0].description)
        }
        processes = (metadata["processes"]?.array ?? []).compactMap { $0.table }
        for bp in buildpacks where !(APIVersion(bp.api).map(SupportedAPIs.isSupported(buildpack:)) ?? false) {
            throw LaunchError(code: LaunchExit.incompatibleBuildpackAPI,
                              message: "buildpack \(bp.id) uses buildpack API \(bp.api), which this launcher does not support (\(SupportedAPIs.list(SupportedAPIs.buildpack)))")
        }
    }

    /// The layer directories of the image, in build order then by name: `<layers>/<bp>/<layer>/`.
    var layerDirectories: [String] {
        buildpacks.flatMap { bp -> [String] in
            let dir = layers + "/" + bp.id.replacingSlashes()
            return Posix.list(dir).map { dir + "/" + $0 }.filter { Posix.kind($0) == .directory }
        }
    }

    /// platform.md, launcher Inputs (LaunchSelection, in CNBCore with its tests).
    func selectProcess(argv: [String]) throws(LaunchError) -> LaunchProcess {
        try LaunchSelection(processes: processes, buildpacks: buildpacks, execEnv: execEnv, app: app).select(argv: argv)
    }

    /// Buildpack-provided launch environment: layer paths, `env/`, `env.launch/`,
    /// `env.launch/<process>/` (buildpack.md, Environment).
    mutating func applyLayerEnvironment(processType: String?) {
        for dir in layerDirectories {
            if Posix.kind(dir + "/bin") == .directory { env.prependPath("PATH", dir + "/bin") }
            if Posix.kind(dir + "/lib") == .directory { env.prependPath("LD_LIBRARY_PATH", dir + "/lib") }
            env.apply(envDirectory: dir + "/env")
            env.apply(envDirectory: dir + "/env.launch")
            if let processType { env.apply(envDirectory: dir + "/env.launch/" + processType) }
        }
    }

    /// Files in `<layer>/<sub>` for every layer, then in `<layer>/<sub>/<process>` (platform.md,
    /// launcher Execution: build order, then layer name, then file name).
    func scripts(_ sub: String, processType: String?) -> [String] {
        var out: [String] = []
        let subdirs = processType.map { ["", "/" + $0] } ?? [""]
        for s in subdirs {
            for layer in layerDirectories {
                let dir = layer + "/" + sub + s
                out += Posix.list(dir).map { dir + "/" + $0 }.filter { Posix.kind($0) == .file }
            }
        }
        return out
    }

    /// Runs each exec.d program with fd 3 a pipe and applies the TOML it writes there.
    mutating func runExecD(processType: String?) throws(LaunchError) {
        for program in scripts("exec.d", processType: processType) {
            let result = Posix.runCapturingFD3(program, args: [], env: env.envp)
            if let error = result.error { throw LaunchError(message: "exec.d \(program): \(error)") }
            guard result.status == 0 else { throw LaunchError(message: "exec.d \(program) exited with status \(result.status)") }
            let table: [String: TOMLValue]
            do {
                table = try TOMLParser.parse(result.output)
            } catch {
                throw LaunchError(message: "exec.d \(program) output, \(error)")
            }
            for (key, value) in table {
                guard let s = value.string else { throw LaunchError(message: "exec.d \(program): \(key) must be a string") }
                env.values[key] = s
            }
        }
    }

    /// Starts the process, replacing the launcher. Returns only by throwing.
    mutating func launch(_ process: LaunchProcess) throws(LaunchError) -> Never {
        applyLayerEnvironment(processType: process.type)
        guard chdir(app) == 0 else { throw LaunchError(message: "cannot enter app directory \(app): \(Posix.errorText(errno))") }
        try runExecD(processType: process.type)
        if process.direct {
            guard chdir(process.workingDirectory) == 0 else {
                throw LaunchError(message: "cannot enter working directory \(process.workingDirectory): \(Posix.errorText(errno))")
            }
            let cmd = process.command[0]
            guard let path = env.lookPath(cmd) else { throw LaunchError(message: "\(cmd): command not found in PATH") }
            let error = Posix.exec(path, args: process.command + process.args, env: env.envp)
            throw LaunchError(message: "cannot execute \(path): \(error)")
        }
        // One bash process sources the profile scripts in the app directory, then replaces itself
        // with a bash running the command; arguments stay separate words ("$@").
        guard let bash = env.lookPath("bash") else {
            throw LaunchError(message: "bash not found in PATH: a non-direct process needs bash in the run image")
        }
        var script = ""
        for profile in scripts("profile.d", processType: process.type) { script += "source \(quote(profile))\n" }
        if Posix.kind(app + "/.profile") == .file { script += "source \(quote(app + "/.profile"))\n" }
        script += "cd \(quote(process.workingDirectory)) || exit \(LaunchExit.failedLaunch)\n"
        if process.userShellCommand {
            // As the reference launcher: one argument is a script; several are tokens, each
            // double-quoted so the shell expands variables in it but does not split it.
            script += process.args.isEmpty ? process.command[0] : (process.command + process.args).map(doubleQuote).joined(separator: " ")
            script += "\n"
            let error = Posix.exec(bash, args: ["bash", "-c", script, "launcher"], env: env.envp)
            throw LaunchError(message: "cannot execute \(bash): \(error)")
        }
        // A process of Buildpack API < 0.9 with `direct = false`, as the reference launcher runs
        // it: without arguments its command is a bash script; with arguments, the command and
        // each argument are one token each, evaluated by the shell after the profile scripts
        // (`$VAR` from exec.d or profile.d expands; the words of a token do not split).
        let tokens = process.command + process.args
        let inner = tokens.count == 1 ? tokens[0] : tokenScript(count: tokens.count)
        script += "exec bash -c \(quote(inner)) \"$@\"\n"
        let first = tokens.count == 1 ? process.type ?? "bash" : tokens[0]
        let error = Posix.exec(bash, args: ["bash", "-c", script, "launcher", first] + tokens.dropFirst(), env: env.envp)
        throw LaunchError(message: "cannot execute \(bash): \(error)")
    }

    /// `"$(eval echo \"$0\")" "$(eval echo \"${1}\")" …`: each positional parameter evaluated
    /// by the shell as one word.
    func tokenScript(count: Int) -> String {
        (0..<count).map { $0 == 0 ? "\"$(eval echo \\\"$0\\\")\"" : "\"$(eval echo \\\"${\($0)}\\\")\"" }.joined(separator: " ")
    }

    /// `"s"` with `"` and `\` escaped: `$VAR` and `$(…)` still expand, as in the reference.
    func doubleQuote(_ s: String) -> String {
        var out = "\""
        for c in s {
            if c == "\"" || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out + "\""
    }

    func quote(_ s: String) -> String {
        "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}

extension String {
    func replacingSlashes() -> String { String(map { $0 == "/" ? "_" : $0 }) }
}

/// Runs the launcher with the command line `argv`; returns only on failure, with its exit code.
func launch(argv: [String]) -> Int32 {
    do {
        var launcher = try Launcher(environment: Posix.environment())
        let process = try launcher.selectProcess(argv: argv)
        try launcher.launch(process)
    } catch {
        Posix.writeError("ERROR: failed to launch: \(error.message)")
        return error.code
    }
}

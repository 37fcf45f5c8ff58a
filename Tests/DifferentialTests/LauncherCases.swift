import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Launcher cases: one app image's `/layers` (exec.d, profile.d, env.launch, each also
/// process-specific) and processes, for a buildpack at each Buildpack API 0.7–0.12, launched
/// the ways a platform and a user do. The argv and the environment the process sees are compared.
let comparedBuildpackAPIs = ["0.7", "0.8", "0.9", "0.10", "0.11", "0.12"]

/// How the image is started: argv (`web` = `/cnb/process/web`, `launcher` = the launcher itself).
let launcherInvocations: [(name: String, argv: [String])] = [
    ("web", ["web"]),
    ("web-user-args", ["web", "user-arg", "$GREETING"]),
    ("shell", ["shell"]),
    ("shell-user-args", ["shell", "user $GREETING"]),
    ("worker-process-specific", ["worker"]),
    ("direct-command", ["launcher", "--", "show", "a", "$GREETING"]),
    ("shell-command", ["launcher", "show $GREETING", "b c"]),
    ("default-process", ["launcher"]),
]

let launcherCases: [DifferentialCase] = comparedBuildpackAPIs.flatMap { api in
    launcherInvocations.map { invocation in
        DifferentialCase(id: "launcher/\(invocation.name)@bp\(api)", setup: { r in
            try launchImage(r, buildpackAPI: api)
        }, execute: { r, lifecycle in
            try launch(r, lifecycle, invocation.argv)
        })
    }
}

/// The app process: prints its arguments and its environment.
let showScript = """
    #!/bin/bash
    i=0; for a in "$@"; do echo "ARG$i=$a"; i=$((i + 1)); done
    env | LC_ALL=C sort | grep -v '^_='
    """

func launchImage(_ r: CaseRoot, buildpackAPI api: String) throws {
    try r.standardDirectories()
    try r.write("app/show", showScript, mode: 0o755)
    try r.write("app/.profile", "export FROM_APP_PROFILE=app\n")
    let layer = "layers/bp/tools"
    try r.write(layer + ".toml", "[types]\nlaunch = true\n")
    try r.write(layer + "/bin/show", "#!/bin/bash\nexec \(r.app)/show \"$@\"\n", mode: 0o755)
    try r.write(layer + "/env/FROM_ENV", "env")
    try r.write(layer + "/env.launch/FROM_LAUNCH", "launch")
    try r.write(layer + "/env.launch/PATH.prepend", "/opt/launch-path")
    try r.write(layer + "/env.launch/PATH.delim", ":")
    try r.write(layer + "/env.launch/worker/FROM_LAUNCH", "worker-launch")
    try r.write(layer + "/exec.d/setvar", "#!/bin/sh\necho 'VAR_FROM_EXEC_D = \"from-exec-d\"' >&3\n", mode: 0o755)
    try r.write(layer + "/exec.d/worker/setworker", "#!/bin/sh\necho 'WORKER_EXEC_D = \"yes\"' >&3\n", mode: 0o755)
    try r.write(layer + "/profile.d/a.sh", "export FROM_PROFILE=\"profile-$GREETING\"\n")
    try r.write(layer + "/profile.d/worker/w.sh", "export FROM_WORKER_PROFILE=worker\n")
    // Two layers, each with general and process-specific scripts: the order they run in shows.
    for name in ["tools", "zz"] {
        let dir = "layers/bp/" + name
        try r.write(dir + "/profile.d/order.sh", "export ORDER=\"$ORDER \(name)\"\n")
        try r.write(dir + "/profile.d/worker/order.sh", "export ORDER=\"$ORDER \(name)-worker\"\n")
        try r.write(dir + "/exec.d/order", "#!/bin/sh\necho \"EXEC_ORDER = \\\"$EXEC_ORDER \(name)\\\"\" >&3\n", mode: 0o755)
        try r.write(dir + "/exec.d/worker/order", "#!/bin/sh\necho \"EXEC_ORDER = \\\"$EXEC_ORDER \(name)-worker\\\"\" >&3\n", mode: 0o755)
    }
    // As both builders write metadata.toml: `direct` for every process; from Buildpack API 0.9
    // every process is direct.
    let legacy = APIOrder.less(api, "0.9")
    func process(_ type: String, _ command: String, _ args: [String], direct d: Bool) -> String {
        let argList = args.map { "\"\($0)\"" }.joined(separator: ", ")
        return """
            [[processes]]
            type = "\(type)"
            command = ["\(command)"]
            args = [\(argList)]
            buildpack-id = "bp"
            direct = \(d || !legacy)

            """
    }
    try r.write("layers/config/metadata.toml", """
        buildpack-default-process-type = "web"

        [[buildpacks]]
        id = "bp"
        version = "1.0.0"
        api = "\(api)"

        \(process("web", r.app + "/show", ["default-arg", "$GREETING"], direct: true))
        \(process("shell", r.app + "/show $GREETING", ["$VAR_FROM_EXEC_D", "two words"], direct: false))
        \(process("worker", r.app + "/show", ["worker-arg", "$FROM_WORKER_PROFILE"], direct: false))
        """)
}

/// Starts the image as a platform would: `/cnb/process/<type>` links to the launcher.
func launch(_ r: CaseRoot, _ lifecycle: LifecycleUnderTest, _ argv: [String]) throws -> Observation {
    let processDir = r.path + "/cnb/process"
    try FileManager.default.createDirectory(atPath: processDir, withIntermediateDirectories: true)
    var command = argv
    if argv[0] == "launcher" {
        command[0] = lifecycle.launcher
    } else {
        try? FileManager.default.createSymbolicLink(atPath: processDir + "/" + argv[0], withDestinationPath: lifecycle.launcher)
        command[0] = processDir + "/" + argv[0]
    }
    let env = DifferentialRunner.environment(r, [
        "CNB_PLATFORM_API": "0.12", "CNB_LAYERS_DIR": r.layers, "CNB_APP_DIR": r.app, "GREETING": "hi",
    ])
    let result = try r.runAsUser(command, environment: env)
    var o = Observation()
    o.exit(result.status)
    o.log = result.stdout + result.stderr
    // A failed launch prints an error, whose words differ; the exit code is compared.
    if result.status == 0 { o.artifacts["stdout"] = Observation.envValue(text: result.stdout, presenceOnly: []) }
    return o
}

/// Buildpack API versions compared as numbers.
enum APIOrder {
    static func less(_ a: String, _ b: String) -> Bool {
        let x = a.split(separator: ".").compactMap { Int($0) }, y = b.split(separator: ".").compactMap { Int($0) }
        return x.lexicographicallyPrecedes(y)
    }
}

@Suite(.enabled(if: geteuid() == 0, "runs both lifecycles as uid 1000 with setpriv (CI runs as root)")) struct DifferentialLauncher {
    @Test func launcherMatchesTheReference() throws {
        try DifferentialRunner.check("launcher", launcherCases)
    }
}

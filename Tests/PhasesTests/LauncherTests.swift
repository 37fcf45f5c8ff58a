import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The launcher, run as a process, one test per rule of platform.md's launcher section and
/// buildpack.md's launch environment. The shipped one (scripts/build-static: Embedded Swift);
/// LAUNCHER_BIN=.build/debug/launcher runs them on the SwiftPM build of the same sources.
let launcherBinary = ProcessInfo.processInfo.environment["LAUNCHER_BIN"] ?? staticBin + "/launcher"

/// An app image's /layers and /workspace laid out in a temp dir.
final class LaunchImage {
    let tmp = TempDir("launch")
    var layers: String { tmp.path + "/layers" }
    var app: String { tmp.path + "/workspace" }
    var processDir: String { tmp.path + "/cnb/process" }

    init(metadata: String) throws {
        if ProcessInfo.processInfo.environment["LAUNCHER_BIN"] == nil { try requireStaticBinaries() }
        try writeFile(layers + "/config/metadata.toml", metadata)
        try FileManager.default.createDirectory(atPath: app, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: processDir, withIntermediateDirectories: true)
    }

    /// A `/cnb/process/<type>` link to the launcher.
    func link(_ type: String) throws -> String {
        let path = processDir + "/" + type
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: launcherBinary)
        }
        return path
    }

    func file(_ rel: String, _ contents: String, mode: Int = 0o644) throws {
        try writeFile(layers + "/" + rel, contents, mode: mode)
    }

    func launch(_ argv: [String], env extra: [String: String] = [:]) throws -> RunResult {
        var env = ["PATH": "/cnb/process:/usr/bin:/bin", "CNB_LAYERS_DIR": layers, "CNB_APP_DIR": app, "HOME": "/root"]
        env.merge(extra) { _, new in new }
        return try run(argv, cwd: "/", environment: env)
    }
}

let twoProcesses = """
    buildpack-default-process-type = "web"

    [[buildpacks]]
    id = "bp/new"
    version = "1.0.0"
    api = "0.10"

    [[buildpacks]]
    id = "bp/old"
    version = "1.0.0"
    api = "0.8"

    [[processes]]
    type = "web"
    command = ["echo", "web"]
    args = ["default-arg"]
    buildpack-id = "bp/new"

    [[processes]]
    type = "legacy"
    command = ["echo"]
    args = ["legacy $GREETING", "one"]
    direct = false
    buildpack-id = "bp/old"

    [[processes]]
    type = "wd"
    command = ["pwd"]
    working-dir = "/tmp"
    buildpack-id = "bp/new"

    [[processes]]
    type = "testonly"
    command = ["echo", "test"]
    exec-env = ["test"]
    buildpack-id = "bp/new"
    """

@Test func processFromArgv0WithDefaultArgsReplacedByUserArgs() throws {
    let image = try LaunchImage(metadata: twoProcesses)
    let web = try image.link("web")
    let plain = try image.launch([web])
    #expect(plain.status == 0, "\(plain.stderr)")
    #expect(plain.stdout == "web default-arg\n")
    let replaced = try image.launch([web, "a", "b"])
    #expect(replaced.stdout == "web a b\n")
}

/// As the reference launcher: the command and each argument are one token each, evaluated by
/// the shell with `eval echo` (a variable in an argument expands; the token stays one argument,
/// its runs of blanks become one, as the reference's do).
@Test func olderBuildpackAPIProcessRunsInShellWithUserArgsAppended() throws {
    let image = try LaunchImage(metadata: twoProcesses)
    let legacy = try image.link("legacy")
    let r = try image.launch([legacy, "two  $GREETING"], env: ["GREETING": "hi"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == "legacy hi one two hi\n")
}

@Test func doubleDashRunsADirectCommandInTheAppDirectory() throws {
    let image = try LaunchImage(metadata: twoProcesses)
    let r = try image.launch([launcherBinary, "--", "pwd"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == image.app + "\n")
    // Direct: no shell expansion of $HOME.
    let literal = try image.launch([launcherBinary, "--", "echo", "$HOME"])
    #expect(literal.stdout == "$HOME\n")
}

@Test func userCommandRunsInAShellThatSourcedProfileScriptsAndAppProfile() throws {
    let image = try LaunchImage(metadata: twoProcesses)
    try image.file("bp_new/l1/profile.d/1.sh", "export P1=one\n")
    try image.file("bp_new/l1/profile.d/2.sh", "export P2=\"$P1-two\"\n")
    try image.file("bp_new/l1/profile.d/web/only-web.sh", "export PWEB=web\n")
    try writeFile(image.app + "/.profile", "export APPPROFILE=yes\n")
    try image.file("bp_new/l1.toml", "[types]\nlaunch = true\n")
    // One argument is a script.
    let r = try image.launch([launcherBinary, "echo $P2 ${PWEB:-none} $APPPROFILE"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == "one-two none yes\n")
}

/// As the reference launcher: several arguments without `--` are tokens, each evaluated by the
/// shell after the profile scripts (variables expand) and kept one word (no splitting).
@Test func userCommandArgumentsAreTokensEvaluatedByTheShell() throws {
    let image = try LaunchImage(metadata: twoProcesses)
    try writeFile(image.app + "/.profile", "export VAR=from-profile\nexport FOO=bar\n")
    let echo = try image.launch([launcherBinary, "echo", "something", "$VAR"])
    #expect(echo.status == 0, "\(echo.stderr)")
    #expect(echo.stdout == "something from-profile\n")
    let printf = try image.launch([launcherBinary, "printf", "[%s]", "a b", "$FOO"])
    #expect(printf.stdout == "[a b][bar]", "\(printf.stdout)\(printf.stderr)")
    // A quote inside a token stays part of it.
    let quoted = try image.launch([launcherBinary, "printf", "[%s]", "say \"hi\""])
    #expect(quoted.stdout == "[say \"hi\"]", "\(quoted.stdout)\(quoted.stderr)")
}

@Test func aBuildpackAPIThisLauncherDoesNotSupportExits12() throws {
    let image = try LaunchImage(metadata: """
        [[buildpacks]]
        id = "bp/ancient"
        version = "1.0.0"
        api = "0.2"
        """)
    let r = try image.launch([launcherBinary, "--", "true"])
    #expect(r.status == 12, "\(r.stderr)")
    #expect(r.stderr.contains("bp/ancient") && r.stderr.contains("0.2"), "\(r.stderr)")
}

@Test func launchEnvironmentFromLayersFollowsTheModificationRules() throws {
    let image = try LaunchImage(metadata: twoProcesses)
    try image.file("bp_new/a/env/OVERRIDE", "from-env")
    try image.file("bp_new/a/env.launch/OVERRIDE.override", "from-env-launch")
    try image.file("bp_new/a/env.launch/LIST.append", "b")
    try image.file("bp_new/a/env.launch/LIST.delim", ",")
    try image.file("bp_new/a/env.launch/DEFAULTED.default", "default")
    try image.file("bp_new/a/env.launch/web/ONLYWEB", "yes")
    try image.file("bp_new/a/env.launch/legacy/ONLYLEGACY", "yes")
    try image.file("bp_new/a/bin/tool", "#!/bin/sh\necho tool\n", mode: 0o755)
    try FileManager.default.createDirectory(atPath: image.layers + "/bp_new/a/lib", withIntermediateDirectories: true)
    // Read the env through a direct command of the same image.
    let env = try image.launch([launcherBinary, "--", "env"], env: ["LIST": "a"])
    let vars = Dictionary(env.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
        guard let eq = line.firstIndex(of: "=") else { return nil }
        return (String(line[..<eq]), String(line[line.index(after: eq)...]))
    }, uniquingKeysWith: { a, _ in a })
    #expect(vars["OVERRIDE"] == "from-env-launch")
    #expect(vars["LIST"] == "a,b")
    #expect(vars["DEFAULTED"] == "default")
    #expect(vars["ONLYWEB"] == nil, "process-specific env must not apply to other processes")
    #expect(vars["PATH"]?.hasPrefix(image.layers + "/bp_new/a/bin:") == true, "\(vars["PATH"] ?? "")")
    #expect(vars["PATH"]?.contains("/cnb/process") == false, "/cnb/process must leave PATH")
    #expect(vars["LD_LIBRARY_PATH"] == image.layers + "/bp_new/a/lib")
    #expect(vars["CNB_LAYERS_DIR"] == nil && vars["CNB_APP_DIR"] == nil && vars["CNB_PROCESS_TYPE"] == nil)

    // The process-specific directory applies to its process.
    let processEnv = try image.launch([try image.link("legacy")], env: ["GREETING": "x"])
    #expect(processEnv.status == 0)
    let onlyWeb = try LaunchImage(metadata: """
        [[buildpacks]]
        id = "bp/new"
        version = "1"
        api = "0.10"
        [[processes]]
        type = "web"
        command = ["printenv", "ONLYWEB"]
        buildpack-id = "bp/new"
        """)
    try onlyWeb.file("bp_new/a/env.launch/web/ONLYWEB", "yes")
    let w = try onlyWeb.launch([try onlyWeb.link("web")])
    #expect(w.stdout == "yes\n", "\(w.stderr)")
}

@Test func execDProgramsSetVariablesThroughFD3InOrder() throws {
    let image = try LaunchImage(metadata: """
        [[buildpacks]]
        id = "bp/new"
        version = "1"
        api = "0.10"
        [[processes]]
        type = "web"
        command = ["sh", "-c", "echo $FIRST $SECOND $WEBONLY $SEEN_IN_APP"]
        buildpack-id = "bp/new"
        """)
    try image.file("bp_new/a/exec.d/1-first", "#!/bin/sh\necho 'FIRST = \"one\"' >&3\n", mode: 0o755)
    // Later programs see earlier output; exec.d runs in the app directory.
    try image.file("bp_new/a/exec.d/2-second", "#!/bin/sh\nprintf 'SECOND = \"%s-two\"\\nSEEN_IN_APP = \"%s\"\\n' \"$FIRST\" \"$(pwd)\" >&3\n", mode: 0o755)
    try image.file("bp_new/a/exec.d/web/3-web", "#!/bin/sh\necho 'WEBONLY = \"w\"' >&3\n", mode: 0o755)
    let r = try image.launch([try image.link("web")])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == "one one-two w \(image.app)\n")
}

@Test func failingExecDStopsTheLaunchWithALaunchError() throws {
    let image = try LaunchImage(metadata: twoProcesses)
    try image.file("bp_new/a/exec.d/bad", "#!/bin/sh\nexit 3\n", mode: 0o755)
    let r = try image.launch([try image.link("web")])
    #expect(r.status == 82)
    #expect(r.stderr.contains("exec.d") && r.stderr.contains("bad"))
}

@Test func workingDirectoryOfTheProcessIsUsed() throws {
    let image = try LaunchImage(metadata: twoProcesses)
    let r = try image.launch([try image.link("wd")])
    #expect(r.stdout == "/tmp\n")
}

@Test func processNotEligibleForTheExecutionEnvironmentFails() throws {
    let image = try LaunchImage(metadata: twoProcesses)
    let link = try image.link("testonly")
    let r = try image.launch([link])
    #expect(r.status == 82)
    #expect(r.stderr.contains("not eligible"))
    let ok = try image.launch([link], env: ["CNB_EXEC_ENV": "test"])
    #expect(ok.stdout == "test\n")
}

@Test func exitStatusOfTheProcessIsTheLaunchersAndBadInputsHaveLaunchCodes() throws {
    let image = try LaunchImage(metadata: twoProcesses)
    #expect(try image.launch([launcherBinary, "--", "sh", "-c", "exit 7"]).status == 7)
    #expect(try image.launch([launcherBinary], env: ["CNB_PLATFORM_API": "0.3"]).status == 11)
    let none = try image.launch([launcherBinary])
    #expect(none.status == 82 && none.stderr.contains("no process"))
    let missing = try image.launch([launcherBinary, "--", "no-such-command-x"])
    #expect(missing.status == 82 && missing.stderr.contains("not found"))
    let broken = try LaunchImage(metadata: "[[processes]\n")
    let b = try broken.launch([launcherBinary, "--", "true"])
    #expect(b.status == 82 && b.stderr.contains("metadata.toml: line 1, column"))
}

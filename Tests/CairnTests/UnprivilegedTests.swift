import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The user `nobody` (65534), when the tests run as root and it can reach the binaries.
let unprivilegedUser = 65534

func canRunUnprivileged() -> Bool {
    guard getuid() == 0, toolAvailable("setpriv") else { return false }
    let probe = try? run(["setpriv", "--reuid=\(unprivilegedUser)", "--regid=\(unprivilegedUser)", "--clear-groups",
                          "test", "-x", cairnBinary, "-a", "-r", staticBin + "/lifecycle"])
    return probe?.status == 0
}

/// App developers build as themselves: builder, build and run as an unprivileged user, who owns
/// everything Cairn writes in their home.
@Test(.enabled(if: canRunUnprivileged(), "runs cairn as an unprivileged user through setpriv: needs root and setpriv")) func anUnprivilegedUserCreatesABuilderBuildsAndRuns() throws {
    try requireStaticBinaries()
    let stack = try TinyStack.shared()
    let tmp = TempDir("unprivileged")
    chmod(tmp.path, 0o755)
    let home = tmp.path + "/home"
    let examples = tmp.path + "/examples"
    _ = try sh("""
        mkdir -p '\(home)' && cp -a '\(stack.store)' '\(home)/store' && cp -a '\(packageRoot)/examples' '\(examples)' \
        && chown -R \(unprivilegedUser):\(unprivilegedUser) '\(home)' '\(examples)'
        """)
    func cairn(_ args: [String]) throws -> RunResult {
        try run(["setpriv", "--reuid=\(unprivilegedUser)", "--regid=\(unprivilegedUser)", "--clear-groups", cairnBinary] + args,
                environment: ["CAIRN_HOME": home, "HOME": home, "CAIRN_LIFECYCLE_BIN": staticBin,
                              "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"])
    }
    let builder = try cairn(["builder", "create", "eb", "--config", examples + "/builder.toml", "--quiet"])
    try #require(builder.status == 0, "\(builder.stderr)")
    let built = try cairn(["build", "hello", "--path", examples + "/apps/hello-procfile", "--builder", "eb"])
    try #require(built.status == 0, "\(built.stdout)\(built.stderr)")
    #expect(built.stdout.contains("---> Procfile buildpack"), "\(built.stdout)")
    let ran = try cairn(["run", "hello", "--", "as", "nobody"])
    #expect(ran.status == 0 && ran.stdout.contains("hello from procfile, exec.d ran") && ran.stdout.contains("args: as nobody"), "\(ran.stdout)\(ran.stderr)")
    // Nothing in the user's home belongs to anyone else.
    let foreign = try sh("find '\(home)' ! -user \(unprivilegedUser) | head -5")
    #expect(foreign.stdout.isEmpty, "not owned by the user: \(foreign.stdout)")
}

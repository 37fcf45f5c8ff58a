import Foundation
import Testing
import TestSupport

/// Issue 43: what a user who knows pack and docker reaches for, and the errors they meet.
@Test func packUsersFlagsAndMistakesGetClearAnswers() throws {
    let tmp = TempDir("pack-user")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    let app = packageRoot + "/examples/apps/hello-procfile"

    // pack's short flags: -p, -B, -b, -e, -q.
    let built = try cairnAt(["build", "hello", "-p", app, "-B", ExampleBuilder.name, "-b", "examples/procfile", "-e", "A=1", "-q"], home: home)
    #expect(built.status == 0, "\(built.stdout)\(built.stderr)")

    // A mistyped command says what was meant, at every level.
    let typo = try cairnAt(["buidl", "hello", "-p", app], home: home)
    #expect(typo.status == 64 && typo.stderr.contains("unknown command \"buidl\" for \"cairn\"; did you mean \"cairn build\"?"), "\(typo.stderr)")
    let deeper = try cairnAt(["audit", "vuln"], home: home)
    #expect(deeper.status == 64 && deeper.stderr.contains("did you mean \"cairn audit vulns\"?"), "\(deeper.stderr)")

    // A builder that is neither in the store nor pullable: said at once, naming both.
    let started = Date()
    let missing = try cairnAt(["build", "hello", "-p", app, "-B", "registry.invalid/my-buildr"], home: home)
    #expect(missing.status == 1 && Date().timeIntervalSince(started) < 5, "a name that does not resolve is not retried")
    #expect(missing.stderr.contains("builder registry.invalid/my-buildr is not in the store")
            && missing.stderr.contains("cannot reach registry.invalid: the host name does not resolve"), "\(missing.stderr)")

    // A down registry: each retry is said, and the failure names the host.
    let down = try cairnAt(["pull", "127.0.0.1:9/app:1"], home: home)
    #expect(down.status == 1 && down.stderr.contains("[cairn] 127.0.0.1:9/v2/app/manifests/1: connection refused; retrying in"), "\(down.stderr)")
    #expect(down.stderr.contains("GET 127.0.0.1:9/v2/app/manifests/1 failed after 6 attempts"), "\(down.stderr)")

    // Names that would make surprising references are refused before any work.
    let stack = try cairnAt(["stack", "create", "Tiny", "--packages", "busybox-static"], home: home)
    #expect(stack.status == 1 && stack.stderr.contains("stack name \"Tiny\": not a valid image name"), "\(stack.stderr)")
    let builder = try cairnAt(["builder", "create", "My-Builder", "--config", packageRoot + "/examples/builder.toml"], home: home)
    #expect(builder.status == 1 && builder.stderr.contains("builder name \"My-Builder\": not a valid image name") && !builder.stderr.contains("Adding"), "\(builder.stderr)")
}

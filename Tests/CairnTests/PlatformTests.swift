import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A Cairn home with the tiny stack and the example builder, made once per test process.
final class ExampleBuilder: @unchecked Sendable {
    let home: String
    var store: String { home + "/store" }
    static let name = "example-builder"

    private init() throws {
        removeStaleSharedDirectories(prefix: "cairn-example-builder-")
        home = NSTemporaryDirectory() + "cairn-example-builder-\(getpid())"
        try Self.make(home: home)
    }

    /// A home of its own with the tiny stack and the example builder, for a test that changes
    /// the store (the shared one changes under other tests, so it is not copied).
    static func make(home: String) throws {
        try requireStaticBinaries()
        let stack = try TinyStack.shared()
        try? FileManager.default.removeItem(atPath: home)
        _ = try sh("mkdir -p '\(home)' && cp -a '\(stack.store)' '\(home)/store'")
        let r = try cairnAt(["builder", "create", Self.name, "--config", packageRoot + "/examples/builder.toml"], home: home)
        guard r.status == 0 else { throw TestSupportError("cairn builder create: \(r.stderr)") }
    }

    nonisolated(unsafe) private static var instance: ExampleBuilder?
    private static let lock = NSLock()
    static func shared() throws -> ExampleBuilder {
        lock.lock()
        defer { lock.unlock() }
        if let instance { return instance }
        let made = try ExampleBuilder()
        instance = made
        return made
    }
}

func cairnAt(_ args: [String], home: String) throws -> RunResult {
    try run([cairnBinary] + args, environment: [
        "CAIRN_HOME": home, "CAIRN_LIFECYCLE_BIN": staticBin,
        "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    ])
}

func inspectJSON(_ image: String, home: String) throws -> [String: Any] {
    let r = try cairnAt(["inspect", "--format", "json", image], home: home)
    guard r.status == 0 else { throw TestSupportError(r.stderr) }
    return try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
}

func execConfig(_ object: [String: Any]) -> [String: Any] {
    ((object["config"] as? [String: Any])?["config"] as? [String: Any]) ?? [:]
}

@Test func stackCreateMakesAMatchedBuildAndRunImage() throws {
    let stack = try TinyStack.shared()
    let build = execConfig(try inspectJSON(TinyStack.buildImage, home: stack.home))
    let runImage = execConfig(try inspectJSON(TinyStack.runImage, home: stack.home))
    #expect(build["User"] as? String == "1000:1000")
    #expect(runImage["User"] as? String == "1001:1001", "the run user differs from the build user (platform.md SHOULD)")
    let env = build["Env"] as? [String] ?? []
    #expect(env.contains("CNB_USER_ID=1000") && env.contains("CNB_GROUP_ID=1000") && env.contains { $0.hasPrefix("PATH=") })
    let bl = build["Labels"] as? [String: String] ?? [:]
    let rl = runImage["Labels"] as? [String: String] ?? [:]
    #expect(bl["io.buildpacks.base.id"] == "io.cairn.stacks.tiny" && rl["io.buildpacks.base.id"] == bl["io.buildpacks.base.id"])
    #expect(bl["io.buildpacks.base.distro.name"] != nil && bl["io.buildpacks.base.distro.name"] == rl["io.buildpacks.base.distro.name"])
    #expect(rl["io.buildpacks.rebasable"] == "true")
    let skopeo = try run(["skopeo", "inspect", "oci:\(stack.store):\(TinyStack.runImage)"])
    #expect(skopeo.status == 0, "\(skopeo.stderr)")
    // The build image carries the /cnb layout and a home for the CNB user.
    let bundle = TempDir("stack-unpack")
    let u = try run(["umoci", "unpack", "--image", "\(stack.store):\(TinyStack.buildImage)", bundle.path + "/b"])
    #expect(u.status == 0, "\(u.stderr)")
    let home = try FileManager.default.attributesOfItem(atPath: bundle.path + "/b/rootfs/home/cnb")
    #expect((home[.ownerAccountID] as? NSNumber)?.intValue == 1000)
    #expect(FileManager.default.fileExists(atPath: bundle.path + "/b/rootfs/cnb/buildpacks"))
    #expect(FileManager.default.fileExists(atPath: bundle.path + "/b/rootfs/bin/sh"))
}

@Test func stackCreateRejectsBadInput() throws {
    let tmp = TempDir("stack-bad")
    let none = try cairnAt(["stack", "create", "x"], home: tmp.path)
    #expect(none.status != 0 && none.stderr.contains("exactly one of"))
    let missing = try cairnAt(["stack", "create", "x", "--rootfs", tmp.path + "/nope"], home: tmp.path)
    #expect(missing.status != 0 && missing.stderr.contains("does not exist"))
    let badPackage = try cairnAt(["stack", "create", "x", "--packages", "no-such-package-cairn"], home: tmp.path)
    #expect(badPackage.status != 0 && badPackage.stderr.contains("apt-get download"))
}

@Test func builderCreateWritesTheCNBLayoutAndPackLabels() throws {
    let b = try ExampleBuilder.shared()
    let labels = execConfig(try inspectJSON(ExampleBuilder.name, home: b.home))["Labels"] as? [String: String] ?? [:]
    let metadata = try JSONSerialization.jsonObject(with: Data((labels["io.buildpacks.builder.metadata"] ?? "{}").utf8)) as! [String: Any]
    let ids = (metadata["buildpacks"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    #expect(Set(ids) == ["examples/procfile", "examples/static-site"])
    let layers = try JSONSerialization.jsonObject(with: Data((labels["io.buildpacks.buildpack.layers"] ?? "{}").utf8)) as! [String: Any]
    #expect(((layers["examples/procfile"] as? [String: Any])?["0.1.0"] as? [String: Any])?["layerDiffID"] as? String != nil)
    // Platforms decide from these whether to run the extender: present even without extensions.
    #expect(labels["io.buildpacks.extension.layers"] == "{}")
    #expect(labels["io.buildpacks.buildpack.order-extensions"] == "[]")
    let bundle = TempDir("builder-unpack")
    let u = try run(["umoci", "unpack", "--image", "\(b.store):\(ExampleBuilder.name):latest", bundle.path + "/b"])
    #expect(u.status == 0, "\(u.stderr)")
    let root = bundle.path + "/b/rootfs"
    #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/cnb/lifecycle/detector") == "lifecycle")
    #expect(access(root + "/cnb/lifecycle/launcher", X_OK) == 0)
    #expect(access(root + "/cnb/buildpacks/examples_procfile/0.1.0/bin/build", X_OK) == 0)
    let order = try String(contentsOfFile: root + "/cnb/order.toml", encoding: .utf8)
    #expect(order.contains("examples/static-site") && order.contains("examples/procfile"))
    #expect(try String(contentsOfFile: root + "/cnb/run.toml", encoding: .utf8).contains("tiny/run:latest"))
    #expect(try String(contentsOfFile: root + "/cnb/build-config/env/CAIRN_EXAMPLE", encoding: .utf8) == "1")
    #expect(try String(contentsOfFile: root + "/cnb/lifecycle/lifecycle.toml", encoding: .utf8).contains("\"0.15\""))
}

@Test func builderCreateNamesTheProblemInBadConfig() throws {
    let b = try ExampleBuilder.shared()
    let tmp = TempDir("bad-builder")
    try writeFile(tmp.path + "/builder.toml", "[[buildpacks]]\nuri = \"nope\"\n[build]\nimage = \"tiny/build:latest\"\n[[run.images]]\nimage = \"tiny/run:latest\"\n")
    let r = try run([cairnBinary, "builder", "create", "x", "--config", tmp.path + "/builder.toml", "--store", b.store],
                    environment: ["CAIRN_LIFECYCLE_BIN": staticBin, "PATH": "/usr/bin:/bin"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("builder.toml") && r.stderr.contains("nope") && r.stderr.contains("buildpack.toml"), "\(r.stderr)")
}

/// Runs `image` with `cairn run` and PORT set, fetches `paths` over loopback (the first once it
/// answers, within 20 s), stops it (SIGTERM) and returns the bodies ("" for a path that failed).
func servedPages(_ image: String, home: String, paths: [String]) throws -> [String] {
    let port = try freePort()
    let server = Process()
    server.executableURL = URL(fileURLWithPath: cairnBinary)
    server.arguments = ["run", image, "--env", "PORT=\(port)"]
    server.environment = ["CAIRN_HOME": home, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
    server.standardOutput = FileHandle.nullDevice
    server.standardError = FileHandle.nullDevice
    try server.run()
    defer {
        if server.isRunning { kill(server.processIdentifier, SIGTERM) }
        server.waitUntilExit()
    }
    var bodies: [String] = []
    for (i, path) in paths.enumerated() {
        var body = ""
        for _ in 0..<(i == 0 ? 100 : 1) {
            let r = try run(["curl", "-fsS", "--max-time", "2", "http://127.0.0.1:\(port)\(path)"])
            if r.status == 0 { body = r.stdout; break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        bodies.append(body)
    }
    return bodies
}

/// A free TCP port on the loopback interface.
func freePort() throws -> Int {
    let r = try run(["python3", "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
    return Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))!
}

@Test func buildAndRunTheStaticSiteThenRebuildFromCache() throws {
    let b = try ExampleBuilder.shared()
    let started = Date()
    let first = try cairnAt(["build", "site", "--path", packageRoot + "/examples/apps/static-site", "--builder", ExampleBuilder.name], home: b.home)
    let cold = Date().timeIntervalSince(started)
    #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
    #expect(first.stdout.contains("===> DETECTING") && first.stdout.contains("===> EXPORTING"))
    #expect(first.stdout.contains("pass: examples/static-site"))

    let pages = try servedPages("site", home: b.home, paths: ["/", "/assets/site.css"])
    #expect(pages[0].contains("Hello from a Cairn-built image"), "served: \(pages[0])")
    #expect(pages[1].contains("font-family"))

    let again = Date()
    let second = try cairnAt(["build", "site", "--path", packageRoot + "/examples/apps/static-site", "--builder", ExampleBuilder.name], home: b.home)
    let warm = Date().timeIntervalSince(again)
    #expect(second.status == 0, "\(second.stderr)")
    #expect(second.stdout.contains("Restored layer 'examples/static-site:httpd' from the cache"), "\(second.stdout)")
    #expect(second.stdout.contains("Reusing layer 'app'"))
    // Timings are printed, not asserted: the machines are shared and noisy (bench/ measures speed).
    print("static-site build: cold \(String(format: "%.2f", cold)) s, warm \(String(format: "%.2f", warm)) s")
}

@Test func builderWithTwoGroupsChoosesTheSecondAndRunRunsAnotherProcessType() throws {
    let b = try ExampleBuilder.shared()
    let r = try cairnAt(["build", "hello", "--path", packageRoot + "/examples/apps/hello-procfile", "--builder", ExampleBuilder.name], home: b.home)
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    try #require(r.status == 0)
    #expect(r.stdout.contains("pass: examples/procfile"), "\(r.stdout)")
    let web = try cairnAt(["run", "hello", "--", "a", "b"], home: b.home)
    #expect(web.status == 0, "\(web.stdout)\(web.stderr)")
    #expect(web.stdout.contains("hello from procfile, exec.d ran") && web.stdout.contains("args: a b"), "\(web.stdout)")
    let env = try cairnAt(["run", "hello", "--process", "env"], home: b.home)
    #expect(env.stdout.contains("CAIRN_BUILT_BY=procfile"), "\(env.stdout)\(env.stderr)")
    let bad = try cairnAt(["run", "hello", "--process", "nope"], home: b.home)
    #expect(bad.status != 0 && bad.stderr.contains("no process type nope"))
    // The exit status of the process is cairn run's.
    let status = try run([cairnBinary, "run", "hello", "--process", "env"], environment: ["CAIRN_HOME": b.home, "PATH": "/usr/sbin:/usr/bin:/bin"])
    #expect(status.status == 0)
}

@Test func buildWithABuildpackFromADirectory() throws {
    let b = try ExampleBuilder.shared()
    let tmp = TempDir("bp-dir")
    _ = try sh("cp -a '\(packageRoot)/examples/buildpacks/procfile' '\(tmp.path)/bp' && sed -i 's/0.1.0/0.2.0/' '\(tmp.path)/bp/buildpack.toml'")
    let r = try cairnAt(["build", "hello-dir", "--path", packageRoot + "/examples/apps/hello-procfile", "--builder", ExampleBuilder.name,
                       "--buildpack", tmp.path + "/bp"], home: b.home)
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    #expect(r.stdout.contains("pass: examples/procfile@0.2.0"), "\(r.stdout)")
}

@Test func failedBuildsShowTheBuildpackOutputAndAOneLineSummary() throws {
    let b = try ExampleBuilder.shared()
    let empty = TempDir("empty-app")
    try writeFile(empty.path + "/README", "nothing to build\n")
    let none = try cairnAt(["build", "nothing", "--path", empty.path, "--builder", ExampleBuilder.name], home: b.home)
    #expect(none.status != 0)
    #expect(none.stderr.contains("no buildpack group passed detection"), "\(none.stderr)")

    let tmp = TempDir("failing-bp")
    try writeFile(tmp.path + "/bp/buildpack.toml", "api = \"0.10\"\n[buildpack]\nid = \"test/fails\"\nversion = \"1.0.0\"\n")
    try writeFile(tmp.path + "/bp/bin/detect", "#!/bin/sh\nexit 0\n", mode: 0o755)
    try writeFile(tmp.path + "/bp/bin/build", "#!/bin/sh\necho 'boom: the compiler is on fire'\nexit 1\n", mode: 0o755)
    let failed = try cairnAt(["build", "fails", "--path", empty.path, "--builder", ExampleBuilder.name, "--buildpack", tmp.path + "/bp"],
                           home: b.home)
    #expect(failed.status != 0)
    #expect(failed.stdout.contains("boom: the compiler is on fire"), "\(failed.stdout)")
    #expect(failed.stderr.contains("bin/build failed (exit 51)"), "\(failed.stderr)")

    let missing = try cairnAt(["build", "x", "--path", empty.path + "/nope", "--builder", ExampleBuilder.name], home: b.home)
    #expect(missing.status != 0 && missing.stderr.contains("does not exist"))
}

@Test func buildWithPublishPushesTheImageToARegistry() throws {
    let b = try ExampleBuilder.shared()
    let registry = try LocalRegistry()
    defer { registry.stop() }
    let image = "\(registry.host)/examples/site:1"
    let r = try cairnAt(["build", image, "--path", packageRoot + "/examples/apps/static-site", "--builder", ExampleBuilder.name,
                         "--publish", "--insecure-registry", registry.host, "--quiet"], home: b.home)
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    let local = try inspectJSON(image, home: b.home)["digest"] as? String
    let inspect = try run(["skopeo", "inspect", "--tls-verify=false", "docker://\(image)"])
    #expect(inspect.status == 0, "\(inspect.stderr)")
    let remote = try JSONSerialization.jsonObject(with: inspect.stdoutData) as? [String: Any]
    #expect(remote?["Digest"] as? String == local, "the registry holds the image built into the store")
}

@Test func runPropagatesTheExitStatusWithRuncAndWithBubblewrap() throws {
    let b = try ExampleBuilder.shared()
    let app = TempDir("exit-app")
    try writeFile(app.path + "/Procfile", "web: echo \"bye from $(id -u)\"; exit 3\n")
    let built = try cairnAt(["build", "exits", "--path", app.path, "--builder", ExampleBuilder.name, "--quiet", "--network", "none"], home: b.home)
    #expect(built.status == 0, "\(built.stdout)\(built.stderr)")
    for runtime in ["runc", "bwrap"] {
        let r = try cairnAt(["run", "exits", "--runtime", runtime], home: b.home)
        #expect(r.status == 3, "\(runtime): \(r.stdout)\(r.stderr)")
        // The run image's user (1001), not root.
        #expect(r.stdout.contains("bye from 1001"), "\(runtime): \(r.stdout)")
    }
}

@Test func buildSaysHowToInstallBubblewrapWhenItIsMissing() throws {
    let b = try ExampleBuilder.shared()
    let r = try run([cairnBinary, "build", "x", "--path", packageRoot + "/examples/apps/static-site", "--builder", ExampleBuilder.name],
                    environment: ["CAIRN_HOME": b.home, "PATH": "/nonexistent"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("bwrap is not installed") && r.stderr.contains("apt-get install -y bubblewrap"), "\(r.stderr)")
}

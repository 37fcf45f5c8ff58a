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
    // -q and --format json: stdout is the result alone (the lifecycle's output goes to stderr).
    #expect(built.stdout.split(separator: "\n").count == 1 && built.stdout.hasPrefix("sha256:"), "\(built.stdout)")
    let asJSON = try cairnAt(["build", "hello", "-p", app, "-B", ExampleBuilder.name, "--format", "json"], home: home)
    let buildResult = try JSONSerialization.jsonObject(with: asJSON.stdoutData) as? [String: Any]
    #expect(buildResult?["image"] as? String == "hello:latest" && (buildResult?["digest"] as? String ?? "").hasPrefix("sha256:")
            && asJSON.stderr.contains("===> EXPORTING"), "\(asJSON.stdout)")

    // inspect --format json carries the summary the table shows.
    let summary = try #require(try inspectJSON("hello", home: home)["buildpacksImage"] as? [String: Any])
    #expect((summary["buildpacks"] as? [[String: Any]])?.first?["id"] as? String == "examples/procfile", "\(summary)")
    #expect((summary["processes"] as? [[String: Any]])?.contains { $0["type"] as? String == "web" && $0["default"] as? Bool == true } == true, "\(summary)")
    #expect((summary["layers"] as? [[String: Any]])?.contains { $0["role"] as? String == "app" } == true, "\(summary)")

    // docker run's habits: --entrypoint, -i (stdin reaches the process only when asked for).
    let cairn = "CAIRN_HOME='\(home)' '\(cairnBinary)'"
    let shell = try sh("\(cairn) run hello --entrypoint /bin/sh -- -c 'echo from a shell in the app image'")
    #expect(shell.stdout.contains("from a shell in the app image"), "\(shell.stdout)\(shell.stderr)")
    let piped = try sh("echo hi | \(cairn) run hello -i --entrypoint /bin/sh -- -c 'read x; echo got:$x'")
    #expect(piped.stdout.contains("got:hi"), "\(piped.stdout)\(piped.stderr)")
    let closed = try sh("echo hi | \(cairn) run hello --entrypoint /bin/sh -- -c 'read x; echo got:$x'")
    #expect(closed.stdout.contains("got:") && !closed.stdout.contains("got:hi"), "\(closed.stdout)\(closed.stderr)")
    // No default process: the choices are listed (the launcher alone would exit 82).
    let worker = tmp.sub("worker")
    try writeFile(worker + "/project.toml", """
        [[io.buildpacks.group]]
        id = "tests/no-default"
          [io.buildpacks.group.script]
          api = "0.10"
          inline = "printf '[[processes]]\\ntype = \\"worker\\"\\ncommand = [\\"echo\\", \\"working\\"]\\n[[processes]]\\ntype = \\"clock\\"\\ncommand = [\\"echo\\", \\"tick\\"]\\n' > $CNB_LAYERS_DIR/launch.toml"
        """)
    #expect(try cairnAt(["build", "worker", "-p", worker, "-B", ExampleBuilder.name], home: home).status == 0)
    let noDefault = try cairnAt(["run", "worker"], home: home)
    #expect(noDefault.status == 1 && noDefault.stderr.contains("has no default process: choose one with --process (it has: clock, worker)"), "\(noDefault.stderr)")
    #expect(try cairnAt(["run", "worker", "--process", "worker"], home: home).stdout.contains("working"))

    // prune: what $CAIRN_HOME keeps for an image that is gone goes with it; the rest stays.
    let workerDigest = try #require(try inspectJSON("worker", home: home)["digest"] as? String)
    let hex = String(workerDigest.dropFirst("sha256:".count))
    #expect(FileManager.default.fileExists(atPath: home + "/rootfs/" + hex) && FileManager.default.fileExists(atPath: home + "/cache/worker"))
    try FileManager.default.createDirectory(atPath: home + "/builds/left-by-a-killed-build", withIntermediateDirectories: true)
    #expect(try cairnAt(["rmi", "worker"], home: home).status == 0)
    let pruned = try cairnAt(["prune"], home: home)
    #expect(pruned.status == 0 && pruned.stdout.contains("Removed 1 unpacked roots, 1 build caches, 1 kept workspaces, 1 work directories"), "\(pruned.stdout)\(pruned.stderr)")
    #expect(!FileManager.default.fileExists(atPath: home + "/rootfs/" + hex) && !FileManager.default.fileExists(atPath: home + "/cache/worker")
            && !FileManager.default.fileExists(atPath: home + "/workspaces/worker"))
    #expect(FileManager.default.fileExists(atPath: home + "/cache/hello"), "a cache of an image in the store stays")
    let all = try cairnAt(["prune", "--all-caches"], home: home)
    #expect(all.stdout.contains("0 unpacked roots, 1 build caches, 1 kept workspaces") && !FileManager.default.fileExists(atPath: home + "/cache/hello"), "\(all.stdout)")
    #expect(try cairnAt(["run", "hello"], home: home).status == 0, "what remains still runs")

    // --format is honoured or refused, never ignored; --store means the store path everywhere.
    let indexed = try JSONSerialization.jsonObject(with: cairnAt(["audit", "index", "--format", "json"], home: home).stdoutData) as? [[String: Any]]
    #expect(indexed?.first?["location"] as? String == "store" && (indexed?.first?["indexed"] as? Int ?? 0) >= 1, "\(String(describing: indexed))")
    let csv = try cairnAt(["audit", "index", "--format", "csv"], home: home)
    #expect(csv.status == 1 && csv.stderr.contains("--format csv: audit index prints a summary; use table or json"), "\(csv.stderr)")
    let other = try cairnAt(["audit", "index", "--store", tmp.sub("empty-store"), "--format", "json"], home: home)
    #expect(other.stdout.contains("\"images\" : 0"), "the store given, not the default one: \(other.stdout)\(other.stderr)")
    try writeFile(tmp.path + "/osv.json", #"{"id": "OSV-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "x"}, "versions": ["1"]}]}"#)
    let imported = try cairnAt(["audit", "advisories", "import", tmp.path + "/osv.json", "--format", "json"], home: home)
    #expect(imported.stdout.contains("\"imported\" : 1"), "\(imported.stdout)\(imported.stderr)")
    let plan = try cairnAt(["audit", "plan", "--format", "csv"], home: home)
    #expect(plan.status == 0 && plan.stdout.hasPrefix("location,image,digest,action,run-image,patches,reasons\n"), "\(plan.stdout)\(plan.stderr)")

    // Results scripts can read: one JSON object.
    let dir = tmp.sub("imported")
    try writeFile(dir + "/file", "x\n")
    let importResult = try JSONSerialization.jsonObject(with: cairnAt(["import", dir, "imported:1", "--format", "json"], home: home).stdoutData) as? [String: Any]
    #expect(importResult?["image"] as? String == "imported:1" && (importResult?["digest"] as? String ?? "").hasPrefix("sha256:"), "\(String(describing: importResult))")
    let made = try cairnAt(["builder", "create", "json-builder", "--config", packageRoot + "/examples/builder.toml", "--format", "json", "-q"], home: home)
    let builderResult = try JSONSerialization.jsonObject(with: made.stdoutData) as? [String: Any]
    #expect(builderResult?["image"] as? String == "json-builder:latest" && builderResult?["digest"] != nil, "\(made.stdout)\(made.stderr)")

    let version = try cairnAt(["--version"], home: home)
    #expect(version.stdout.hasPrefix("cairn ") && version.stdout.contains("Platform API 0.7-0.15, Buildpack API 0.7-0.12"), "\(version.stdout)")

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

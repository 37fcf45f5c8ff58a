import Foundation
import Testing
import TestSupport

/// pack build's flags through the real binary, with a legacy (schema 0.1) project.toml whose
/// inline buildpack reports what it was given.
@Test func packBuildFlagsReachTheLifecycle() throws {
    let tmp = TempDir("pack-flags")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    let app = tmp.sub("app"), data = tmp.sub("data")
    try writeFile(data + "/secret.txt", "s3cret-data\n")
    try writeFile(app + "/debug.log", "left out\n")
    try writeFile(app + "/keep.txt", "kept\n")
    try writeFile(app + "/project.toml", #"""
        [project]
        id = "tests.flags"
        version = "1.0"

        [build]
        exclude = ["*.log"]

        [[build.env]]
        name = "FROM_PROJECT"
        value = "p1"

        [[build.buildpacks]]
        id = "tests/flags"
          [build.buildpacks.script]
          api = "0.10"
          inline = """
        echo "ENV: FROM_PROJECT=$FROM_PROJECT FROM_FLAG=$FROM_FLAG FROM_HOST=$FROM_HOST FROM_FILE=$FROM_FILE"
        echo "USER: $(id -u):$(id -g) PWD: $(pwd) FILES: $(ls | tr '\n' ' ')"
        echo "VOLUME: $(cat /data/secret.txt)"
        touch /data/x 2>/dev/null && echo "VOLUME WRITABLE" || echo "VOLUME READ-ONLY"
        printf '[[processes]]\ntype = "web"\ncommand = ["echo", "web here"]\ndefault = true\n[[processes]]\ntype = "worker"\ncommand = ["echo", "worker here"]\n' > $CNB_LAYERS_DIR/launch.toml
        """
        """#)
    let envFile = tmp.path + "/app.env"
    try writeFile(envFile, "FROM_FILE=f1\n# a comment\n\nFROM_HOST\n")

    // No -B: the default builder from `cairn config default-builder`.
    #expect(try cairnAt(["config", "default-builder", ExampleBuilder.name], home: home).status == 0)
    #expect(try cairnAt(["config", "default-builder"], home: home).stdout == ExampleBuilder.name + "\n")
    let environment = ["CAIRN_HOME": home, "CAIRN_LIFECYCLE_BIN": staticBin, "FROM_HOST": "h1",
                       "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
    let built = try run([cairnBinary, "build", "flags", "-p", app, "-t", "flags:v2", "-t", "other/flags:v3", "-e", "FROM_FLAG=x1", "--env-file", envFile,
                         "-D", "worker", "-v", data + ":/data", "--uid", "1234", "--gid", "1235", "--workspace", "/srv/app",
                         "--creation-time", "1641013200"], environment: environment)
    let log = built.stdout + built.stderr
    #expect(built.status == 0, "\(log)")
    // project.toml 0.1 env < --env-file < --env; `--env NAME` and a bare NAME line take this environment's value.
    #expect(log.contains("ENV: FROM_PROJECT=p1 FROM_FLAG=x1 FROM_HOST=h1 FROM_FILE=f1"), "\(log)")
    // --uid/--gid, --workspace (nested, made on the fresh root), project.toml 0.1 exclude.
    #expect(log.contains("USER: 1234:1235 PWD: /srv/app FILES: keep.txt project.toml "), "\(log)")
    #expect(log.contains("VOLUME: s3cret-data") && log.contains("VOLUME READ-ONLY"), "\(log)")

    // -D: the default process; --creation-time: the config's created; -t: more names, one digest.
    #expect(try cairnAt(["run", "flags"], home: home).stdout.contains("worker here"))
    let config = try #require(try inspectJSON("flags", home: home)["config"] as? [String: Any])
    #expect(config["created"] as? String == "2022-01-01T05:00:00Z", "\(config)")
    let digests = try ["flags", "flags:v2", "other/flags:v3"].map { try inspectJSON($0, home: home)["digest"] as? String }
    #expect(digests[0] != nil && Set(digests).count == 1, "\(digests)")

    // A zip file as --path; --sbom-output-dir; --previous-image reuses another image's layers.
    let zip = tmp.path + "/site.zip"
    _ = try sh("cd '\(packageRoot)/examples/apps/static-site' && python3 -m zipfile -c '\(zip)' .")
    let sbomDir = tmp.path + "/sbom"
    let site = try cairnAt(["build", "site", "-p", zip, "--sbom-output-dir", sbomDir], home: home)
    #expect(site.status == 0 && site.stderr.contains("Unpacking \(zip) into the workspace"), "\(site.stdout)\(site.stderr)")
    let launchSBOM = sbomDir + "/launch/examples_static-site/sbom.cdx.json"
    #expect((try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: launchSBOM))) as? [String: Any])?["bomFormat"] as? String == "CycloneDX")
    let reused = try cairnAt(["build", "site2", "-p", zip, "--previous-image", "site"], home: home)
    #expect(reused.stdout.contains("Reusing layer 'examples/static-site:httpd'"), "\(reused.stdout)\(reused.stderr)")

    // Mistakes are said before any work, naming the flag and what was expected.
    let refused: [([String], String)] = [
        (["--previous-image", "nothere"], "previous image (--previous-image) nothere is not in the store"),
        (["--cache-image", "x"], "--cache-image x: not supported"),
        (["-v", "/nonexistent-dir:/x"], "--volume /nonexistent-dir:/x: /nonexistent-dir does not exist on this host"),
        (["-v", data + ":/cnb/x"], "/cnb belongs to the lifecycle"),
        (["-v", data], "expected HOST-PATH:TARGET-PATH[:ro|rw]"),
        (["-v", data + ":/usr/share/nothere"], "the builder has /usr but not /usr/share/nothere"),
        (["-t", "Bad"], "--tag: not a valid image name (Bad)"),
        (["--creation-time", "yesterday"], "expected now or a Unix time in seconds"),
        (["--uid", "0"], "buildpacks never run as root"),
        (["--env-file", tmp.path + "/none.env"], "--env-file \(tmp.path)/none.env: no readable file"),
    ]
    for (flags, message) in refused {
        let r = try cairnAt(["build", "site3", "-p", zip] + flags, home: home)
        #expect(r.status == 1 && r.stderr.contains(message), "\(flags): \(r.stderr)")
    }
    let listed = try cairnAt(["images"], home: home).stdout
    #expect(!listed.contains("site3"), "\(listed)")

    // builder inspect (the default builder) and system df.
    try Golden.expect("builder-inspect.txt", try cairnAt(["builder", "inspect"], home: home).stdout)
    let asJSON = try JSONSerialization.jsonObject(with: cairnAt(["builder", "inspect", ExampleBuilder.name, "--format", "json"], home: home).stdoutData) as? [String: Any]
    #expect((asJSON?["order"] as? [[[String: Any]]])?.count == 2 && (asJSON?["buildpacks"] as? [[String: Any]])?.count == 2, "\(String(describing: asJSON))")
    try Golden.expect("system-df.txt", try cairnAt(["system", "df"], home: home).stdout)
    let rows = (try JSONSerialization.jsonObject(with: cairnAt(["system", "df", "--format", "json"], home: home).stdoutData) as? [[String: Any]]) ?? []
    let images = rows.first { $0["type"] as? String == "images (store)" }
    #expect(images?["count"] as? Int == 8 && (images?["bytes"] as? Int ?? 0) > 1_000_000, "\(rows)")
    // flags, site, site2, and the empty one of site3 (its --previous-image build failed after the cache was made).
    #expect(rows.contains { $0["type"] as? String == "build caches" && $0["count"] as? Int == 4 }, "\(rows)")
    // Only flags was built from a directory (the sites from a zip file, unpacked afresh).
    #expect(rows.contains { $0["type"] as? String == "kept workspaces" && $0["count"] as? Int == 1 }, "\(rows)")
    // The registry blobs `audit index` keeps go with --all-caches only.
    try writeFile(home + "/audit-cache/blobs/sha256/00", "x")
    #expect(try cairnAt(["prune"], home: home).status == 0 && FileManager.default.fileExists(atPath: home + "/audit-cache"))
    #expect(try cairnAt(["prune", "--all-caches"], home: home).status == 0 && !FileManager.default.fileExists(atPath: home + "/audit-cache"))
    #expect(try cairnAt(["config", "default-builder", "--unset"], home: home).status == 0)
    let noBuilder = try cairnAt(["build", "site4", "-p", zip], home: home)
    #expect(noBuilder.status == 1 && noBuilder.stderr.contains("cairn config default-builder NAME"), "\(noBuilder.stderr)")
}

/// Ctrl-C during a build: the build stops, cairn exits 130 as a shell reports an interrupted
/// command, and no work directory is left behind.
@Test func anInterruptedBuildExits130() throws {
    let tmp = TempDir("interrupted")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    let app = tmp.sub("sleeper")
    try writeFile(app + "/project.toml", """
        [[io.buildpacks.group]]
        id = "tests/sleeper"
          [io.buildpacks.group.script]
          api = "0.10"
          inline = "echo sleeper-started; sleep 60"
        """)
    let logPath = tmp.path + "/build.log"
    FileManager.default.createFile(atPath: logPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: cairnBinary)
    process.arguments = ["build", "sleeper", "-p", app, "-B", ExampleBuilder.name]
    process.environment = ["CAIRN_HOME": home, "CAIRN_LIFECYCLE_BIN": staticBin, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
    let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
    process.standardOutput = log
    process.standardError = log
    try process.run()
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline, !((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").contains("sleeper-started") {
        Thread.sleep(forTimeInterval: 0.1)
    }
    let interrupted = Date()
    kill(process.processIdentifier, SIGINT)
    process.waitUntilExit()
    let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    #expect(output.contains("sleeper-started"), "\(output)")
    #expect(process.terminationStatus == 130, "\(process.terminationStatus): \(output)")
    #expect(Date().timeIntervalSince(interrupted) < 10)
    #expect(((try? FileManager.default.contentsOfDirectory(atPath: home + "/builds")) ?? []).isEmpty)
    #expect(try cairnAt(["inspect", "sleeper"], home: home).status == 1, "no image from an interrupted build")
}

/// project.toml's pre and post groups go around each group of the builder's order: the one that
/// passes detection (examples/procfile) runs between them.
@Test func projectPreAndPostGroupsWrapTheBuildersOrder() throws {
    let tmp = TempDir("pre-post")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    let app = tmp.sub("app")
    _ = try sh("cp -a '\(packageRoot)/examples/apps/hello-procfile/.' '\(app)/'")
    try writeFile(app + "/project.toml", """
        [_]
        schema-version = "0.2"
        [[io.buildpacks.pre.group]]
        id = "tests/pre"
          [io.buildpacks.pre.group.script]
          api = "0.10"
          inline = "echo PRE-RAN"
        [[io.buildpacks.post.group]]
        id = "tests/post"
          [io.buildpacks.post.group.script]
          api = "0.10"
          inline = "echo POST-RAN"
        """)
    let built = try cairnAt(["build", "wrapped", "-p", app, "-B", ExampleBuilder.name], home: home)
    let log = built.stdout + built.stderr
    #expect(built.status == 0, "\(log)")
    let pre = log.range(of: "PRE-RAN"), procfile = log.range(of: "Running build for buildpack examples/procfile"), post = log.range(of: "POST-RAN")
    #expect(pre != nil && procfile != nil && post != nil, "\(log)")
    if let pre, let procfile, let post { #expect(pre.lowerBound < procfile.lowerBound && procfile.lowerBound < post.lowerBound, "\(log)") }
    #expect(try cairnAt(["run", "wrapped"], home: home).stdout.contains("hello from"))
}

/// `inspect --remote` and `sbom --remote` read a registry image without pulling it into the
/// store (manifest, config, and for sbom the SBOM layer alone).
@Test(.requires("docker-registry")) func inspectAndSBOMOfARegistryImage() throws {
    let tmp = TempDir("remote-inspect")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    #expect(try cairnAt(["build", "site", "-p", packageRoot + "/examples/apps/static-site", "-B", ExampleBuilder.name], home: home).status == 0)
    let registry = try LocalRegistry()
    defer { registry.stop() }
    let remote = "\(registry.host)/team/site:1"
    let insecure = ["--insecure-registry", registry.host]
    try #require(try cairnAt(["push", "site", remote] + insecure, home: home).status == 0)
    let local = try inspectJSON("site", home: home)
    let inspected = try cairnAt(["inspect", "--remote", remote, "--format", "json"] + insecure, home: home)
    let object = try JSONSerialization.jsonObject(with: inspected.stdoutData) as? [String: Any]
    #expect(object?["digest"] as? String == local["digest"] as? String, "\(inspected.stdout)\(inspected.stderr)")
    #expect(((object?["buildpacksImage"] as? [String: Any])?["buildpacks"] as? [[String: Any]])?.first?["id"] as? String == "examples/static-site")
    let sbom = try cairnAt(["sbom", "--remote", remote, "--format", "json"] + insecure, home: home)
    let documents = try JSONSerialization.jsonObject(with: sbom.stdoutData) as? [[String: Any]]
    #expect(documents?.contains { $0["buildpack"] as? String == "examples_static-site" && $0["layer"] as? String == "httpd" } == true,
            "\(sbom.stdout)\(sbom.stderr)")
    // The store did not get the registry image; no scratch store is left.
    #expect(!(try cairnAt(["images"], home: home).stdout.contains("team/site")))
    #expect(((try? FileManager.default.contentsOfDirectory(atPath: home)) ?? []).allSatisfy { !$0.hasPrefix("remote-") })
    let missing = try cairnAt(["inspect", "--remote", "\(registry.host)/team/nothere:1"] + insecure, home: home)
    #expect(missing.status == 1 && missing.stderr.contains("team/nothere"), "\(missing.stderr)")
}

/// `cairn run -it IMAGE --entrypoint /bin/sh` on a terminal (util-linux `script` gives one): the
/// shell's stdin is a pseudo-terminal and what is typed reaches it.
@Test(.requires("script")) func runItGivesAShellOnATerminal() throws {
    let tmp = TempDir("run-it")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    #expect(try cairnAt(["build", "hello", "-p", packageRoot + "/examples/apps/hello-procfile", "-B", ExampleBuilder.name], home: home).status == 0)
    let command = "CAIRN_HOME='\(home)' CAIRN_LIFECYCLE_BIN='\(staticBin)' '\(cairnBinary)' run -it hello --entrypoint /bin/sh"
    let r = try sh("printf 'tty; echo inside-$((6*7)); exit\\n' | timeout 60 script -qec \"\(command)\" /dev/null")
    #expect(r.stdout.contains("/dev/pts/") && r.stdout.contains("inside-42"), "\(r.stdout)\(r.stderr)")
}

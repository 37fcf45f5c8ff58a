import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// End to end through `lifecycle creator`: the example Procfile buildpack on the tiny busybox
/// stack, exported to a Cairn store, an OCI layout and a registry, checked by skopeo and umoci,
/// run by runc.
final class CreatorRun {
    let tmp = TempDir("creator")
    var app: String { tmp.path + "/app" }
    var layers: String { tmp.path + "/layers" }
    var cache: String { tmp.path + "/cache" }
    var buildpacks: String { tmp.path + "/buildpacks" }
    var order: String { tmp.path + "/order.toml" }
    var platform: String { tmp.path + "/platform" }

    init(app source: String = packageRoot + "/examples/apps/hello-procfile") throws {
        try requireStaticBinaries()
        chmod(tmp.path, 0o755)
        try populate(from: source)
    }

    /// Copies the app and buildpack in (again), owned by the CNB user.
    func populate(from source: String = packageRoot + "/examples/apps/hello-procfile") throws {
        _ = try sh("""
            rm -rf '\(app)' '\(buildpacks)' '\(cache)' && cp -a '\(source)' '\(app)' \
            && mkdir -p '\(buildpacks)/examples_procfile' '\(platform)' '\(cache)' \
            && cp -a '\(packageRoot)/examples/buildpacks/procfile' '\(buildpacks)/examples_procfile/0.1.0' \
            && chmod 777 '\(app)' && (chown -R \(cnbUser):\(cnbUser) '\(app)' '\(cache)' 2>/dev/null || true)
            """)
        try writeFile(order, "[[order]]\n[[order.group]]\nid = \"examples/procfile\"\nversion = \"0.1.0\"\n")
    }

    /// A buildpack of this test (Buildpack API 0.10) that always detects and builds with `build`.
    func addBuildpack(_ id: String, toml extra: String = "", build: String) throws {
        let bp = buildpacks + "/" + id.replacingOccurrences(of: "/", with: "_") + "/1.0.0"
        try writeFile(bp + "/buildpack.toml", "api = \"0.10\"\n[buildpack]\nid = \"\(id)\"\nversion = \"1.0.0\"\n" + extra)
        try writeFile(bp + "/bin/detect", "#!/bin/sh\nexit 0\n", mode: 0o755)
        try writeFile(bp + "/bin/build", build, mode: 0o755)
    }

    /// Runs the creator with a fresh layers directory (as a platform would).
    func create(_ target: [String], image: String, env: [String: String] = [:]) throws -> RunResult {
        _ = try sh("rm -rf '\(layers)' && mkdir -p '\(layers)' && chmod 777 '\(layers)'")
        var environment = ["PATH": "/usr/bin:/bin", "CNB_PLATFORM_API": "0.15", "CNB_USER_ID": "\(cnbUser)", "CNB_GROUP_ID": "\(cnbUser)"]
        environment.merge(env) { _, new in new }
        return try run([lifecycleBinary, "creator", "-app", app, "-layers", layers, "-buildpacks", buildpacks, "-order", order,
                        "-platform", platform, "-cache-dir", cache, "-launcher", staticBin + "/launcher",
                        "-run-image", TinyStack.runImage] + target + [image], environment: environment)
    }
}

@Test func creatorExportsAnOCILayoutThatSkopeoUmociAndRuncAccept() throws {
    let stack = try TinyStack.shared()
    let c = try CreatorRun()
    let layout = c.tmp.path + "/layout"
    // The run image at its mapped path (platform.md, Map an image reference to a path).
    let runPath = layout + "/docker.io/tiny/run/latest"
    try FileManager.default.createDirectory(atPath: runPath, withIntermediateDirectories: true)
    let copy = try run(["skopeo", "copy", "oci:\(stack.store):\(TinyStack.runImage)", "oci:\(runPath):latest"])
    #expect(copy.status == 0, "\(copy.stderr)")

    let r = try c.create(["-layout", "-layout-dir", layout], image: "example.com/hello:1", env: ["CNB_EXPERIMENTAL_MODE": "silent"])
    #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
    let appPath = layout + "/example.com/hello/1"
    let inspect = try run(["skopeo", "inspect", "oci:\(appPath)"])
    #expect(inspect.status == 0, "\(inspect.stderr)")
    #expect(inspect.stdout.contains("io.buildpacks.lifecycle.metadata"))
    let validate = try run(["python3", fixturesRoot + "/validate_oci_layout.py", fixturesRoot + "/oci-schema", appPath])
    #expect(validate.status == 0, "\(validate.stdout)\(validate.stderr)")

    // The default process (web) and the launch environment: env.launch, exec.d.
    let web = try runOCI(appPath, tag: "example.com/hello:1")
    #expect(web.status == 0, "\(web.stderr)")
    #expect(web.stdout.contains("hello from procfile, exec.d ran"), "\(web.stdout)\(web.stderr)")
    // Another process type, through its /cnb/process link.
    let other = try runOCI(appPath, tag: "example.com/hello:1", args: ["/cnb/process/env"])
    #expect(other.stdout.contains("CAIRN_BUILT_BY=procfile") && other.stdout.contains("CAIRN_EXECD=ran"), "\(other.stdout)\(other.stderr)")
    #expect(!other.stdout.contains("CNB_LAYERS_DIR="), "CNB_LAYERS_DIR must not reach the process")
    // profile.d is sourced for a shell (non-direct) command.
    let shell = try runOCI(appPath, tag: "example.com/hello:1", args: ["/cnb/lifecycle/launcher", "echo profile=$CAIRN_PROFILE"])
    #expect(shell.stdout.contains("profile=sourced"), "\(shell.stdout)\(shell.stderr)")
}

/// Unpacks an OCI layout image with umoci and runs it with runc, as configured or with its
/// process arguments replaced by `args`.
func runOCI(_ layout: String, tag: String, args: [String]? = nil) throws -> RunResult {
    let bundle = TempDir("bundle")
    let unpack = try run(["umoci", "unpack", "--image", "\(layout):\(tag)", bundle.path + "/b"])
    guard unpack.status == 0 else { throw TestSupportError("umoci unpack: \(unpack.stderr)") }
    let configPath = bundle.path + "/b/config.json"
    var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as! [String: Any]
    var process = config["process"] as! [String: Any]
    process["terminal"] = false
    if let args { process["args"] = args }
    config["process"] = process
    try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
    let id = "cairn-test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
    defer { _ = try? run(["runc", "delete", "--force", id]) }
    return try run(["runc", "run", "--bundle", bundle.path + "/b", id])
}

/// The image's layers' diffIDs, from `cairn inspect --format json`.
func diffIDs(store: String, _ image: String) throws -> [String] {
    let r = try run([cairnBinary, "inspect", "--store", store, "--format", "json", image])
    guard r.status == 0 else { throw TestSupportError(r.stderr) }
    let object = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
    let config = object["config"] as! [String: Any]
    return (config["rootfs"] as! [String: Any])["diff_ids"] as! [String]
}

func digest(store: String, _ image: String) throws -> String {
    let r = try run([cairnBinary, "inspect", "--store", store, "--format", "json", image])
    let object = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
    return object["digest"] as! String
}

@Test func rebuildWithoutChangesReusesEveryLayerAndOneChangedFileChangesOnlyTheAppLayer() throws {
    let stack = try TinyStack.shared()
    let c = try CreatorRun()
    let store = c.tmp.path + "/store"
    _ = try sh("cp -a '\(stack.store)' '\(store)'")
    let first = try c.create(["-store", store], image: "hello")
    #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
    let d1 = try digest(store: store, "hello")
    let layers1 = try diffIDs(store: store, "hello")

    let second = try c.create(["-store", store], image: "hello")
    #expect(second.status == 0, "\(second.stderr)")
    #expect(try digest(store: store, "hello") == d1, "an unchanged rebuild must give the same image")
    #expect(second.stdout.contains("Reusing layer 'app'") && second.stdout.contains("unchanged since the last export"), "\(second.stdout)")
    #expect(second.stdout.contains("Reusing layer 'examples/procfile:procfile'"))
    #expect(!second.stdout.contains("Adding layer"), "\(second.stdout)")
    let report = try String(contentsOfFile: c.layers + "/report.toml", encoding: .utf8)
    #expect(report.contains(d1))

    try writeFile(c.app + "/Procfile", "web: echo changed\n")
    let third = try c.create(["-store", store], image: "hello")
    #expect(third.status == 0, "\(third.stderr)")
    let layers3 = try diffIDs(store: store, "hello")
    #expect(layers1.count == layers3.count)
    let changed = zip(layers1, layers3).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
    // The Procfile is app content and also becomes launch.toml's processes: the app layer and
    // the launch config layer (metadata.toml) change; run image, buildpack and launcher layers do not.
    let runLayers = try diffIDs(store: stack.store, TinyStack.runImage).count
    #expect(changed == [runLayers + 1, runLayers + 3], "changed layers: \(changed) of \(layers3.count)")
    #expect(third.stdout.contains("Adding layer 'app'"))
}

@Test func sameInputsGiveTheSameDigestFromDifferentCopiesAtDifferentTimes() throws {
    let stack = try TinyStack.shared()
    // Platforms build at fixed paths (/workspace, /layers); the second build is a fresh copy of
    // everything at the same paths, made later (new mtimes, inodes, empty cache and store).
    let c = try CreatorRun()
    var digests: [String] = []
    for round in 0..<2 {
        if round == 1 {
            Thread.sleep(forTimeInterval: 1.1)
            try c.populate()
        }
        let store = c.tmp.path + "/store"
        _ = try sh("rm -rf '\(store)' && cp -a '\(stack.store)' '\(store)'")
        let r = try c.create(["-store", store], image: "hello", env: ["SOURCE_DATE_EPOCH": "1700000000"])
        #expect(r.status == 0, "\(r.stderr)")
        digests.append(try digest(store: store, "hello"))
        let inspect = try run([cairnBinary, "inspect", "--store", store, "--format", "json", "hello"])
        #expect(inspect.stdout.contains("2023-11-14T22:13:20Z"), "created must follow SOURCE_DATE_EPOCH")
    }
    #expect(digests[0] == digests[1])
}

@Test func creatorExportsToARegistry() async throws {
    let stack = try TinyStack.shared()
    let registry = try LocalRegistry(proxy: true)
    defer { registry.stop() }
    let push = try run([cairnBinary, "push", "--store", stack.store, "--insecure-registry", registry.host, TinyStack.runImage,
                        "\(registry.host)/tiny/run:latest"])
    #expect(push.status == 0, "\(push.stderr)")
    _ = try registry.proxy("/__reset")
    let c = try CreatorRun()
    let image = "\(registry.host)/hello:1"
    let r = try run([lifecycleBinary, "creator", "-app", c.app, "-layers", c.layers, "-buildpacks", c.buildpacks, "-order", c.order,
                     "-platform", c.platform, "-launcher", staticBin + "/launcher", "-run-image", "\(registry.host)/tiny/run:latest",
                     "-insecure-registry", registry.host, image],
                    environment: ["PATH": "/usr/bin:/bin", "CNB_PLATFORM_API": "0.15", "CNB_USER_ID": "\(cnbUser)", "CNB_GROUP_ID": "\(cnbUser)",
                                  "HOME": c.tmp.path])
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    let inspect = try run(["skopeo", "inspect", "--tls-verify=false", "docker://\(image)"])
    #expect(inspect.status == 0, "\(inspect.stderr)")
    #expect(inspect.stdout.contains("io.buildpacks.build.metadata"))
    let report = try String(contentsOfFile: c.layers + "/report.toml", encoding: .utf8)
    #expect(report.contains("manifest-size"))
    // The run image's layers are mounted from its repository, never downloaded or uploaded:
    // only configs travel (the run image's base layer alone is over 2 MB).
    let stats = try registry.proxy("/__stats")
    #expect((stats["downloadedBlobBytes"] ?? 0) < 100_000, "\(stats)")
    let raw = try run(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://\(image)"])
    let manifest = try JSONSerialization.jsonObject(with: raw.stdoutData) as! [String: Any]
    let sizes = (manifest["layers"] as! [[String: Any]]).map { $0["size"] as! Int }
    let runLayers = try diffIDs(store: stack.store, TinyStack.runImage).count
    let newBytes = sizes.dropFirst(runLayers).reduce(0, +) + ((manifest["config"] as! [String: Any])["size"] as! Int)
    #expect((stats["uploadedBlobBytes"] ?? .max) <= newBytes, "uploaded \(stats), new layers + config \(newBytes)")
}

@Test func exporterRejectsAnUnknownProcessTypeAndDigestTags() throws {
    let stack = try TinyStack.shared()
    let c = try CreatorRun()
    let store = c.tmp.path + "/store"
    _ = try sh("cp -a '\(stack.store)' '\(store)'")
    let bad = try c.create(["-store", store, "-process-type", "nope"], image: "hello")
    #expect(bad.status == 62, "\(bad.stderr)")
    #expect(bad.stderr.contains("process type nope"))
}

@Test func layoutNeedsExperimentalModeAndDaemonIsRefused() throws {
    let c = try CreatorRun()
    let layout = try c.create(["-layout", "-layout-dir", c.tmp.path + "/layout"], image: "example.com/hello:1")
    #expect(layout.status == 30, "\(layout.stderr)")
    #expect(layout.stderr.contains("CNB_EXPERIMENTAL_MODE"))
    let daemon = try c.create(["-daemon"], image: "hello")
    #expect(daemon.status == 30)
    #expect(daemon.stderr.contains("Docker daemon"))
}

@Test func exporterWritesTheCacheAndRestorerBringsCachedLayersBack() throws {
    let stack = try TinyStack.shared()
    let c = try CreatorRun(app: packageRoot + "/examples/apps/static-site")
    _ = try sh("mkdir -p '\(c.buildpacks)/examples_static-site' && cp -a '\(packageRoot)/examples/buildpacks/static-site' '\(c.buildpacks)/examples_static-site/0.1.0'")
    try writeFile(c.order, "[[order]]\n[[order.group]]\nid = \"examples/static-site\"\nversion = \"0.1.0\"\n")
    let store = c.tmp.path + "/store"
    _ = try sh("cp -a '\(stack.store)' '\(store)'")
    let first = try c.create(["-store", store, "-parallel"], image: "site")
    #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
    // The cache directory is an OCI layout with the cache image.
    let inspect = try run(["skopeo", "inspect", "oci:\(c.cache):cairn-cache:latest"])
    #expect(inspect.status == 0, "\(inspect.stderr)")
    #expect(inspect.stdout.contains("io.buildpacks.lifecycle.cache.metadata"))
    let second = try c.create(["-store", store], image: "site")
    #expect(second.status == 0, "\(second.stderr)")
    #expect(second.stdout.contains("Restored layer 'examples/static-site:httpd' from the cache"), "\(second.stdout)")
    #expect(second.stdout.contains("httpd layer SBOM restored from the last build"), "\(second.stdout)")
    // The image has the SBOM layer: launch SBOM and the launch layer's SBOM.
    let label = try run([cairnBinary, "inspect", "--store", store, "--format", "json", "site"])
    #expect(label.stdout.contains("\\\"sbom\\\""), "lifecycle metadata names the SBOM layer")
    let bundle = TempDir("sbom-unpack")
    let u = try run(["umoci", "unpack", "--image", "\(store):site:latest", bundle.path + "/b"])
    #expect(u.status == 0, "\(u.stderr)")
    let sbomDir = bundle.path + "/b/rootfs" + c.layers + "/sbom/launch/examples_static-site"
    #expect(FileManager.default.fileExists(atPath: sbomDir + "/sbom.cdx.json"))
    #expect(FileManager.default.fileExists(atPath: sbomDir + "/httpd/sbom.cdx.json"))
    // Slices: public/assets is its own layer before the rest of the app.
    #expect(second.stdout.contains("'slice-1'"))
    // -skip-restore: nothing restored.
    let skipped = try c.create(["-store", store, "-skip-restore"], image: "site")
    #expect(skipped.status == 0)
    #expect(!skipped.stdout.contains("Restored layer"), "\(skipped.stdout)")
}

@Test func aLaunchLayerKeptByMetadataOnlyIsTakenFromThePreviousImage() throws {
    let stack = try TinyStack.shared()
    let c = try CreatorRun()
    // A buildpack that makes its launch layer once, then keeps it by appending `[types]` and
    // `launch = true` to the restored <layer>.toml, as buildpack.md says to reuse a layer (the
    // restored file has no [types] table, so the appended one is valid TOML).
    try c.addBuildpack("test/keeper", toml: "sbom-formats = [\"application/vnd.cyclonedx+json\"]\n", build: """
        #!/bin/sh
        set -e
        if [ -f "$CNB_LAYERS_DIR/kept.sbom.cdx.json" ]; then echo "kept SBOM restored"; fi
        if [ -f "$CNB_LAYERS_DIR/kept.toml" ]; then
          printf '[types]\\nlaunch = true\\n' >> "$CNB_LAYERS_DIR/kept.toml"; echo "keeping layer kept"; exit 0
        fi
        echo '{"bomFormat": "CycloneDX", "specVersion": "1.4", "version": 1}' > "$CNB_LAYERS_DIR/kept.sbom.cdx.json"
        mkdir -p "$CNB_LAYERS_DIR/kept/bin"
        printf '#!/bin/sh\\necho kept tool\\n' > "$CNB_LAYERS_DIR/kept/bin/kept-tool"
        chmod +x "$CNB_LAYERS_DIR/kept/bin/kept-tool"
        printf '[types]\\nlaunch = true\\n[metadata]\\nversion = "1"\\n' > "$CNB_LAYERS_DIR/kept.toml"
        """)
    try writeFile(c.order, "[[order]]\n[[order.group]]\nid = \"test/keeper\"\nversion = \"1.0.0\"\n[[order.group]]\nid = \"examples/procfile\"\nversion = \"0.1.0\"\n")
    let store = c.tmp.path + "/store"
    _ = try sh("cp -a '\(stack.store)' '\(store)'")
    let first = try c.create(["-store", store], image: "kept")
    #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
    let before = try diffIDs(store: store, "kept")
    let second = try c.create(["-store", store], image: "kept")
    #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
    #expect(second.stdout.contains("Restored metadata of layer 'test/keeper:kept'"), "\(second.stdout)")
    #expect(second.stdout.contains("keeping layer kept"))
    #expect(second.stdout.contains("kept SBOM restored"), "a launch layer's SBOM comes back from the previous image")
    #expect(second.stdout.contains("Reusing layer 'test/keeper:kept'") && second.stdout.contains("from the previous image"), "\(second.stdout)")
    #expect(try diffIDs(store: store, "kept") == before)
    // The label still records the layer with its metadata.
    let r = try run([cairnBinary, "inspect", "--store", store, "--format", "json", "kept"])
    #expect(r.stdout.contains("test/keeper") && r.stdout.contains("kept"))
}

@Test func aCacheImageInTheRegistryCarriesCachedLayersToTheNextBuild() throws {
    let stack = try TinyStack.shared()
    let registry = try LocalRegistry()
    defer { registry.stop() }
    let push = try run([cairnBinary, "push", "--store", stack.store, "--insecure-registry", registry.host, TinyStack.runImage,
                        "\(registry.host)/tiny/run:latest"])
    #expect(push.status == 0, "\(push.stderr)")
    let c = try CreatorRun(app: packageRoot + "/examples/apps/static-site")
    _ = try sh("mkdir -p '\(c.buildpacks)/examples_static-site' && cp -a '\(packageRoot)/examples/buildpacks/static-site' '\(c.buildpacks)/examples_static-site/0.1.0'")
    try writeFile(c.order, "[[order]]\n[[order.group]]\nid = \"examples/static-site\"\nversion = \"0.1.0\"\n")
    func create() throws -> RunResult {
        _ = try sh("rm -rf '\(c.layers)' && mkdir -p '\(c.layers)' && chmod 777 '\(c.layers)'")
        return try run([lifecycleBinary, "creator", "-app", c.app, "-layers", c.layers, "-buildpacks", c.buildpacks, "-order", c.order,
                        "-platform", c.platform, "-launcher", staticBin + "/launcher", "-run-image", "\(registry.host)/tiny/run:latest",
                        "-cache-image", "\(registry.host)/site-cache:1", "-insecure-registry", registry.host, "\(registry.host)/site:1"],
                       environment: ["PATH": "/usr/bin:/bin", "CNB_PLATFORM_API": "0.15", "CNB_USER_ID": "\(cnbUser)",
                                     "CNB_GROUP_ID": "\(cnbUser)", "HOME": c.tmp.path])
    }
    let first = try create()
    #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
    let cache = try run(["skopeo", "inspect", "--tls-verify=false", "docker://\(registry.host)/site-cache:1"])
    #expect(cache.status == 0, "\(cache.stderr)")
    #expect(cache.stdout.contains("io.buildpacks.lifecycle.cache.metadata"))
    let second = try create()
    #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
    #expect(second.stdout.contains("Restored layer 'examples/static-site:httpd' from the cache"), "\(second.stdout)")
}

/// An unknown -process-type fails the export (60-69) before any blob reaches the target.
@Test func unknownProcessTypeFailsBeforeAnythingIsWritten() throws {
    let stack = try TinyStack.shared()
    let c = try CreatorRun()
    let store = c.tmp.path + "/store"
    _ = try sh("cp -a '\(stack.store)' '\(store)'")
    let blobs = { try FileManager.default.contentsOfDirectory(atPath: store + "/blobs/sha256").sorted() }
    let before = try blobs()
    let r = try c.create(["-store", store, "-process-type=no-such-type"], image: "hello")
    #expect((60...69).contains(r.status), "\(r.status) \(r.stderr)")
    #expect(r.stderr.contains("process type no-such-type is not one of the buildpack-provided processes"), "\(r.stderr)")
    #expect(try blobs() == before, "the export wrote blobs before failing")
}

/// As the reference does (kpack relies on it): a cache image is written even when no layer is
/// cached.
@Test func aCacheImageIsWrittenEvenWhenNothingIsCached() throws {
    let stack = try TinyStack.shared()
    let registry = try LocalRegistry()
    defer { registry.stop() }
    let push = try run([cairnBinary, "push", "--store", stack.store, "--insecure-registry", registry.host, TinyStack.runImage,
                        "\(registry.host)/tiny/run:latest"])
    try #require(push.status == 0, "\(push.stderr)")
    let c = try CreatorRun()   // the Procfile buildpack caches no layer
    let r = try run([lifecycleBinary, "creator", "-app=\(c.app)", "-layers=\(c.layers)", "-buildpacks=\(c.buildpacks)", "-order=\(c.order)",
                     "-platform=\(c.platform)", "-launcher=\(staticBin)/launcher", "-run-image=\(registry.host)/tiny/run",
                     "-cache-image=\(registry.host)/hello-cache", "-insecure-registry=\(registry.host)", "\(registry.host)/hello"],
                    environment: ["PATH": "/usr/bin:/bin", "CNB_PLATFORM_API": "0.9", "CNB_USER_ID": "\(cnbUser)", "CNB_GROUP_ID": "\(cnbUser)",
                                  "HOME": c.tmp.path])
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    let cache = try run(["skopeo", "inspect", "--config", "--tls-verify=false", "docker://\(registry.host)/hello-cache:latest"])
    #expect(cache.status == 0, "\(cache.stderr)")
    #expect(cache.stdout.contains("io.buildpacks.lifecycle.cache.metadata"), "\(cache.stdout)")
}

@Test func layersWrittenConcurrentlyGiveTheSameImageAndLogAsOneAtATime() throws {
    let stack = try TinyStack.shared()
    let c = try CreatorRun()
    // Four launch layers of different sizes and an app slice: with one writer they are written
    // one after another, with four at once (issue 18); the image must not differ by one byte.
    func multiLayerBuildpack() throws {
        try c.addBuildpack("test/multi", build: """
            #!/bin/sh
            set -e
            for i in 1 2 3 4; do
              mkdir -p "$CNB_LAYERS_DIR/l$i/small"
              seq 1 $((i * 60000)) > "$CNB_LAYERS_DIR/l$i/numbers"
              for j in $(seq 1 $((i * 50))); do echo "$i-$j" > "$CNB_LAYERS_DIR/l$i/small/f$j"; done
              printf '[types]\\nlaunch = true\\n' > "$CNB_LAYERS_DIR/l$i.toml"
            done
            printf '[[slices]]\\npaths = ["Procfile"]\\n' > "$CNB_LAYERS_DIR/launch.toml"
            """)
        try writeFile(c.order, "[[order]]\n[[order.group]]\nid = \"test/multi\"\nversion = \"1.0.0\"\n[[order.group]]\nid = \"examples/procfile\"\nversion = \"0.1.0\"\n")
    }
    var digests: [String] = []
    var logs: [[String]] = []
    for writers in ["1", "4"] {
        try c.populate()
        try multiLayerBuildpack()
        let store = c.tmp.path + "/store-\(writers)"
        _ = try sh("cp -a '\(stack.store)' '\(store)'")
        let r = try c.create(["-store", store], image: "multi", env: ["SOURCE_DATE_EPOCH": "1700000000", "CAIRN_LAYER_WRITERS": writers])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        digests.append(try digest(store: store, "multi"))
        logs.append(r.stdout.split(separator: "\n").map(String.init).filter { $0.contains("Adding layer") || $0.contains("Reusing layer") })
        #expect(try run([cairnBinary, "store", "verify", "--store", store]).status == 0)
    }
    #expect(digests[0] == digests[1], "one writer and four writers must give the same image")
    #expect(logs[0] == logs[1], "the log names the layers in the same order: \(logs)")
    let added = logs[1].filter { $0.contains("Adding layer") }.map { $0.components(separatedBy: "'")[1] }
    #expect(added.prefix(7) == ["test/multi:l1", "test/multi:l2", "test/multi:l3", "test/multi:l4", "examples/procfile:procfile", "slice-1", "app"],
            "\(added)")
}

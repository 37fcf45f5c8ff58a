import Buildpacks
import Foundation
import OCI
import Testing
import TestSupport

/// `lifecycle rebaser -layer-patches`: an app built with tests/runtime 1.0.0 gets the `runtime`
/// layer of an app built with 1.0.1, in place, with labels, SBOM, history and report saying so.
final class PatchFixture {
    let creator: CreatorRun
    let store: String
    var patchesFile: String { creator.tmp.path + "/patches.json" }
    var reportFile: String { creator.tmp.path + "/report.toml" }

    init() throws {
        let stack = try TinyStack.shared()
        creator = try CreatorRun()
        store = creator.tmp.path + "/store"
        _ = try sh("cp -a '\(stack.store)' '\(store)'")
        try build(version: "1.0.0", image: "app")
        try build(version: "1.0.1", image: "patches/runtime:1.0.1")
    }

    /// Builds the hello app with tests/runtime at `version` into the store.
    func build(version: String, image: String) throws {
        let dir = creator.buildpacks + "/tests_runtime/" + version
        _ = try sh("""
            rm -rf '\(creator.buildpacks)' && mkdir -p '\(creator.buildpacks)/tests_runtime' \
            && cp -a '\(fixturesRoot)/buildpacks/runtime' '\(dir)' \
            && sed -i 's/^version = "1.0.0"/version = "\(version)"/' '\(dir)/buildpack.toml'
            """)
        try writeFile(creator.order, "[[order]]\n[[order.group]]\nid = \"tests/runtime\"\nversion = \"\(version)\"\n")
        let r = try creator.create(["-store", store], image: image)
        guard r.status == 0 else { throw TestSupportError("creator: \(r.stdout)\(r.stderr)") }
    }

    func patches(_ json: String) throws { try writeFile(patchesFile, json) }

    func rebase(_ args: [String], experimental: String? = "warn") throws -> RunResult {
        var env = ["PATH": "/usr/bin:/bin", "CNB_PLATFORM_API": "0.15"]
        env["CNB_EXPERIMENTAL_MODE"] = experimental
        return try run([lifecycleBinary, "rebaser", "-store", store, "-report", reportFile] + args, environment: env)
    }

    func config(_ image: String) throws -> ImageConfig { try ImageStore(root: store).resolve(image).config }

    func label(_ image: String) throws -> LifecycleMetadataLabel {
        let raw = try #require(try config(image).config?.labels?[CNBLabel.lifecycleMetadata])
        return try JSONDecoder().decode(LifecycleMetadataLabel.self, from: Data(raw.utf8))
    }

    func layerSHA(_ image: String, _ layer: String) throws -> String {
        try #require(try label(image).buildpack("tests/runtime")?.layers[layer]?.sha)
    }

    /// The text of the image's SBOM document for the runtime layer.
    func runtimeSBOM(_ image: String) throws -> String {
        let s = try ImageStore(root: store)
        let stored = try s.resolve(image)
        let sha = try #require(try label(image).sbom?.sha)
        let diffID = try #require(Digest(sha))
        let layer = try #require(stored.layer(diffID: diffID))
        let r = try run(["tar", "-xzOf", s.blobPath(layer.descriptor.digest), "--wildcards", "*/tests_runtime/runtime/sbom.cdx.json"])
        return r.stdout
    }
}

@Test func aLayerPatchReplacesTheLayerInPlaceAndTheMetadataSaysSo() throws {
    let f = try PatchFixture()
    let before = try diffIDs(store: f.store, "app")
    let oldRuntime = try f.layerSHA("app", "runtime")
    let newRuntime = try f.layerSHA("patches/runtime:1.0.1", "runtime")
    let oldSBOM = try #require(try f.label("app").sbom?.sha)
    #expect(oldRuntime != newRuntime)
    try f.patches("""
        {"patches": [{"buildpack": "tests/*", "layer": "run*", "data": {"artifact.version": "1.0.*", "build-number": 42},
                      "patch-image": "patches/runtime:1.0.1"}]}
        """)
    let r = try f.rebase(["-layer-patches", f.patchesFile, "app"])
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    #expect(r.stdout.contains("runtime") && r.stderr.contains("experimental"), "\(r.stdout)\(r.stderr)")

    // In place: the same number of layers, only the runtime and SBOM layers changed.
    let after = try diffIDs(store: f.store, "app")
    #expect(after.count == before.count)
    let newSBOM = try #require(try f.label("app").sbom?.sha)
    for (old, new) in zip(before, after) {
        if old == oldRuntime { #expect(new == newRuntime) } else if old == oldSBOM { #expect(new == newSBOM && new != old) } else {
            #expect(new == old, "a layer not patched changed")
        }
    }
    let label = try f.label("app")
    let bp = try #require(label.buildpack("tests/runtime"))
    #expect(bp.version == "1.0.1")
    #expect(bp.layers["runtime"]?.sha == newRuntime)
    #expect(bp.layers["runtime"]?.data?["version"] == .string("1.0.1"))
    #expect(bp.layers["tools"]?.sha == (try f.layerSHA("patches/runtime:1.0.1", "tools")) || bp.layers["tools"] != nil)
    let build = try #require(try f.config("app").config?.labels?[CNBLabel.buildMetadata])
    #expect(build.contains("\"version\":\"1.0.1\""), "\(build)")
    #expect(try f.runtimeSBOM("app").contains("tinyruntime\",\"version\":\"1.0.1\""))
    let history = try #require(try f.config("app").history)
    #expect(history.contains { $0.comment?.contains("patched: tests/runtime:runtime \(oldRuntime) -> \(newRuntime)") == true })
    let report = try String(contentsOfFile: f.reportFile, encoding: .utf8)
    #expect(report.contains(newRuntime) && report.contains(oldRuntime), "\(report)")

    // It runs, with the new layer's files; the file 1.0.1 deleted is gone.
    let web = try runOCI(f.store, tag: "app:latest")
    #expect(web.status == 0, "\(web.stderr)")
    #expect(web.stdout.contains("runtime 1.0.1"), "\(web.stdout)")
    #expect(!web.stdout.contains("old-only"), "\(web.stdout)")

    // Patching again changes nothing: already at the patch image's layer.
    let digestBefore = try digest(store: f.store, "app")
    let again = try f.rebase(["-layer-patches", f.patchesFile, "app"])
    #expect(again.status == 0, "\(again.stderr)")
    #expect(try diffIDs(store: f.store, "app") == after)
    _ = digestBefore
}

@Test func layerPatchesAreAllOrNothingAndSelectorsDecide() throws {
    let f = try PatchFixture()
    let before = try digest(store: f.store, "app")
    // A data selector that does not match: nothing to do, same layers.
    try f.patches(#"{"patches": [{"buildpack": "tests/runtime", "layer": "runtime", "data": {"artifact.version": "2.*"}, "patch-image": "patches/runtime:1.0.1"}]}"#)
    var r = try f.rebase(["-layer-patches", f.patchesFile, "app"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try f.layerSHA("app", "runtime") != (try f.layerSHA("patches/runtime:1.0.1", "runtime")))

    // One good patch and one whose patch image lacks the layer: nothing is applied.
    let unchanged = try digest(store: f.store, "app")
    try f.patches("""
        {"patches": [{"buildpack": "tests/runtime", "layer": "runtime", "patch-image": "patches/runtime:1.0.1"},
                     {"buildpack": "tests/runtime", "layer": "runtime", "patch-image": "tiny/run:latest"}]}
        """)
    r = try f.rebase(["-layer-patches", f.patchesFile, "app"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("patches[1]") && r.stderr.contains("tiny/run:latest"), "\(r.stderr)")
    #expect(try digest(store: f.store, "app") == unchanged)

    // A layer its buildpack did not mark patchable is refused unless forced.
    try f.patches(#"{"patches": [{"buildpack": "tests/runtime", "layer": "tools", "patch-image": "patches/runtime:1.0.1"}]}"#)
    r = try f.rebase(["-layer-patches", f.patchesFile, "app"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("io.buildpacks.rebasable"), "\(r.stderr)")
    #expect(try digest(store: f.store, "app") == unchanged)
    // Without the experimental mode the flag is refused.
    r = try f.rebase(["-layer-patches", f.patchesFile, "app"], experimental: nil)
    #expect(r.status != 0 && r.stderr.contains("CNB_EXPERIMENTAL_MODE"), "\(r.stderr)")

    // A patch image for another platform is refused.
    let s = try ImageStore(root: f.store)
    let patchImage = try s.resolve("patches/runtime:1.0.1")
    _ = try s.beginWriteSession().commitImage(base: patchImage, layers: [], history: [], created: patchImage.config.created ?? "",
                          reference: "patches/runtime:other-arch") { $0.architecture = "s390x" }
    try f.patches(#"{"patches": [{"buildpack": "tests/runtime", "layer": "runtime", "patch-image": "patches/runtime:other-arch"}]}"#)
    r = try f.rebase(["-layer-patches", f.patchesFile, "app"])
    #expect(r.status != 0 && r.stderr.contains("is for linux/s390x"), "\(r.stderr)")
    #expect(try digest(store: f.store, "app") == unchanged)

    // No image answers: the error names every reference tried. A mirror that answers is used.
    try f.patches(#"{"patches": [{"buildpack": "tests/runtime", "layer": "runtime", "patch-image": "missing/runtime:9", "patch-image.mirrors": ["missing/mirror:9"]}]}"#)
    r = try f.rebase(["-layer-patches", f.patchesFile, "app"])
    #expect(r.status != 0 && r.stderr.contains("missing/runtime:9: not found") && r.stderr.contains("missing/mirror:9: not found"), "\(r.stderr)")
    try f.patches(#"{"patches": [{"buildpack": "tests/runtime", "layer": "runtime", "patch-image": "missing/runtime:9", "patch-image.mirrors": ["patches/runtime:1.0.1"]}]}"#)
    r = try f.rebase(["-layer-patches", f.patchesFile, "app"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try f.layerSHA("app", "runtime") == (try f.layerSHA("patches/runtime:1.0.1", "runtime")))
    _ = before
}

@Test func theLauncherIsPatchedOnlyWhenItsSHAIsListed() throws {
    let f = try PatchFixture()
    // A patch image whose launcher differs: the app re-exported with another launcher binary.
    let other = f.creator.tmp.path + "/launcher-2"
    _ = try sh("cp '\(staticBin)/launcher' '\(other)' && printf 'patched launcher' >> '\(other)'")
    _ = try sh("rm -rf '\(f.creator.layers)' && mkdir -p '\(f.creator.layers)' && chmod 777 '\(f.creator.layers)'")
    let r0 = try run([lifecycleBinary, "creator", "-app", f.creator.app, "-layers", f.creator.layers, "-buildpacks", f.creator.buildpacks,
                      "-order", f.creator.order, "-platform", f.creator.platform, "-cache-dir", f.creator.cache, "-launcher", other,
                      "-run-image", TinyStack.runImage, "-store", f.store, "patches/launcher:2"],
                     environment: ["PATH": "/usr/bin:/bin", "CNB_PLATFORM_API": "0.15", "CNB_USER_ID": "\(cnbUser)", "CNB_GROUP_ID": "\(cnbUser)"])
    #expect(r0.status == 0, "\(r0.stderr)")
    let oldLauncher = try #require(try f.label("app").launcher?.sha)
    let newLauncher = try #require(try f.label("patches/launcher:2").launcher?.sha)
    #expect(oldLauncher != newLauncher)

    try f.patches(#"{"patches": [], "launcher": {"must-match-sha": ["sha256:0000000000000000000000000000000000000000000000000000000000000000"], "patch-image": "patches/launcher:2"}}"#)
    var r = try f.rebase(["-layer-patches", f.patchesFile, "app"])
    #expect(r.status != 0 && r.stderr.contains("must-match-sha"), "\(r.stderr)")
    #expect(try f.label("app").launcher?.sha == oldLauncher)

    try f.patches(#"{"patches": [], "launcher": {"must-match-sha": ["\#(oldLauncher)"], "patch-image": "patches/launcher:2"}}"#)
    r = try f.rebase(["-layer-patches", f.patchesFile, "app"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try f.label("app").launcher?.sha == newLauncher)
    #expect(try diffIDs(store: f.store, "app").contains(newLauncher))
    #expect(!(try diffIDs(store: f.store, "app").contains(oldLauncher)))
}

@Test func cairnRebaseWithLayerPatchesPlansAppliesAndTheSBOMFollows() throws {
    let f = try PatchFixture()
    try f.patches(#"{"patches": [{"buildpack": "tests/runtime", "layer": "runtime", "patch-image": "patches/runtime:1.0.1"}, {"buildpack": "none/*", "layer": "*", "patch-image": "patches/runtime:1.0.1"}]}"#)
    let before = try digest(store: f.store, "app")
    let dry = try run([cairnBinary, "rebase", "--store", f.store, "--layer-patches", f.patchesFile, "--dry-run", "app"])
    #expect(dry.status == 0, "\(dry.stderr)")
    #expect(dry.stdout.contains("app: would patch tests/runtime:runtime") && dry.stdout.contains("(1.0.0 -> 1.0.1)"), "\(dry.stdout)")
    #expect(dry.stdout.contains("skipped patches[1] (none/*:*): no layer of app matches"), "\(dry.stdout)")
    #expect(try digest(store: f.store, "app") == before, "--dry-run changes nothing")

    let r = try run([cairnBinary, "rebase", "--store", f.store, "--layer-patches", f.patchesFile, "--format", "json", "app"])
    #expect(r.status == 0, "\(r.stderr)")
    let outcomes = try #require(try JSONSerialization.jsonObject(with: r.stdoutData) as? [[String: Any]])
    let patched = try #require(outcomes.first?["patched"] as? [[String: Any]])
    #expect(patched.first?["layer"] as? String == "runtime")
    #expect(patched.first?["new-diff-id"] as? String == (try f.layerSHA("patches/runtime:1.0.1", "runtime")))
    #expect(outcomes.first?["digest"] as? String == (try digest(store: f.store, "app")))

    // cairn sbom reads the patched SBOM layer: the new version, not the old.
    let sbom = try run([cairnBinary, "sbom", "--store", f.store, "--format", "json", "app"])
    #expect(sbom.status == 0, "\(sbom.stderr)")
    #expect(sbom.stdout.contains("1.0.1") && !sbom.stdout.contains("tinyruntime@1.0.0"), "\(sbom.stdout)")
}

/// `cairn rebase --remote --layer-patches`: the patch layer is mounted from the patch image's
/// repository; no layer bytes travel but the small SBOM layers.
@Test(.requires("docker-registry")) func aRegistryPatchMountsThePatchLayer() throws {
    let f = try PatchFixture()
    let registry = try LocalRegistry(proxy: true)
    defer { registry.stop() }
    let host = registry.host
    for (local, remote) in [("app", "\(host)/apps/app:1"), ("patches/runtime:1.0.1", "\(host)/patches/runtime:1.0.1"),
                            (TinyStack.runImage, "\(host)/tiny/run:1")] {
        let push = try run([cairnBinary, "push", "--store", f.store, local, remote, "--insecure-registry", host])
        try #require(push.status == 0, "\(push.stderr)")
    }
    try f.patches(#"{"patches": [{"buildpack": "tests/runtime", "layer": "runtime", "patch-image": "\#(host)/patches/runtime:1.0.1"}]}"#)
    _ = try registry.proxy("/__reset")
    let r = try run([cairnBinary, "rebase", "--store", f.store, "--remote", "--force", "--insecure-registry", host,
                     "--run-image", "\(host)/tiny/run:1", "--layer-patches", f.patchesFile, "\(host)/apps/app:1"])
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    #expect(r.stdout.contains("patched tests/runtime:runtime"), "\(r.stdout)")
    let stats = try registry.proxy("/__stats")
    // The runtime layer holds 1 MiB of random bytes: had it been copied, these would exceed it.
    #expect((stats["uploadedBlobBytes"] ?? .max) < 100_000 && (stats["downloadedBlobBytes"] ?? .max) < 100_000, "\(stats)")
    let config = try run(["skopeo", "inspect", "--config", "--tls-verify=false", "docker://\(host)/apps/app:1"])
    #expect(config.status == 0, "\(config.stderr)")
    let newRuntime = try f.layerSHA("patches/runtime:1.0.1", "runtime")
    #expect(config.stdout.contains(newRuntime), "the pushed config has the patched layer")
    let copy = try run(["skopeo", "copy", "--src-tls-verify=false", "docker://\(host)/apps/app:1", "oci:\(f.creator.tmp.path)/pulled:app"])
    #expect(copy.status == 0, "every blob the manifest names is in the registry: \(copy.stderr)")
}

@Test func aMinimalPatchImageIsSmallAndApplies() throws {
    let f = try PatchFixture()
    let r = try run([cairnBinary, "patch", "extract", "--store", f.store, "patches/runtime:1.0.1", "--buildpack", "tests/runtime",
                     "--layer", "runtime", "patches/runtime-min:1.0.1"])
    #expect(r.status == 0, "\(r.stderr)")
    let minimal = try diffIDs(store: f.store, "patches/runtime-min:1.0.1")
    #expect(minimal.count == 2, "the layer and its SBOM: \(minimal)")
    #expect(minimal.first == (try f.layerSHA("patches/runtime:1.0.1", "runtime")))
    #expect(try f.label("patches/runtime-min:1.0.1").buildpack("tests/runtime")?.layers.keys.sorted() == ["runtime"])
    let missing = try run([cairnBinary, "patch", "extract", "--store", f.store, "patches/runtime:1.0.1", "--buildpack", "tests/runtime",
                           "--layer", "nope", "x:1"])
    #expect(missing.status != 0 && missing.stderr.contains("no layer nope of buildpack tests/runtime"), "\(missing.stderr)")

    try f.patches(#"{"patches": [{"buildpack": "tests/runtime", "layer": "runtime", "patch-image": "patches/runtime-min:1.0.1"}]}"#)
    let patched = try f.rebase(["-layer-patches", f.patchesFile, "app"])
    #expect(patched.status == 0, "\(patched.stderr)")
    #expect(try f.layerSHA("app", "runtime") == minimal.first)
    #expect(try f.label("app").buildpack("tests/runtime")?.version == "1.0.1")
    #expect(try f.runtimeSBOM("app").contains("\"version\":\"1.0.1\""))
}

/// `cairn rebase` compares the dpkg package lists of the old and new run image: it prints what
/// changes and refuses a rebase that removes a package unless forced.
@Test func aRunImageThatRemovesAPackageIsRefusedUnlessForced() throws {
    let f = try PatchFixture()
    let status = f.creator.tmp.path + "/status-root"
    try FileManager.default.createDirectory(atPath: status + "/var/lib/dpkg", withIntermediateDirectories: true)
    try writeFile(status + "/var/lib/dpkg/status", """
        Package: busybox-static
        Status: install ok installed
        Version: 99.0-cairn

        Package: newpkg
        Status: install ok installed
        Version: 1.0

        """)
    let imported = try run([cairnBinary, "import", "--store", f.store, status, TinyStack.runImage, "--base", TinyStack.runImage])
    try #require(imported.status == 0, "\(imported.stderr)")
    let before = try digest(store: f.store, "app")
    let refused = try run([cairnBinary, "rebase", "--store", f.store, "app"])
    #expect(refused.status != 0)
    #expect(refused.stderr.contains("removes package(s) bash-static") && refused.stderr.contains("--force"), "\(refused.stderr)")
    #expect(refused.stdout.contains("app: run image packages: + newpkg 1.0"), "\(refused.stdout)")
    #expect(refused.stdout.contains("app: run image packages: ~ busybox-static "), "\(refused.stdout)")
    #expect(refused.stdout.contains("app: run image packages: - bash-static"), "\(refused.stdout)")
    #expect(try digest(store: f.store, "app") == before)
    let forced = try run([cairnBinary, "rebase", "--store", f.store, "--force", "app"])
    #expect(forced.status == 0, "\(forced.stderr)")
    #expect(try digest(store: f.store, "app") != before)
}

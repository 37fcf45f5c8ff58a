import Buildpacks
import Foundation
import OCI
import Testing
import TestSupport

/// `lifecycle rebaser` on images the creator exported to a Cairn store: the run image layers are
/// swapped, the rest is kept, and the result runs under runc.
final class RebaseFixture {
    let creator: CreatorRun
    let store: String
    let runLayers: Int
    let appLayers: [String]

    init() throws {
        let stack = try TinyStack.shared()
        creator = try CreatorRun()
        store = creator.tmp.path + "/store"
        _ = try sh("cp -a '\(stack.store)' '\(store)'")
        let r = try creator.create(["-store", store], image: "hello")
        guard r.status == 0 else { throw TestSupportError("creator: \(r.stdout)\(r.stderr)") }
        runLayers = try diffIDs(store: store, TinyStack.runImage).count
        appLayers = Array(try diffIDs(store: store, "hello").dropFirst(runLayers))
    }

    /// A new run image: the old one plus a layer with /etc/cairn-patch, tagged `reference`.
    func patchedRunImage(_ reference: String, text: String = "patched") throws {
        let dir = creator.tmp.path + "/patch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: true)
        try writeFile(dir + "/etc/cairn-patch", text + "\n")
        let r = try run([cairnBinary, "import", "--store", store, dir, reference, "--base", TinyStack.runImage])
        guard r.status == 0 else { throw TestSupportError("cairn import: \(r.stderr)") }
    }

    /// Rewrites an image's config in the store (same layers).
    func retag(_ from: String, as reference: String, _ change: (inout ImageConfig) -> Void) throws {
        let s = try ImageStore(root: store)
        let image = try s.resolve(from)
        _ = try s.beginWriteSession().commitImage(base: image, layers: [], history: [], created: image.config.created ?? "", reference: reference, configure: change)
    }

    func rebase(_ args: [String]) throws -> RunResult {
        try run([lifecycleBinary, "rebaser", "-store", store, "-report", creator.tmp.path + "/report.toml"] + args,
                environment: ["PATH": "/usr/bin:/bin", "CNB_PLATFORM_API": "0.15"])
    }

    func label(_ image: String) throws -> LifecycleMetadataLabel {
        let config = try ImageStore(root: store).resolve(image).config
        let raw = try #require(config.config?.labels?[CNBLabel.lifecycleMetadata])
        return try JSONDecoder().decode(LifecycleMetadataLabel.self, from: Data(raw.utf8))
    }
}

@Test func rebaseOntoAnUpdatedRunImageKeepsTheAppLayersAndRuns() throws {
    let f = try RebaseFixture()
    let before = try digest(store: f.store, "hello")
    // The patched run image under the name the app image records (the usual CVE flow).
    try f.patchedRunImage(TinyStack.runImage)
    let newRun = try diffIDs(store: f.store, TinyStack.runImage)
    #expect(newRun.count == f.runLayers + 1)

    let r = try f.rebase(["hello", "hello-rebased"])
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    let after = try diffIDs(store: f.store, "hello-rebased")
    #expect(after == newRun + f.appLayers, "the run image layers are replaced, the app's are kept in order")
    #expect(try digest(store: f.store, "hello") == (try digest(store: f.store, "hello-rebased")), "every <image> gets the same image")
    #expect(try digest(store: f.store, "hello") != before)

    let label = try f.label("hello")
    #expect(label.runImage?.topLayer == newRun.last)
    #expect(label.runImage?.image == TinyStack.runImage)
    let runDigest = try digest(store: f.store, TinyStack.runImage)
    #expect(label.runImage?.reference?.hasSuffix("@" + runDigest) == true, "\(String(describing: label.runImage?.reference))")
    let report = try String(contentsOfFile: f.creator.tmp.path + "/report.toml", encoding: .utf8)
    #expect(report.contains(try digest(store: f.store, "hello")), "\(report)")

    // The history still lines up with the layers (one non-empty entry per layer).
    let config = try ImageStore(root: f.store).resolve("hello").config
    #expect(config.history?.filter { $0.emptyLayer != true }.count == after.count)

    // skopeo accepts it; runc runs it: the app's process, on the patched base.
    #expect(try run(["skopeo", "inspect", "oci:\(f.store):hello:latest"]).status == 0)
    let web = try runOCI(f.store, tag: "hello:latest")
    #expect(web.stdout.contains("hello from procfile"), "\(web.stdout)\(web.stderr)")
    let patched = try runOCI(f.store, tag: "hello:latest", args: ["/cnb/lifecycle/launcher", "cat /etc/cairn-patch"])
    #expect(patched.stdout.contains("patched"), "\(patched.stdout)\(patched.stderr)")

    // Rebasing again onto the same run image changes nothing.
    let again = try f.rebase(["hello"])
    #expect(again.status == 0, "\(again.stderr)")
    #expect(try diffIDs(store: f.store, "hello") == after)
}

@Test func aRunImageTheAppDoesNotNameNeedsForceAndThenBecomesItsRunImage() throws {
    let f = try RebaseFixture()
    try f.patchedRunImage("other/run:2")
    let refused = try f.rebase(["-run-image", "other/run:2", "hello"])
    #expect(refused.status == 70, "\(refused.stdout)\(refused.stderr)")
    #expect(refused.stderr.contains("is not the app image's run image") && refused.stderr.contains("-force"), "\(refused.stderr)")
    #expect(try diffIDs(store: f.store, "hello") == (try diffIDs(store: f.store, TinyStack.runImage)) + f.appLayers, "a refused rebase changes nothing")

    let forced = try f.rebase(["-force", "-run-image", "other/run:2", "hello"])
    #expect(forced.status == 0, "\(forced.stderr)")
    let label = try f.label("hello")
    #expect(label.runImage?.image == "other/run:2" && label.runImage?.mirrors == nil)
    #expect(try diffIDs(store: f.store, "hello") == (try diffIDs(store: f.store, "other/run:2")) + f.appLayers)
}

/// A digest reference into the app's own run image repository is one version of its run image,
/// pinned (as a fix campaign names the version its plan chose): no -force needed. Another
/// repository pinned by digest still needs it.
@Test func aPinnedVersionOfTheAppsOwnRunImageNeedsNoForce() throws {
    let f = try RebaseFixture()
    try f.patchedRunImage(TinyStack.runImage)
    try f.patchedRunImage("other/run:3")
    let store = try ImageStore(root: f.store)
    let pinned = try ImageReference(parsing: TinyStack.runImage).familiarName + "@" + store.resolve(TinyStack.runImage).digest.description
    let other = "other/run@" + (try store.resolve("other/run:3").digest.description)
    let refused = try f.rebase(["-run-image", other, "hello"])
    #expect(refused.status == 70 && refused.stderr.contains("is not the app image's run image"), "\(refused.stderr)")
    let r = try f.rebase(["-run-image", pinned, "hello"])
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    #expect(try diffIDs(store: f.store, "hello") == (try diffIDs(store: f.store, TinyStack.runImage)) + f.appLayers)
}

@Test func anotherTargetOrUnrebasableImageIsRefusedWithoutForce() throws {
    let f = try RebaseFixture()
    try f.patchedRunImage("arm/run:1")
    try f.retag("arm/run:1", as: TinyStack.runImage) { $0.architecture = "arm64"; $0.variant = "v8" }
    let refused = try f.rebase(["hello"])
    #expect(refused.status == 70, "\(refused.stderr)")
    #expect(refused.stderr.contains("linux/arm64/v8"), "\(refused.stderr)")
    let forced = try f.rebase(["-force", "hello"])
    #expect(forced.status == 0, "\(forced.stderr)")
    let config = try ImageStore(root: f.store).resolve("hello").config
    #expect(config.architecture == "arm64" && config.variant == "v8", "forced: target data from the new run image")

    try f.retag("hello", as: "locked") { $0.config?.labels?[CNBLabel.rebasable] = "false" }
    let locked = try f.rebase(["locked"])
    #expect(locked.status == 70 && locked.stderr.contains("io.buildpacks.rebasable=false"), "\(locked.stderr)")
    #expect(try f.rebase(["-force", "locked"]).status == 0)
}

@Test func rebaserInputErrorsAreNamed() throws {
    let f = try RebaseFixture()
    let none = try f.rebase([])
    #expect(none.status != 0 && none.stderr.contains("at least one image"), "\(none.stderr)")
    let byDigest = try f.rebase(["hello@sha256:" + String(repeating: "a", count: 64)])
    #expect(byDigest.status != 0 && byDigest.stderr.contains("must be a tag reference"), "\(byDigest.stderr)")
    let missing = try f.rebase(["nothing-here"])
    #expect(missing.status == 70 && missing.stderr.contains("app image nothing-here not found"), "\(missing.stderr)")
    // An image not made by a lifecycle has no run image metadata.
    let plain = try f.rebase([TinyStack.runImage])
    #expect(plain.status == 70 && plain.stderr.contains("has no io.buildpacks.lifecycle.metadata label"), "\(plain.stderr)")
}

@Test func rebaseInARegistryMovesOnlyConfigsAndManifests() async throws {
    let stack = try TinyStack.shared()
    let registry = try LocalRegistry(proxy: true)
    defer { registry.stop() }
    let host = registry.host
    let c = try CreatorRun()
    let local = c.tmp.path + "/store"
    _ = try sh("cp -a '\(stack.store)' '\(local)'")
    #expect(try run([cairnBinary, "push", "--store", local, "--insecure-registry", host, TinyStack.runImage, "\(host)/tiny/run:latest"]).status == 0)
    let image = "\(host)/hello:1"
    let env = ["PATH": "/usr/bin:/bin", "CNB_PLATFORM_API": "0.15", "CNB_USER_ID": "\(cnbUser)", "CNB_GROUP_ID": "\(cnbUser)", "HOME": c.tmp.path]
    let built = try run([lifecycleBinary, "creator", "-app", c.app, "-layers", c.layers, "-buildpacks", c.buildpacks, "-order", c.order,
                         "-platform", c.platform, "-launcher", staticBin + "/launcher", "-run-image", "\(host)/tiny/run:latest",
                         "-insecure-registry", host, image], environment: env)
    #expect(built.status == 0, "\(built.stdout)\(built.stderr)")
    let oldDiffIDs = try remoteDiffIDs(image, host: host)

    // The patched run image is pushed under the name the app image records.
    let dir = c.tmp.path + "/patch"
    try FileManager.default.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: true)
    try writeFile(dir + "/etc/cairn-patch", "patched\n")
    #expect(try run([cairnBinary, "import", "--store", local, dir, "tiny/run:2", "--base", TinyStack.runImage]).status == 0)
    #expect(try run([cairnBinary, "push", "--store", local, "--insecure-registry", host, "tiny/run:2", "\(host)/tiny/run:latest"]).status == 0)
    let newRun = try remoteDiffIDs("\(host)/tiny/run:latest", host: host)
    let runLayers = try diffIDs(store: stack.store, TinyStack.runImage).count

    _ = try registry.proxy("/__reset")
    let r = try run([lifecycleBinary, "rebaser", "-insecure-registry", host, "-report", c.tmp.path + "/rebase.toml", image], environment: env)
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    #expect(try remoteDiffIDs(image, host: host) == newRun + oldDiffIDs.dropFirst(runLayers))
    let stats = try registry.proxy("/__stats")
    #expect((stats["downloadedBlobBytes"] ?? .max) < 100_000, "layers are not downloaded: \(stats)")
    #expect((stats["uploadedBlobBytes"] ?? .max) < 100_000, "layers are not uploaded: \(stats)")
    #expect(stats["manifestPuts"] == 1, "one manifest, put by tag (the registry then has it by digest too): \(stats)")
}

/// The diffIDs of an image in a registry, read by skopeo.
func remoteDiffIDs(_ image: String, host: String) throws -> [String] {
    let r = try run(["skopeo", "inspect", "--config", "--tls-verify=false", "docker://\(image)"])
    guard r.status == 0 else { throw TestSupportError("skopeo inspect --config \(image): \(r.stderr)") }
    let object = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
    return (object["rootfs"] as! [String: Any])["diff_ids"] as! [String]
}

@Test func anImageFromAnOlderPlatformNamesItsRunImageInStackRunImage() throws {
    let f = try RebaseFixture()
    try f.patchedRunImage("legacy/run:1")
    // As exported for Platform API < 0.12: the run image's name only under stack.runImage.
    try f.retag("hello", as: "old-app") { config in
        let raw = config.config?.labels?[CNBLabel.lifecycleMetadata] ?? "{}"
        var object = (try? JSONSerialization.jsonObject(with: Data(raw.utf8))) as? [String: Any] ?? [:]
        var runImage = object["runImage"] as? [String: Any] ?? [:]
        runImage["image"] = nil
        runImage["mirrors"] = nil
        object["runImage"] = runImage
        object["stack"] = ["runImage": ["image": "legacy/run:1"]]
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        config.config?.labels?[CNBLabel.lifecycleMetadata] = String(decoding: data, as: UTF8.self)
    }
    let r = try f.rebase(["old-app"])
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    #expect(try diffIDs(store: f.store, "old-app") == (try diffIDs(store: f.store, "legacy/run:1")) + f.appLayers)
    // Keys this lifecycle does not model are kept.
    let raw = try ImageStore(root: f.store).resolve("old-app").config.config?.labels?[CNBLabel.lifecycleMetadata] ?? ""
    #expect(raw.contains("\"stack\":{\"runImage\":{\"image\":\"legacy/run:1\"}}"), "\(raw)")
}

@Test func rebaseInOCILayouts() throws {
    let f = try RebaseFixture()
    try f.patchedRunImage("tiny/run:2")
    // The app and the new run image at their mapped layout paths (platform.md): Docker Hub under
    // index.docker.io as the reference lifecycle maps it, and under docker.io (read as well).
    let layouts = f.creator.tmp.path + "/layouts"
    for (ref, path) in [("hello:latest", "index.docker.io/library/hello/latest"), ("tiny/run:2", "docker.io/tiny/run/2")] {
        try FileManager.default.createDirectory(atPath: layouts + "/" + path, withIntermediateDirectories: true)
        let copy = try run(["skopeo", "copy", "oci:\(f.store):\(ref)", "oci:\(layouts)/\(path):latest"])
        try #require(copy.status == 0, "\(copy.stderr)")
    }
    let r = try run([lifecycleBinary, "rebaser", "-layout", "-layout-dir", layouts, "-force", "-run-image", "tiny/run:2",
                     "-report", f.creator.tmp.path + "/report.toml", "hello", "example.com/rebased:1"],
                    environment: ["PATH": "/usr/bin:/bin", "CNB_PLATFORM_API": "0.15", "CNB_EXPERIMENTAL_MODE": "silent"])
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    for path in ["index.docker.io/library/hello/latest", "example.com/rebased/1"] {
        let inspect = try run(["skopeo", "inspect", "--config", "oci:\(layouts)/\(path)"])
        #expect(inspect.status == 0, "\(path): \(inspect.stderr)")
        let object = try JSONSerialization.jsonObject(with: inspect.stdoutData) as! [String: Any]
        let ids = (object["rootfs"] as! [String: Any])["diff_ids"] as! [String]
        #expect(ids == (try diffIDs(store: f.store, "tiny/run:2")) + f.appLayers, "\(path)")
    }
}

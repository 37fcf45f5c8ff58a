import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The reference lifecycle (../shared/reference, v0.21.14) behind Cairn's platform, as a user
/// would drive it with the README's names (Docker Hub short names): a builder carrying it
/// builds, rebuilds from the cache, and the image runs; `cairn build --lifecycle` with it; and
/// the images it built can be run, layer-patched and indexed.
final class ReferenceLifecycle {
    let tmp = TempDir("reference-lifecycle")
    /// The release tarball's `lifecycle/` directory (lifecycle.toml beside it, as released).
    var directory: String { tmp.path + "/lifecycle" }

    init() throws {
        let tarball = packageRoot + "/../shared/reference/lifecycle-v0.21.14+linux.x86-64.tgz"
        guard FileManager.default.fileExists(atPath: tarball) else {
            throw TestSupportError("\(tarball) is missing: these tests need ../shared/reference beside the clone")
        }
        let r = try run(["tar", "-xzf", tarball, "-C", tmp.path])
        guard r.status == 0 else { throw TestSupportError("unpacking the reference lifecycle: \(r.stderr)") }
        chmod(tmp.path, 0o755)
    }
}

/// A home with the tiny stack and the example builder.
func exampleHome(_ tmp: TempDir) throws -> String {
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    return home
}

@Test(.enabled(if: geteuid() == 0, "cairn build runs its sandbox as root"))
func aBuilderCarryingTheReferenceLifecycleBuildsRebuildsAndTheImageRuns() throws {
    let reference = try ReferenceLifecycle()
    let home = try exampleHome(reference.tmp)
    let made = try cairnAt(["builder", "create", "ref-builder", "--config", packageRoot + "/examples/builder.toml",
                            "--lifecycle", reference.directory], home: home)
    try #require(made.status == 0, "\(made.stdout)\(made.stderr)")
    #expect((made.stdout + made.stderr).contains("Lifecycle 0.21.14"), "\(made.stdout)\(made.stderr)")

    let site = packageRoot + "/examples/apps/static-site"
    let first = try cairnAt(["build", "site", "--path", site, "--builder", "ref-builder"], home: home)
    try #require(first.status == 0, "\(first.stdout)\(first.stderr)")
    let pages = try servedPages("site", home: home, paths: ["/"])
    #expect(pages[0].contains("Hello from a Cairn-built image"), "served: \(pages[0])")

    let second = try cairnAt(["build", "site", "--path", site, "--builder", "ref-builder"], home: home)
    try #require(second.status == 0, "\(second.stdout)\(second.stderr)")
    #expect(second.stdout.contains("Restoring data for \"examples/static-site:httpd\" from cache"), "\(second.stdout)")
    #expect(second.stdout.contains("Reusing layer 'examples/static-site:httpd'"), "\(second.stdout)")

    // The README's builder, its lifecycle replaced for one build (as pack's --lifecycle-image).
    let replaced = try cairnAt(["build", "site2", "--path", site, "--builder", ExampleBuilder.name,
                                "--lifecycle", reference.directory], home: home)
    try #require(replaced.status == 0, "\(replaced.stdout)\(replaced.stderr)")
    let inspect = try inspectJSON("site2", home: home)
    let labels = execConfig(inspect)["Labels"] as? [String: String] ?? [:]
    #expect(labels["io.buildpacks.build.metadata"]?.contains("\"version\":\"0.21.14\"") == true,
            "the reference's launcher is in the image: \(labels["io.buildpacks.build.metadata"] ?? "")")
    #expect(try servedPages("site2", home: home, paths: ["/"])[0].contains("Hello from a Cairn-built image"))
}

/// An app and a patch image both built by the reference lifecycle (tests/runtime 1.0.0 and
/// 1.0.1): `cairn rebase --layer-patches` patches the app (the reference writes `"args": null`
/// in io.buildpacks.build.metadata), `cairn run` runs it (its layers name entries from `/`),
/// and `cairn audit index` reads it.
@Test(.enabled(if: geteuid() == 0, "cairn build runs its sandbox as root"))
func layerPatchRunAndAuditOfImagesTheReferenceBuilt() throws {
    let reference = try ReferenceLifecycle()
    let home = try exampleHome(reference.tmp)
    for version in ["1.0.0", "1.0.1"] {
        let bp = reference.tmp.path + "/runtime-\(version)"
        _ = try sh("cp -a '\(fixturesRoot)/buildpacks/runtime' '\(bp)' && sed -i 's/^version = \"1.0.0\"/version = \"\(version)\"/' '\(bp)/buildpack.toml'")
        try writeFile(reference.tmp.path + "/builder-\(version).toml", """
            [[buildpacks]]
            uri = "\(bp)"
            [[order]]
            [[order.group]]
            id = "tests/runtime"
            version = "\(version)"
            [build]
            image = "tiny/build:latest"
            [[run.images]]
            image = "tiny/run:latest"
            """)
        let made = try cairnAt(["builder", "create", "runtime-builder-\(version)", "--config", reference.tmp.path + "/builder-\(version).toml",
                                "--lifecycle", reference.directory], home: home)
        try #require(made.status == 0, "\(made.stdout)\(made.stderr)")
    }
    let app = packageRoot + "/examples/apps/hello-procfile"
    let built = try cairnAt(["build", "app", "--path", app, "--builder", "runtime-builder-1.0.0"], home: home)
    try #require(built.status == 0, "\(built.stdout)\(built.stderr)")
    let patch = try cairnAt(["build", "patches/runtime:1.0.1", "--path", app, "--builder", "runtime-builder-1.0.1"], home: home)
    try #require(patch.status == 0, "\(patch.stdout)\(patch.stderr)")

    let before = try cairnAt(["run", "app"], home: home)
    #expect(before.status == 0 && before.stdout.contains("runtime 1.0.0") && before.stdout.contains("old-only"),
            "\(before.stdout)\(before.stderr)")

    try writeFile(reference.tmp.path + "/patches.json",
                  #"{"patches": [{"buildpack": "tests/runtime", "layer": "runtime", "patch-image": "patches/runtime:1.0.1"}]}"#)
    let keyMade = try cairnAt(["key", "generate", "--output-key-prefix", reference.tmp.path + "/k"], home: home)
    try #require(keyMade.status == 0, "\(keyMade.stderr)")
    let patched = try cairnAt(["rebase", "app", "--layer-patches", reference.tmp.path + "/patches.json", "--sign", "--key", reference.tmp.path + "/k.key"],
                              home: home)
    #expect(patched.status == 0, "\(patched.stdout)\(patched.stderr)")
    // The patch is signed and its provenance names the patch image and the replaced layer.
    let verified = try cairnAt(["verify", "app", "--key", reference.tmp.path + "/k.pub"], home: home)
    #expect(verified.status == 0 && verified.stdout.contains("https://slsa.dev/provenance/v1"), "\(verified.stdout)\(verified.stderr)")
    let patchedDigest = try storeDigest(home + "/store", "app:latest")
    let provenance = try run(["python3", "-c", attestationReader, home + "/store", "app:sha256-\(patchedDigest.dropFirst(7)).att"])
    #expect(provenance.stdout.contains("patches/runtime:1.0.1") && provenance.stdout.contains("layer tests/runtime:runtime"), "\(provenance.stdout)")
    let after = try cairnAt(["run", "app"], home: home)
    #expect(after.status == 0 && after.stdout.contains("runtime 1.0.1") && !after.stdout.contains("old-only"),
            "\(after.stdout)\(after.stderr)")

    // The other readers of layers and labels, on the images the reference built: patch extract,
    // audit scan, and a run image rebase (with its package diff of the run image layers).
    let extracted = try cairnAt(["patch", "extract", "patches/runtime:1.0.1", "--buildpack", "tests/runtime", "--layer", "runtime",
                                 "patches/runtime-min:1.0.1"], home: home)
    #expect(extracted.status == 0, "\(extracted.stdout)\(extracted.stderr)")
    let scanned = try cairnAt(["audit", "scan", "--buildpack", "tests/runtime"], home: home)
    #expect(scanned.status == 0 && scanned.stdout.contains("app"), "\(scanned.stdout)\(scanned.stderr)")
    try writeFile(reference.tmp.path + "/run-patch/etc/run-image-patch", "2\n")
    let updated = try cairnAt(["import", reference.tmp.path + "/run-patch", "tiny/run:latest", "--base", "tiny/run:latest"], home: home)
    try #require(updated.status == 0, "\(updated.stderr)")
    let outdated = try cairnAt(["audit", "scan", "--outdated"], home: home)
    #expect(outdated.stdout.contains("app"), "the reference-built image is on the old run image: \(outdated.stdout)\(outdated.stderr)")
    let rebased = try cairnAt(["rebase", "app"], home: home)
    #expect(rebased.status == 0, "\(rebased.stdout)\(rebased.stderr)")
    let current = try cairnAt(["audit", "scan", "--outdated"], home: home)
    #expect(current.status == 0 && !current.stdout.contains("app "), "rebased, app is current: \(current.stdout)\(current.stderr)")
    let afterRebase = try cairnAt(["run", "app"], home: home)
    #expect(afterRebase.status == 0 && afterRebase.stdout.contains("runtime 1.0.1"), "\(afterRebase.stdout)\(afterRebase.stderr)")

    let indexed = try cairnAt(["audit", "index"], home: home)
    #expect(indexed.status == 0, "\(indexed.stdout)\(indexed.stderr)")
    let found = try cairnAt(["audit", "buildpack", "tests/runtime"], home: home)
    #expect(found.status == 0 && found.stdout.contains("app"), "\(found.stdout)\(found.stderr)")
}

/// A builder with image extensions, phase by phase with the reference lifecycle behind Cairn's
/// platform: the reference leaves build-image.extend out of analyzed.toml, names the run image by
/// its path in the layout, and reads the extended run image from a directory of its own under
/// `<extended>/run`; the platform copes with all three, and the image carries what both
/// Dockerfiles did.
@Test(.enabled(if: geteuid() == 0 && toolAvailable("runc"), "applying Dockerfiles needs root and runc"))
func theReferenceLifecycleBuildsWithImageExtensions() throws {
    try requireStaticBinaries()
    let reference = try ReferenceLifecycle()
    let home = reference.tmp.path + "/home"
    _ = try sh("mkdir -p '\(home)' && cp -a '\(try TinyStack.shared().store)' '\(home)/store'")
    try writeExtensionBuilderConfig(reference.tmp.path + "/builder.toml")
    let made = try cairnAt(["builder", "create", "ext-builder", "--config", reference.tmp.path + "/builder.toml"], home: home)
    try #require(made.status == 0, "\(made.stderr)")
    let app = reference.tmp.sub("app")
    try writeFile(app + "/README", "an app\n")

    let built = try cairnAt(["build", "ext-app", "--path", app, "--builder", "ext-builder", "--lifecycle", reference.directory], home: home)
    try #require(built.status == 0, "\(built.stdout)\n\(built.stderr)")
    #expect(built.stderr.contains("running the lifecycle phase by phase"), "\(built.stderr)")
    #expect(built.stdout.contains("ext-tool from build.Dockerfile: building as 1000"), "bin/build ran in the extended build image: \(built.stdout)")
    let labels = execConfig(try inspectJSON("ext-app", home: home))["Labels"] as? [String: String] ?? [:]
    #expect(labels["io.buildpacks.build.metadata"]?.contains("\"version\":\"0.21.14\"") == true, "built by the reference")

    let ran = try cairnAt(["run", "ext-app"], home: home)
    #expect(ran.status == 0, "\(ran.stderr)")
    #expect(ran.stdout.contains("ext-tool from build.Dockerfile: at build time"), "\(ran.stdout)")
    #expect(ran.stdout.contains("written by run.Dockerfile"), "the extended run image's layers are in the image: \(ran.stdout)")
}

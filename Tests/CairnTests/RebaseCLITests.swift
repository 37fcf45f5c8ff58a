import Foundation
import Testing
import TestSupport

/// `cairn rebase`: a stack update reaches built images without a rebuild.
@Test func cairnRebasePutsBuiltImagesOnTheUpdatedRunImage() throws {
    // A home of its own: this test changes the run image and counts the app images.
    let tmp = TempDir("rebase-cli")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    let built = try cairnAt(["build", "hello", "--path", packageRoot + "/examples/apps/hello-procfile", "--builder", ExampleBuilder.name], home: home)
    try #require(built.status == 0, "\(built.stdout)\(built.stderr)")
    let runImage = "tiny/run:latest"
    let oldRun = rootfsDiffIDs(try inspectJSON(runImage, home: home))
    let oldApp = rootfsDiffIDs(try inspectJSON("hello", home: home))
    #expect(Array(oldApp.prefix(oldRun.count)) == oldRun)

    // The stack's run image gets a patch layer under the same name.
    let patch = tmp.path + "/patch"
    try FileManager.default.createDirectory(atPath: patch + "/etc", withIntermediateDirectories: true)
    try writeFile(patch + "/etc/cairn-patch", "patched\n")
    #expect(try cairnAt(["import", patch, runImage, "--base", runImage], home: home).status == 0)
    let newRun = rootfsDiffIDs(try inspectJSON(runImage, home: home))

    // One good image and one that does not exist: the good one is rebased, the other reported.
    let r = try cairnAt(["rebase", "hello", "no-such-app"], home: home)
    #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
    #expect(r.stdout.contains("Rebased hello onto \(runImage): \(oldRun.count) run image layers replaced by \(newRun.count)"), "\(r.stdout)")
    #expect(r.stderr.contains("no-such-app") && r.stderr.contains("1 of 2 images not rebased"), "\(r.stderr)")
    let rebased = try inspectJSON("hello", home: home)
    #expect(rootfsDiffIDs(rebased) == newRun + oldApp.dropFirst(oldRun.count))
    let labels = execConfig(rebased)["Labels"] as? [String: String] ?? [:]
    #expect(labels["io.buildpacks.lifecycle.metadata"]?.contains(newRun.last!) == true)

    // inspect says what the image is made of, rebase-relevant parts included.
    let inspect = try cairnAt(["inspect", "hello"], home: home)
    #expect(inspect.stdout.contains("Run image:  tiny/run:latest (") && inspect.stdout.contains("Rebasable:  true"), "\(inspect.stdout)")
    #expect(inspect.stdout.contains("Buildpacks: examples/procfile@0.1.0") && inspect.stdout.contains("Process web (default): "), "\(inspect.stdout)")
    for role in ["run image", "app", "launcher", "process types"] {
        #expect(inspect.stdout.contains("  " + role + "\n"), "layer role \(role): \(inspect.stdout)")
    }
    #expect(inspect.stdout.components(separatedBy: "  run image\n").count - 1 == newRun.count, "\(inspect.stdout)")

    // A fleet at once: every image rebased, quiet digests in the order given.
    for name in ["fleet-a", "fleet-b", "fleet-c"] {
        #expect(try cairnAt(["build", name, "--path", packageRoot + "/examples/apps/hello-procfile", "--builder", ExampleBuilder.name], home: home).status == 0)
    }
    #expect(try cairnAt(["import", patch, runImage, "--base", runImage], home: home).status == 0)
    let newer = rootfsDiffIDs(try inspectJSON(runImage, home: home))
    let fleet = try cairnAt(["rebase", "--jobs", "2", "--quiet", "fleet-a", "fleet-b", "hello", "fleet-c"], home: home)
    #expect(fleet.status == 0, "\(fleet.stderr)")
    var expected: [String] = []
    for name in ["fleet-a", "fleet-b", "hello", "fleet-c"] {
        let info = try inspectJSON(name, home: home)
        #expect(Array(rootfsDiffIDs(info).prefix(newer.count)) == newer, "\(name)")
        expected.append(info["digest"] as? String ?? "")
    }
    #expect(fleet.stdout.split(separator: "\n").map(String.init) == expected)
    let zero = try cairnAt(["rebase", "--jobs", "0", "hello"], home: home)
    #expect(zero.status == 1 && zero.stderr.contains("--jobs must be at least 1"), "\(zero.stderr)")

    let web = try cairnAt(["run", "hello", "--", "after", "rebase"], home: home)
    #expect(web.status == 0 && web.stdout.contains("hello from procfile") && web.stdout.contains("args: after rebase"), "\(web.stdout)\(web.stderr)")
}

func rootfsDiffIDs(_ inspect: [String: Any]) -> [String] {
    ((inspect["config"] as? [String: Any])?["rootfs"] as? [String: Any])?["diff_ids"] as? [String] ?? []
}

/// `cairn rebase --remote`: the image and the run image are in a registry; the rebased manifest is
/// pushed there and the image's layers never travel.
@Test(.requires("docker-registry")) func cairnRebaseRemoteRebasesInTheRegistry() throws {
    let tmp = TempDir("rebase-remote")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    let registry = try LocalRegistry(proxy: true)
    defer { registry.stop() }
    let host = registry.host
    let built = try cairnAt(["build", "hello", "--path", packageRoot + "/examples/apps/hello-procfile", "--builder", ExampleBuilder.name], home: home)
    try #require(built.status == 0, "\(built.stderr)")
    for (local, remote) in [("hello", "\(host)/apps/hello:1"), ("tiny/run:latest", "\(host)/tiny/run:1")] {
        let push = try cairnAt(["push", local, remote, "--insecure-registry", host], home: home)
        try #require(push.status == 0, "\(push.stderr)")
    }
    // The image names tiny/run:latest (local); the registry's run image is another name: --force.
    let refused = try cairnAt(["rebase", "--remote", "--insecure-registry", host, "--run-image", "\(host)/tiny/run:1", "\(host)/apps/hello:1"], home: home)
    #expect(refused.status == 1 && refused.stderr.contains("-force"), "\(refused.stderr)")
    _ = try registry.proxy("/__reset")
    let r = try cairnAt(["rebase", "--remote", "--force", "--insecure-registry", host, "--run-image", "\(host)/tiny/run:1", "\(host)/apps/hello:1"], home: home)
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    #expect(r.stdout.contains("Rebased \(host)/apps/hello:1 onto \(host)/tiny/run:1"), "\(r.stdout)")
    let stats = try registry.proxy("/__stats")
    #expect((stats["downloadedBlobBytes"] ?? .max) < 100_000 && (stats["uploadedBlobBytes"] ?? .max) < 100_000, "\(stats)")
    let config = try run(["skopeo", "inspect", "--config", "--tls-verify=false", "docker://\(host)/apps/hello:1"])
    #expect(config.stdout.contains("\\\"image\\\":\\\"\(host)/tiny/run:1\\\""), "the metadata names the new run image: \(config.stdout.prefix(2000))")
}

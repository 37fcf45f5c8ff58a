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

    let web = try cairnAt(["run", "hello", "--", "after", "rebase"], home: home)
    #expect(web.status == 0 && web.stdout.contains("hello from procfile") && web.stdout.contains("args: after rebase"), "\(web.stdout)\(web.stderr)")
}

func rootfsDiffIDs(_ inspect: [String: Any]) -> [String] {
    ((inspect["config"] as? [String: Any])?["rootfs"] as? [String: Any])?["diff_ids"] as? [String] ?? []
}

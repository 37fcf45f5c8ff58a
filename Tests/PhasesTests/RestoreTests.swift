import Foundation
import Testing
import TestSupport

/// Issue 37: a rebuild whose `<layers>` is at another path than the build that filled the cache
/// (a platform mounting its volume elsewhere, a new pod layout). The cached layers hold the old
/// path; the restorer restores them by their path relative to the layers directory they were
/// exported from, into the current one (the reference extracts into the old path, where the
/// buildpack never looks; Cairn failed with exit 40, "cannot move restored layer").
@Test func aRebuildWithTheLayersDirectoryElsewhereRestoresIntoTheCurrentOne() throws {
    let stack = try TinyStack.shared()
    let c = try CreatorRun(app: packageRoot + "/examples/apps/static-site")
    _ = try sh("mkdir -p '\(c.buildpacks)/examples_static-site' && cp -a '\(packageRoot)/examples/buildpacks/static-site' '\(c.buildpacks)/examples_static-site/0.1.0'")
    try writeFile(c.order, "[[order]]\n[[order.group]]\nid = \"examples/static-site\"\nversion = \"0.1.0\"\n")
    let store = c.tmp.path + "/store"
    _ = try sh("cp -a '\(stack.store)' '\(store)'")
    let first = try c.create(["-store", store], image: "site")
    try #require(first.status == 0, "\(first.stdout)\(first.stderr)")

    let moved = c.tmp.path + "/elsewhere/layers"
    _ = try sh("mkdir -p '\(moved)' && chmod 777 '\(moved)' '\(c.tmp.path)/elsewhere'")
    let env = ["PATH": "/usr/bin:/bin", "CNB_PLATFORM_API": "0.15", "CNB_USER_ID": "\(cnbUser)", "CNB_GROUP_ID": "\(cnbUser)"]
    let restore = try run([lifecycleBinary, "restorer", "-layers", moved, "-cache-dir", c.cache, "-group", c.layers + "/group.toml"],
                          environment: env)
    #expect(restore.status == 0, "\(restore.stdout)\(restore.stderr)")
    #expect(restore.stdout.contains("Restored layer 'examples/static-site:httpd' from the cache"), "\(restore.stdout)")
    let restored = moved + "/examples_static-site/httpd"
    let files = (try? FileManager.default.subpathsOfDirectory(atPath: restored)) ?? []
    #expect(!files.isEmpty, "the layer's files are under the current layers directory")
    #expect(!FileManager.default.fileExists(atPath: moved + "/" + c.layers), "nothing is extracted under the old path")

    // The whole rebuild at the new path exports an image that has the layer.
    let second = try run([lifecycleBinary, "creator", "-app", c.app, "-layers", moved, "-buildpacks", c.buildpacks, "-order", c.order,
                          "-platform", c.platform, "-cache-dir", c.cache, "-launcher", staticBin + "/launcher",
                          "-run-image", TinyStack.runImage, "-store", store, "site"], environment: env)
    #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
    #expect(second.stdout.contains("Restored layer 'examples/static-site:httpd' from the cache"), "\(second.stdout)")
}

import Foundation
import Testing
import TestSupport

/// A rebuild exported to a registry, as a pod runs the creator (fresh `<layers>`, the cache
/// directory kept): an app directory whose fingerprint matches the layer recorded last time is
/// reused from the previous image in the registry without being read or uploaded again, as in a
/// store; a changed file makes a new app layer, and every tag still pulls whole.
@Test func aRegistryRebuildReusesTheAppLayerOfThePreviousImageByFingerprint() throws {
    let stack = try TinyStack.shared()
    let registry = try LocalRegistry(proxy: true)
    defer { registry.stop() }
    let push = try run([cairnBinary, "push", "--store", stack.store, "--insecure-registry", registry.host, TinyStack.runImage,
                        "\(registry.host)/tiny/run:latest"])
    try #require(push.status == 0, "\(push.stderr)")
    let c = try CreatorRun()
    let image = "\(registry.host)/hello:1"
    func create() throws -> RunResult {
        _ = try sh("rm -rf '\(c.layers)' && mkdir -p '\(c.layers)' && chmod 777 '\(c.layers)'")
        return try run([lifecycleBinary, "creator", "-app", c.app, "-layers", c.layers, "-buildpacks", c.buildpacks, "-order", c.order,
                        "-platform", c.platform, "-launcher", staticBin + "/launcher", "-run-image", "\(registry.host)/tiny/run:latest",
                        "-cache-dir", c.cache, "-insecure-registry", registry.host, image],
                       environment: ["PATH": "/usr/bin:/bin", "CNB_PLATFORM_API": "0.15", "CNB_USER_ID": "\(cnbUser)",
                                     "CNB_GROUP_ID": "\(cnbUser)", "HOME": c.tmp.path])
    }
    func digest() throws -> String {
        let r = try run(["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://\(image)"])
        try #require(r.status == 0, "\(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    let first = try create()
    try #require(first.status == 0, "\(first.stdout)\(first.stderr)")
    let d1 = try digest()

    _ = try registry.proxy("/__reset")
    let second = try create()
    #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
    #expect(second.stdout.contains("Reusing layer 'app'") && second.stdout.contains("unchanged since the last export"), "\(second.stdout)")
    #expect(!second.stdout.contains("Adding layer"), "\(second.stdout)")
    #expect(try digest() == d1, "an unchanged rebuild must give the same image")
    let stats = try registry.proxy("/__stats")
    #expect((stats["uploadedBlobBytes"] ?? .max) == 0, "nothing is uploaded for an unchanged rebuild: \(stats)")

    try writeFile(c.app + "/added.txt", "a change\n")
    _ = try sh("chown \(cnbUser):\(cnbUser) '\(c.app)/added.txt' 2>/dev/null || true")
    let third = try create()
    #expect(third.status == 0, "\(third.stdout)\(third.stderr)")
    #expect(third.stdout.contains("Adding layer 'app'"), "\(third.stdout)")
    #expect(try digest() != d1)
    // Every blob of the new image is in the registry: a full copy of it succeeds.
    let out = TempDir("registry-export-copy")
    let copy = try run(["skopeo", "copy", "--src-tls-verify=false", "docker://\(image)", "oci:\(out.path):x"])
    #expect(copy.status == 0, "\(copy.stderr)")
}

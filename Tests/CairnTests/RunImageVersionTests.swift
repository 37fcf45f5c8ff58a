import Foundation
import OCI
import Testing
import TestSupport

/// Issue 39's scenario, as an operator met it: `cairn stack create` over the old `tiny` adds
/// netbase in the packages layer, and the run image's top layer stays byte-identical. A run
/// image version is its whole stack of layers, so the app is outdated, the rebase brings netbase
/// in, and the inventory reads the new version's packages.
@Test func aNewRunImageWithTheSameTopLayerIsANewVersion() throws {
    let tmp = TempDir("run-image-version")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    func cairn(_ args: [String]) throws -> RunResult {
        let r = try cairnAt(args, home: home)
        guard r.status == 0 else { throw TestSupportError("cairn \(args.joined(separator: " ")): \(r.stdout)\(r.stderr)") }
        return r
    }
    func images(_ args: [String]) throws -> [String] {
        let list = try JSONSerialization.jsonObject(with: cairn(["audit"] + args + ["--format", "json"]).stdoutData) as! [[String: Any]]
        // Known answers: hello has no SBOM layer, so it is also listed as `unknown` (checked below).
        return list.filter { $0["status"] as? String != "unknown" }
            .map { ($0["record"] as? [String: Any])?["image"] as? String ?? $0["image"] as? String ?? "?" }.sorted()
    }
    _ = try cairn(["build", "hello", "--path", packageRoot + "/examples/apps/hello-procfile", "--builder", ExampleBuilder.name])
    _ = try cairn(["audit", "index"])
    let old = try ImageStore(root: home + "/store").resolve(TinyStack.runImage)

    _ = try cairn(["stack", "create", "tiny", "--packages", "busybox-static,bash-static,netbase", "--quiet"])
    let new = try ImageStore(root: home + "/store").resolve(TinyStack.runImage)
    #expect(new.config.rootfs.diffIDs.last == old.config.rootfs.diffIDs.last && new.digest != old.digest,
            "the scenario: a new run image whose top layer is byte-identical to the old one's")
    #expect(Digest.chainID(of: new.config.rootfs.diffIDs) != Digest.chainID(of: old.config.rootfs.diffIDs))

    // Before the rebase: outdated by `audit scan` and by the inventory; netbase is not in it.
    #expect(try images(["scan", "--outdated"]) == ["hello:latest"])
    #expect(try images(["scan", "--package", "netbase"]) == [])
    _ = try cairn(["audit", "index"])
    #expect(try images(["run-image", "--outdated"]) == ["hello:latest"])
    #expect(try images(["package", "netbase"]) == [])

    let rebase = try cairn(["rebase", "hello"])
    #expect((rebase.stdout + rebase.stderr).contains("netbase"), "the rebase names the package it brings: \(rebase.stdout)\(rebase.stderr)")
    #expect(try images(["scan", "--outdated"]) == [])
    #expect(try images(["scan", "--package", "netbase"]) == ["hello:latest"])
    _ = try cairn(["audit", "index"])
    #expect(try images(["run-image", "--outdated"]) == [])
    #expect(try images(["package", "netbase"]) == ["hello:latest"])

    let release = try #require(new.config.config?.labels?["io.buildpacks.base.distro.version"])
    try writeFile(tmp.path + "/netbase.json", """
        {"id": "DLA-0000-1", "affected": [{"package": {"ecosystem": "Debian:\(release)", "name": "netbase"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "6.5"}]}]}]}
        """)
    _ = try cairn(["audit", "advisories", "import", tmp.path + "/netbase.json"])
    #expect(try images(["vulns", "--id", "DLA-0000-1"]) == ["hello:latest"])
    let vulns = try cairn(["audit", "vulns", "--id", "DLA-0000-1"])
    #expect(vulns.stdout.contains("unknown: no SBOM layer: what its buildpacks installed is not listed")
            && vulns.stderr.contains("1 of them unknown"), "an image whose SBOM is missing is never reported clean: \(vulns.stdout)\(vulns.stderr)")
}

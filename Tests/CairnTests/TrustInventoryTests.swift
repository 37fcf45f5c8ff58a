import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The inventory answers the fleet's trust questions: `audit index --key` records each image's
/// signature and provenance status (store and registry), `audit trust` lists unsigned images,
/// images from another builder, images whose builder took a buildpack from a buildpackage; an
/// image never checked with the key is "unchecked", never clean; a signature added later is seen
/// by the next index run.
@Test(.enabled(if: geteuid() == 0 && toolAvailable("docker-registry"), "cairn build runs its sandbox as root"))
func theInventoryRecordsSignatureAndProvenanceStatusAndAnswersTrustQuestions() throws {
    let t = try TrustHome()
    try ExampleBuilder.make(home: t.home)
    // Three apps that differ (the same source on the same builder is the same image, one digest).
    func app(_ name: String) throws -> String {
        let dir = t.tmp.path + "/" + name
        try #require(try sh("cp -a '\(packageRoot)/examples/apps/static-site' '\(dir)' && echo '\(name)' > '\(dir)/which.txt'").status == 0)
        return dir
    }
    let db = ["--database", t.tmp.path + "/audit.db"]
    try #require(try t.cairn(["build", "site", "--path", try app("site"), "--builder", ExampleBuilder.name, "--sign", "--key", t.key]).status == 0)
    try #require(try t.cairn(["build", "plain", "--path", try app("plain"), "--builder", ExampleBuilder.name]).status == 0)
    let packaged = try t.cairn(["buildpack", "package", packageRoot + "/examples/buildpacks/static-site", "bp/static-site:0.1.0", "--sign", "--key", t.key])
    try #require(packaged.status == 0, "\(packaged.stderr)")
    try writeTinyBuilderConfig(t.tmp.path + "/pkg.toml", buildpack: "bp/static-site:0.1.0", id: "examples/static-site")
    try #require(try t.cairn(["builder", "create", "pkg-builder", "--config", t.tmp.path + "/pkg.toml", "--sign", "--key", t.key]).status == 0)
    try #require(try t.cairn(["build", "site3", "--path", try app("site3"), "--builder", "pkg-builder", "--sign", "--key", t.key]).status == 0)
    func answer(_ args: [String]) throws -> [String: [String: Any]] {
        let r = try t.cairn(["audit", "trust", "--key", t.pub, "--format", "json"] + args + db)
        guard r.status == 0 else { throw TestSupportError("audit trust \(args): \(r.stderr)") }
        let rows = try JSONSerialization.jsonObject(with: r.stdoutData) as? [[String: Any]] ?? []
        return Dictionary(rows.map { ("\($0["location"] as? String == "registry" ? "registry " : "")\($0["image"] as? String ?? "")", $0) }) { a, _ in a }
    }

    // Indexed without a key: nothing is known about signatures, and the answer says so.
    try #require(try t.cairn(["audit", "index"] + db).status == 0)
    let before = try answer(["--unsigned"])
    #expect(Set(before.keys) == ["site:latest", "plain:latest", "site3:latest"], "\(before)")
    #expect(before.values.allSatisfy { $0["status"] as? String == "unchecked" }, "\(before)")

    let indexed = try t.cairn(["audit", "index", "--key", t.pub] + db)
    #expect(indexed.status == 0 && indexed.stdout.contains("trust: 3 image/key checks recorded"), "\(indexed.stdout)\(indexed.stderr)")
    let unsigned = try answer(["--unsigned"])
    #expect(Set(unsigned.keys) == ["plain:latest"], "\(unsigned)")
    #expect((unsigned["plain:latest"]?["reasons"] as? [String])?.first?.contains("is not signed") == true, "\(unsigned)")
    let builderDigest = try storeDigest(t.home + "/store", ExampleBuilder.name + ":latest")
    let otherBuilder = try answer(["--builder-not", builderDigest])
    #expect(Set(otherBuilder.keys) == ["plain:latest", "site3:latest"], "site3 names pkg-builder; plain names none: \(otherBuilder)")
    #expect((otherBuilder["plain:latest"]?["reasons"] as? [String]) == ["no verified provenance names its builder"])
    let packageDigest = try storeDigest(t.home + "/store", "bp/static-site:0.1.0")
    let fromPackage = try answer(["--from-buildpackage", packageDigest])
    #expect(Set(fromPackage.keys) == ["site3:latest"], "\(fromPackage)")
    #expect((fromPackage["site3:latest"]?["reasons"] as? [String])?.first?.contains("bp/static-site:0.1.0") == true, "\(fromPackage)")
    // Another key: every image is unchecked with it, not clean.
    _ = try t.cairn(["key", "generate", "--output-key-prefix", t.tmp.path + "/other"])
    let otherKey = try t.cairn(["audit", "trust", "--key", t.tmp.path + "/other.pub", "--unsigned", "--format", "json"] + db)
    #expect(otherKey.stdout.components(separatedBy: "\"unchecked\"").count == 4, "\(otherKey.stdout)")

    // Signed later: the next index run sees it, though the image itself was known.
    try #require(try t.cairn(["sign", "plain:latest", "--key", t.key]).status == 0)
    try #require(try t.cairn(["audit", "index", "--key", t.pub] + db).status == 0)
    #expect(try answer(["--unsigned"]).isEmpty)

    // Registry images: the signature and provenance travel; the builder's provenance is read from the store.
    let registry = try LocalRegistry()
    try #require(try t.cairn(["push", "site3", "\(registry.host)/team/site3:1", "--insecure-registry", registry.host]).status == 0)
    let remote = try t.cairn(["audit", "index", "--registry", "\(registry.host)/team/site3", "--key", t.pub, "--insecure-registry", registry.host] + db)
    #expect(remote.status == 0 && remote.stdout.contains("trust: 1 image/key checks recorded"), "\(remote.stdout)\(remote.stderr)")
    let registryAnswer = try answer(["--from-buildpackage", packageDigest])
    #expect(registryAnswer["registry \(registry.host)/team/site3:1"]?["status"] as? String == "signed", "\(registryAnswer)")
}

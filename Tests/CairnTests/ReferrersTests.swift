import Foundation
import Testing
import TestSupport

/// A registry's JSON document (manifest or index) by tag or digest, read with curl, not Cairn.
func registryDocument(_ host: String, _ repository: String, _ reference: String) throws -> [String: Any]? {
    let r = try run(["curl", "-fsS", "-H", "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
                     "http://\(host)/v2/\(repository)/manifests/\(reference)"])
    guard r.status == 0 else { return nil }
    return try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any]
}

/// Deletes a manifest by the digest its tag resolves to (docker-registry deletes by digest; the
/// tag goes with it).
func deleteTagged(_ host: String, _ repository: String, _ tag: String) throws {
    let r = try sh("""
        d=$(curl -fsSI -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://\(host)/v2/\(repository)/manifests/\(tag) \
            | tr -d '\\r' | awk 'tolower($1)=="docker-content-digest:" {print $2}') && \
        curl -fsS -X DELETE http://\(host)/v2/\(repository)/manifests/$d
        """)
    guard r.status == 0 else { throw TestSupportError("deleting \(repository):\(tag): \(r.stderr)") }
}

/// OCI 1.1 referrers on a loopback docker-registry 2.8, which has no referrers API, so the
/// referrers tag schema is what must hold: Cairn's signatures and attestations are also written
/// as artifacts with a `subject`, listed in the `sha256-<hex>` index; with the tag-schema `.sig`
/// and `.att` deleted, cosign (`--experimental-oci11`) still verifies the signature from the
/// referrer and plain cosign does not; Cairn verifies from referrers, including a signature
/// cosign wrote with `--registry-referrers-mode=oci-1-1`, and `cairn pull` brings that one into
/// the store.
@Test(.requires("docker-registry", "xz", "curl"))
func signaturesAndAttestationsAreOCIReferrersWithTheTagSchemaFallback() throws {
    let t = try TrustHome()
    let cosign = try CosignTool.shared()
    let registry = try LocalRegistry()
    let insecure = ["--insecure-registry", registry.host]
    try writeTinyBuilderConfig(t.tmp.path + "/builder.toml", buildpack: packageRoot + "/examples/buildpacks/procfile", id: "examples/procfile")
    let created = try t.cairn(["builder", "create", "signed-builder", "--config", t.tmp.path + "/builder.toml", "--sign", "--key", t.key])
    try #require(created.status == 0, "\(created.stderr)")
    let remote = "\(registry.host)/team/builder:1"
    let pushed = try t.cairn(["push", "signed-builder", remote] + insecure)
    try #require(pushed.status == 0 && pushed.stdout.contains(".att"), "\(pushed.stdout)\(pushed.stderr)")

    let digest = try storeDigest(t.home + "/store", "signed-builder:latest")
    let hex = String(digest.dropFirst(7))
    let index = try #require(try registryDocument(registry.host, "team/builder", "sha256-\(hex)"), "no referrers tag index")
    #expect(index["mediaType"] as? String == "application/vnd.oci.image.index.v1+json")
    let entries = index["manifests"] as? [[String: Any]] ?? []
    let types = Set(entries.compactMap { $0["artifactType"] as? String })
    #expect(types == ["application/vnd.dev.cosign.artifact.sig.v1+json", "application/vnd.dev.cosign.artifact.att.v1+json"], "\(entries)")
    for entry in entries {
        let referrer = try #require(try registryDocument(registry.host, "team/builder", entry["digest"] as? String ?? ""))
        #expect((referrer["subject"] as? [String: Any])?["digest"] as? String == digest, "\(referrer)")
        #expect(referrer["artifactType"] as? String == entry["artifactType"] as? String)
    }

    // Only the referrers left: cosign finds the signature through the tag schema, Cairn finds both.
    try deleteTagged(registry.host, "team/builder", "sha256-\(hex).sig")
    try deleteTagged(registry.host, "team/builder", "sha256-\(hex).att")
    let legacyOnly = try cosign.verify(remote, key: t.pub)
    #expect(legacyOnly.status != 0, "without --experimental-oci11 cosign looks only at the .sig tag, which is gone")
    let oci11 = try cosign.run(["verify", "--key", t.pub, "--insecure-ignore-tlog", "--allow-insecure-registry",
                                "--trusted-root", cosign.trustedRoot, "--experimental-oci11", remote])
    #expect(oci11.status == 0, "cosign verify --experimental-oci11: \(oci11.stdout)\(oci11.stderr)")
    // (cosign v2.6.4's verify-attestation reads attestations only from the .att tag, even with
    // --experimental-oci11; that is why the tag-schema artifact is always written too.)
    let byCairn = try t.cairn(["verify", "--remote", remote, "--key", t.pub, "--format", "json"] + insecure)
    #expect(byCairn.status == 0 && byCairn.stdout.contains("https://slsa.dev/provenance/v1"), "\(byCairn.stdout)\(byCairn.stderr)")

    // cosign's own OCI 1.1 signature (no .sig tag at all), verified and pulled by Cairn.
    let other = "\(registry.host)/tiny/run:latest"
    try #require(try t.cairn(["push", "tiny/run:latest", other] + insecure).status == 0)
    let pair = try cosign.run(["generate-key-pair"], cwd: t.tmp.path)
    try #require(pair.status == 0, "\(pair.stderr)")
    let cosignSigned = try cosign.run(["sign", "--key", t.tmp.path + "/cosign.key", "--tlog-upload=false", "--allow-insecure-registry",
                                       "--registry-referrers-mode=oci-1-1", "--yes", other], extraEnvironment: ["COSIGN_EXPERIMENTAL": "1"])
    try #require(cosignSigned.status == 0, "\(cosignSigned.stderr)")
    let tags = try run(["curl", "-fsS", "http://\(registry.host)/v2/tiny/run/tags/list"]).stdout
    #expect(!tags.contains(".sig"), "cosign wrote a referrer, not a .sig tag: \(tags)")
    let cairnVerifies = try t.cairn(["verify", "--remote", other, "--key", t.tmp.path + "/cosign.pub"] + insecure)
    #expect(cairnVerifies.status == 0, "\(cairnVerifies.stdout)\(cairnVerifies.stderr)")
    let wrongKey = try t.cairn(["verify", "--remote", other, "--key", t.pub] + insecure)
    #expect(wrongKey.status != 0 && wrongKey.stderr.contains("does not verify with the given key"), "\(wrongKey.stderr)")
    let pulled = try t.cairn(["pull", other] + insecure)
    #expect(pulled.status == 0 && pulled.stderr.contains(".sig"), "\(pulled.stdout)\(pulled.stderr)")
    let inStore = try t.cairn(["verify", other, "--key", t.tmp.path + "/cosign.pub"])
    #expect(inStore.status == 0, "\(inStore.stdout)\(inStore.stderr)")
}

import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Reads the `.att` artifact of `image` from a store (as a layout, not through Cairn), opens
/// each DSSE envelope and prints its statement as one JSON line per predicate type:
/// `{"predicateType": …, "statement": …}`.
let attestationReader = #"""
import base64, json, sys
store, name = sys.argv[1:3]
def blob(d):
    return open(f"{store}/blobs/sha256/{d.split(':')[1]}", "rb").read()
index = json.load(open(f"{store}/index.json"))
entry = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == name][0]
for layer in json.loads(blob(entry["digest"]))["layers"]:
    envelope = json.loads(blob(layer["digest"]))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    print(json.dumps({"predicateType": layer["annotations"]["predicateType"],
                      "statement": json.loads(base64.b64decode(envelope["payload"]))}))
"""#

/// The statements of `name`'s `.att` artifact in `store` (read by `attestationReader`), each
/// `{"predicateType": …, "statement": …}`, and the reader's raw output.
func statements(store: String, _ name: String) throws -> (lines: [[String: Any]], text: String) {
    let read = try run(["python3", "-c", attestationReader, store, name])
    guard read.status == 0 else { throw TestSupportError("reading \(name): \(read.stderr)") }
    return (read.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] },
            read.stdout)
}

/// A builder.toml with one buildpack (`uri`) and one group of it, on the tiny stack.
func writeTinyBuilderConfig(_ path: String, buildpack uri: String, id: String, version: String = "0.1.0") throws {
    try writeFile(path, """
        [[buildpacks]]
        uri = "\(uri)"
        [[order]]
        [[order.group]]
        id = "\(id)"
        version = "\(version)"
        [build]
        image = "tiny/build:latest"
        [[run.images]]
        image = "tiny/run:latest"
        """)
}

/// Validates a statement with the in-toto attestation framework's own Python package: the
/// Statement v1 rules, and for SLSA provenance the predicate parsed strictly into its v1 proto
/// (unknown or mistyped fields fail).
let statementValidator = #"""
import json, sys
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
statement = json.load(sys.stdin)
pb = json_format.ParseDict(statement, statement_pb2.Statement())
Statement.copy_from_pb(pb).validate()
if statement["predicateType"] == "https://slsa.dev/provenance/v1":
    json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
print("valid")
"""#

@Test(.enabled(if: geteuid() == 0 && toolAvailable("docker-registry") && toolAvailable("xz"), "cairn build runs its sandbox as root"))
func buildSignsAndAttestsPushCarriesItAndCosignAndPolicyCheckIt() throws {
    let t = try TrustHome()
    try ExampleBuilder.make(home: t.home)
    let built = try t.cairn(["build", "site", "--path", packageRoot + "/examples/apps/static-site", "--builder", ExampleBuilder.name,
                             "--env", "SECRET_TOKEN=hunter2", "--sign", "--key", t.key])
    try #require(built.status == 0, "\(built.stdout)\(built.stderr)")
    #expect(built.stderr.contains("SLSA provenance attestation") && built.stderr.contains("CycloneDX SBOM attestation"), "\(built.stderr)")

    let verified = try t.cairn(["verify", "site", "--key", t.pub, "--format", "json"])
    #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
    #expect(verified.stdout.contains("https://slsa.dev/provenance/v1") && verified.stdout.contains("https://cyclonedx.org/bom"), "\(verified.stdout)")

    // The provenance, read and validated without Cairn.
    let digest = try storeDigest(t.home + "/store", "site:latest")
    let builderDigest = try storeDigest(t.home + "/store", ExampleBuilder.name + ":latest")
    let (lines, text) = try statements(store: t.home + "/store", "site:sha256-\(digest.dropFirst(7)).att")
    #expect(!text.contains("hunter2"), "an --env value never goes into provenance")
    let provenance = try #require(lines.first { $0["predicateType"] as? String == "https://slsa.dev/provenance/v1" }?["statement"] as? [String: Any])
    for line in lines {
        let statement = try JSONSerialization.data(withJSONObject: line["statement"] as Any)
        let valid = try run(["python3", "-c", statementValidator], stdin: statement)
        #expect(valid.stdout == "valid\n", "\(line["predicateType"] ?? ""): \(valid.stdout)\(valid.stderr)")
    }
    let subject = (provenance["subject"] as? [[String: Any]])?.first?["digest"] as? [String: String]
    #expect(subject?["sha256"] == String(digest.dropFirst(7)))
    let definition = (provenance["predicate"] as? [String: Any])?["buildDefinition"] as? [String: Any]
    let external = definition?["externalParameters"] as? [String: Any]
    #expect(external?["env"] as? [String] == ["SECRET_TOKEN"])
    #expect(((external?["source"] as? [String: Any])?["digest"] as? [String: String])?["sha256"]?.count == 64)
    let deps = definition?["resolvedDependencies"] as? [[String: Any]] ?? []
    #expect(deps.contains { $0["name"] as? String == "builder" && ($0["digest"] as? [String: String])?["sha256"] == String(builderDigest.dropFirst(7)) })
    #expect(deps.contains { $0["name"] as? String == "examples/static-site@0.1.0" && ($0["digest"] as? [String: String])?["sha256"]?.count == 64 })
    #expect(deps.contains { $0["name"] as? String == "run-image" && $0["digest"] != nil })
    #expect(deps.contains { ($0["uri"] as? String)?.hasPrefix("pkg:generic/lifecycle@") == true })

    // Policies: what the provenance says is checked; each refusal names its cause.
    try writeFile(t.tmp.path + "/ok.toml", "allowed-builders = [\"\(builderDigest)\"]\nallowed-buildpacks = [\"examples/*\"]\n")
    let ok = try t.cairn(["verify", "site", "--key", t.pub, "--policy", t.tmp.path + "/ok.toml"])
    #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
    try writeFile(t.tmp.path + "/bp.json", #"{"allowed-buildpacks": ["paketo-buildpacks/*"]}"#)
    let bp = try t.cairn(["verify", "site", "--key", t.pub, "--policy", t.tmp.path + "/bp.json"])
    #expect(bp.status != 0 && bp.stderr.contains("examples/static-site@0.1.0 is not allowed by allowed-buildpacks"), "\(bp.stderr)")
    try writeFile(t.tmp.path + "/builder.toml", "allowed-builders = [\"docker.io/library/approved-builder\"]\n")
    let otherBuilder = try t.cairn(["verify", "site", "--key", t.pub, "--policy", t.tmp.path + "/builder.toml"])
    #expect(otherBuilder.status != 0 && otherBuilder.stderr.contains("is not one of allowed-builders"), "\(otherBuilder.stderr)")
    try writeFile(t.tmp.path + "/run.toml", "require-signed-run-image = true\n")
    let unsignedRun = try t.cairn(["verify", "site", "--key", t.pub, "--policy", t.tmp.path + "/run.toml"])
    #expect(unsignedRun.status != 0 && unsignedRun.stderr.contains("has no valid signature by this key"), "\(unsignedRun.stderr)")
    #expect(try t.cairn(["sign", "tiny/run:latest", "--key", t.key]).status == 0)
    let signedRun = try t.cairn(["verify", "site", "--key", t.pub, "--policy", t.tmp.path + "/run.toml"])
    #expect(signedRun.status == 0, "\(signedRun.stdout)\(signedRun.stderr)")

    // The fleet: which images are unsigned, built by another builder, or hold a buildpack from a
    // given buildpackage (audit scan, from signatures and verified provenance).
    let plain = try t.cairn(["build", "plain", "--path", packageRoot + "/examples/apps/static-site", "--builder", ExampleBuilder.name])
    try #require(plain.status == 0, "\(plain.stderr)")
    let unsignedScan = try t.cairn(["audit", "scan", "--unsigned", "--key", t.pub, "--format", "json"])
    #expect(unsignedScan.stdout.contains("\"plain:latest\"") && !unsignedScan.stdout.contains("\"site:latest\""), "\(unsignedScan.stdout)\(unsignedScan.stderr)")
    let otherBuilders = try t.cairn(["audit", "scan", "--key", t.pub, "--builder-not", builderDigest, "--format", "json"])
    #expect(otherBuilders.stdout.contains("no verified provenance names its builder") && !otherBuilders.stdout.contains("\"site:latest\""),
            "\(otherBuilders.stdout)\(otherBuilders.stderr)")
    let packaged = try t.cairn(["buildpack", "package", packageRoot + "/examples/buildpacks/static-site", "bp/static-site:0.1.0", "--sign", "--key", t.key])
    try #require(packaged.status == 0, "\(packaged.stderr)")
    try writeTinyBuilderConfig(t.tmp.path + "/pkg-builder.toml", buildpack: "bp/static-site:0.1.0", id: "examples/static-site")
    let pkgBuilder = try t.cairn(["builder", "create", "pkg-builder", "--config", t.tmp.path + "/pkg-builder.toml", "--sign", "--key", t.key])
    try #require(pkgBuilder.status == 0, "\(pkgBuilder.stderr)")
    let fromPackage = try t.cairn(["build", "site3", "--path", packageRoot + "/examples/apps/static-site", "--builder", "pkg-builder", "--sign", "--key", t.key])
    try #require(fromPackage.status == 0, "\(fromPackage.stderr)")
    let packageDigest = try storeDigest(t.home + "/store", "bp/static-site:0.1.0")
    let byPackage = try t.cairn(["audit", "scan", "--key", t.pub, "--from-buildpackage", packageDigest, "--format", "json"])
    #expect(byPackage.stdout.contains("\"site3:latest\"") && !byPackage.stdout.contains("\"site:latest\"") && byPackage.stdout.contains("builder took buildpack from bp/static-site:0.1.0"),
            "\(byPackage.stdout)\(byPackage.stderr)")

    // Pushed, the signature and attestations travel; cosign finds and verifies them.
    let registry = try LocalRegistry()
    let remote = "\(registry.host)/site:latest"
    let pushed = try t.cairn(["push", "site", remote, "--insecure-registry", registry.host])
    #expect(pushed.status == 0 && pushed.stdout.contains(".sig") && pushed.stdout.contains(".att"), "\(pushed.stdout)\(pushed.stderr)")
    let cosign = try CosignTool.shared()
    let sig = try cosign.verify(remote, key: t.pub)
    #expect(sig.status == 0, "cosign verify: \(sig.stderr)")
    for type in ["slsaprovenance1", "cyclonedx"] {
        let att = try cosign.run(["verify-attestation", "--key", t.pub, "--type", type, "--insecure-ignore-tlog", "--allow-insecure-registry",
                                  "--trusted-root", cosign.trustedRoot, remote])
        #expect(att.status == 0, "cosign verify-attestation --type \(type): \(att.stderr)")
    }
    let remoteVerify = try t.cairn(["verify", "--remote", remote, "--key", t.pub, "--insecure-registry", registry.host])
    #expect(remoteVerify.status == 0, "\(remoteVerify.stdout)\(remoteVerify.stderr)")

    // Saved as `cosign save` lays it out, cosign verifies it offline from the directory.
    let saved = try t.cairn(["save", "site", "--dir", t.tmp.path + "/saved"])
    #expect(saved.status == 0, "\(saved.stderr)")
    let local = try cosign.run(["verify", "--key", t.pub, "--insecure-ignore-tlog", "--trusted-root", cosign.trustedRoot,
                                "--local-image", t.tmp.path + "/saved"])
    #expect(local.status == 0, "cosign verify --local-image: \(local.stderr)")
    let localAtt = try cosign.run(["verify-attestation", "--key", t.pub, "--type", "slsaprovenance1", "--insecure-ignore-tlog",
                                   "--trusted-root", cosign.trustedRoot, "--local-image", t.tmp.path + "/saved"])
    #expect(localAtt.status == 0, "cosign verify-attestation --local-image: \(localAtt.stderr)")

    // An edited attestation: the envelope no longer matches its digest, and verification says so.
    let edited = try run(["python3", "-c", """
        import json, sys
        store, name = sys.argv[1:3]
        index = json.load(open(store + "/index.json"))
        entry = [m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == name][0]
        manifest = json.load(open(store + "/blobs/sha256/" + entry["digest"].split(":")[1]))
        path = store + "/blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1]
        envelope = json.load(open(path)); envelope["payload"] = envelope["payload"][:-8] + "AAAAAAA="
        open(path, "w").write(json.dumps(envelope))
        """, t.home + "/store", "site:sha256-\(digest.dropFirst(7)).att"])
    try #require(edited.status == 0, "\(edited.stderr)")
    let tampered = try t.cairn(["verify", "site", "--key", t.pub])
    #expect(tampered.status != 0 && tampered.stderr.contains("content digest is"), "\(tampered.stderr)")
}

/// `cairn rebase`, signing set in config.toml, onto an updated run image: the rebased image is signed and its
/// provenance names the previous image and digest, the new run image's digest, and the old and
/// new manifest digests.
@Test(.enabled(if: geteuid() == 0, "cairn build runs its sandbox as root"))
func aSignedRebaseRecordsTheOldAndNewDigestsInItsProvenance() throws {
    let t = try TrustHome()
    try ExampleBuilder.make(home: t.home)
    let built = try t.cairn(["build", "site", "--path", packageRoot + "/examples/apps/static-site", "--builder", ExampleBuilder.name,
                             "--sign", "--key", t.key])
    try #require(built.status == 0, "\(built.stderr)")
    let before = try storeDigest(t.home + "/store", "site:latest")
    try writeFile(t.tmp.path + "/patch/etc/run-image-patch", "2\n")
    let updated = try t.cairn(["import", t.tmp.path + "/patch", "tiny/run:latest", "--base", "tiny/run:latest"])
    try #require(updated.status == 0, "\(updated.stderr)")
    let runDigest = try storeDigest(t.home + "/store", "tiny/run:latest")
    // Signing set by $CAIRN_HOME/config.toml instead of flags.
    try writeFile(t.home + "/config.toml", "[trust]\nsign = true\nkey = \"\(t.key)\"\n")
    let rebased = try t.cairn(["rebase", "site"])
    try #require(rebased.status == 0, "\(rebased.stdout)\(rebased.stderr)")
    #expect(rebased.stdout.contains("signed, provenance attested"), "\(rebased.stdout)")
    let after = try storeDigest(t.home + "/store", "site:latest")
    #expect(after != before)
    let verified = try t.cairn(["verify", "site", "--key", t.pub])
    #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
    // The rebase moved site:latest: the old image's signature names went with it (as prune
    // would remove them), the new image's are there.
    let artifacts = try t.cairn(["images", "--all"]).stdout.split(separator: "\n").filter { $0.contains(".sig") || $0.contains(".att") }
    #expect(artifacts.count == 2 && artifacts.allSatisfy { $0.contains("sha256-" + after.dropFirst(7)) }, "\(artifacts)")

    let statement = try #require(try statements(store: t.home + "/store", "site:sha256-\(after.dropFirst(7)).att").lines
        .first { $0["predicateType"] as? String == "https://slsa.dev/provenance/v1" }?["statement"] as? [String: Any])
    let valid = try run(["python3", "-c", statementValidator], stdin: try JSONSerialization.data(withJSONObject: statement))
    #expect(valid.stdout == "valid\n", "\(valid.stdout)\(valid.stderr)")
    let predicate = statement["predicate"] as? [String: Any]
    #expect((predicate?["buildDefinition"] as? [String: Any])?["buildType"] as? String == "https://cairn.dev/provenance/rebase/v1")
    let deps = (predicate?["buildDefinition"] as? [String: Any])?["resolvedDependencies"] as? [[String: Any]] ?? []
    #expect(deps.contains { $0["name"] as? String == "previous-image" && ($0["digest"] as? [String: String])?["sha256"] == String(before.dropFirst(7)) })
    #expect(deps.contains { $0["name"] as? String == "run-image" && ($0["digest"] as? [String: String])?["sha256"] == String(runDigest.dropFirst(7)) },
            "\(deps)")
    let byproducts = (predicate?["runDetails"] as? [String: Any])?["byproducts"] as? [[String: Any]] ?? []
    let manifest = byproducts.first { $0["name"] as? String == "manifest" }
    #expect((manifest?["digest"] as? [String: String])?["sha256"] == String(after.dropFirst(7)))
    #expect((manifest?["annotations"] as? [String: Any])?["previousDigest"] as? String == before)
}

/// A buildpack's `[[metadata.dependencies]]` (id, version, uri, sha256, as Paketo's buildpacks
/// list what they download) appear in the build's provenance and in its SBOM attestation.
@Test(.enabled(if: geteuid() == 0, "cairn build runs its sandbox as root"))
func buildpackDependenciesAreInTheProvenanceAndTheSBOM() throws {
    let t = try TrustHome()
    let bp = t.tmp.path + "/static-site"
    let sha = String(repeating: "ab", count: 32)
    _ = try sh("cp -a '\(packageRoot)/examples/buildpacks/static-site' '\(bp)'")
    // The buildpack ships one of its dependencies as a file in its launch layer (the other it
    // would unpack: not present as a file).
    _ = try sh("printf 'echo \"a vendored archive\" > \"$layers/httpd/tool-2.0.tgz\"\\n' >> '\(bp)/bin/build'")
    let toolSHA = try sh("printf 'a vendored archive\\n' | sha256sum | cut -d' ' -f1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    let descriptor = try String(contentsOfFile: bp + "/buildpack.toml", encoding: .utf8)
    func dependencies(toolSHA: String) -> String {
        descriptor + """

            [[metadata.dependencies]]
            id = "busybox-httpd"
            version = "1.36.1"
            uri = "https://example.com/busybox-1.36.1.tgz"
            sha256 = "\(sha)"

            [[metadata.dependencies]]
            id = "tool"
            version = "2.0"
            uri = "https://example.com/dist/tool-2.0.tgz"
            checksum = "sha256:\(toolSHA)"
            """
    }
    try writeFile(bp + "/buildpack.toml", dependencies(toolSHA: toolSHA))
    try writeTinyBuilderConfig(t.tmp.path + "/builder.toml", buildpack: bp, id: "examples/static-site")
    #expect(try t.cairn(["builder", "create", "deps-builder", "--config", t.tmp.path + "/builder.toml"]).status == 0)
    let built = try t.cairn(["build", "site", "--path", packageRoot + "/examples/apps/static-site", "--builder", "deps-builder", "--sign", "--key", t.key])
    try #require(built.status == 0, "\(built.stderr)")
    let digest = try storeDigest(t.home + "/store", "site:latest")
    let lines = try statements(store: t.home + "/store", "site:sha256-\(digest.dropFirst(7)).att").lines
    let provenance = lines.first { $0["predicateType"] as? String == "https://slsa.dev/provenance/v1" }?["statement"] as? [String: Any]
    let deps = ((provenance?["predicate"] as? [String: Any])?["buildDefinition"] as? [String: Any])?["resolvedDependencies"] as? [[String: Any]] ?? []
    let dep = deps.first { $0["name"] as? String == "dependency busybox-httpd@1.36.1" }
    #expect(dep?["uri"] as? String == "https://example.com/busybox-1.36.1.tgz" && (dep?["digest"] as? [String: String])?["sha256"] == sha, "\(deps)")
    let sbom = lines.first { $0["predicateType"] as? String == "https://cyclonedx.org/bom" }?["statement"] as? [String: Any]
    let components = (sbom?["predicate"] as? [String: Any])?["components"] as? [[String: Any]] ?? []
    let component = components.first { $0["name"] as? String == "busybox-httpd" && $0["version"] as? String == "1.36.1" }
    #expect((component?["hashes"] as? [[String: String]])?.first?["content"] == sha, "\(components)")

    // --deps: the vendored file matches what the provenance records; the unpacked one is said to
    // be absent as a file. A buildpack whose recorded digest is wrong fails verification by name.
    let checked = try t.cairn(["verify", "site", "--key", t.pub, "--deps"])
    #expect(checked.status == 0 && checked.stdout.contains("dependency tool@2.0: present at") && checked.stdout.contains("sha256 matches")
            && checked.stdout.contains("dependency busybox-httpd@1.36.1: not present as a file"), "\(checked.stdout)\(checked.stderr)")
    try writeFile(bp + "/buildpack.toml", dependencies(toolSHA: String(repeating: "0", count: 64)))
    #expect(try t.cairn(["builder", "create", "deps-builder", "--config", t.tmp.path + "/builder.toml"]).status == 0)
    let rebuilt = try t.cairn(["build", "site", "--path", packageRoot + "/examples/apps/static-site", "--builder", "deps-builder", "--sign", "--key", t.key])
    try #require(rebuilt.status == 0, "\(rebuilt.stderr)")
    let wrong = try t.cairn(["verify", "site", "--key", t.pub, "--deps"])
    #expect(wrong.status != 0 && wrong.stderr.contains("dependency tool@2.0: present at") && wrong.stderr.contains("but the provenance records 0000"),
            "\(wrong.stdout)\(wrong.stderr)")
}

/// A signed rebuild moves the image's name to a new digest: the old digest's `.sig` and `.att`
/// names go in the same index update (nothing else names that image), so index.json does not
/// grow by two names per signed build until `cairn prune`; the new image's verify.
@Test(.enabled(if: geteuid() == 0, "cairn build runs its sandbox as root"))
func aSignedRebuildRetiresTheOldImagesSignatureNames() throws {
    let t = try TrustHome()
    try ExampleBuilder.make(home: t.home)
    let app = t.tmp.sub("site")
    _ = try sh("cp -a '\(packageRoot)/examples/apps/static-site/.' '\(app)'")
    let artifacts = { try t.cairn(["images", "--all"]).stdout.split(separator: "\n").filter { $0.contains(".sig") || $0.contains(".att") } }
    for round in 1...2 {
        try writeFile(app + "/public/round.txt", "\(round)\n")
        let built = try t.cairn(["build", "site", "--path", app, "--builder", ExampleBuilder.name, "--sign", "--key", t.key])
        try #require(built.status == 0, "\(built.stdout)\(built.stderr)")
    }
    let digest = try storeDigest(t.home + "/store", "site:latest")
    let names = try artifacts()
    #expect(names.count == 2 && names.allSatisfy { $0.contains("sha256-" + digest.dropFirst(7)) }, "\(names)")
    let verified = try t.cairn(["verify", "site", "--key", t.pub])
    #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
}

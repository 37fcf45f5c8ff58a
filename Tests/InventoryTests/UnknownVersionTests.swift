import CairnBasics
import Foundation
import Testing
import TestSupport
@testable import Inventory

/// Issue 39, never clean when unsure: whether a version is a version of its ecosystem is
/// decided as the tool that defines the ecosystem decides it: `dpkg --validate-version` for
/// Debian, `packaging.version.Version` for PEP 440; generated versions and mutations of them
/// (spaces, `_`, `!`, a leading letter, colons, non-ASCII), 0 disagreements.
@Test(.requires("dpkg", "python3"))
func versionValidityAgreesWithDpkgAndPackaging() throws {
    var gen = VersionGenerator(rng: SplitMix64(state: 4039))
    let badBits = ["_", " ", "a", ":", "-", "!", "~", "+", ".", "0", "é", "::", "--", "v"]
    func mutated(_ make: (inout VersionGenerator) -> String) -> String {
        var v = Array(make(&gen))
        for _ in 0..<gen.rng.below(3) {
            v.insert(contentsOf: gen.pick(badBits), at: gen.rng.below(v.count + 1))
        }
        return String(v)
    }
    let debian = (0..<3_000).map { _ in mutated { $0.debian() } }
    let pep440 = (0..<3_000).map { _ in mutated { $0.pep440() } }

    let dir = TempDir("version-validity")
    try writeFile(dir.path + "/debian", debian.joined(separator: "\n") + "\n")
    try writeFile(dir.path + "/pep440", pep440.joined(separator: "\n") + "\n")
    let dpkg = try sh("""
        while IFS= read -r v; do
          if dpkg --validate-version -- "$v" >/dev/null 2>&1; then echo 1; else echo 0; fi
        done < debian
        """, cwd: dir.path)
    let packaging = try sh("""
        python3 -c '
        from packaging.version import Version, InvalidVersion
        for line in open("pep440", encoding="utf-8"):
            try:
                Version(line.rstrip("\\n")); print(1)
            except InvalidVersion:
                print(0)
        '
        """, cwd: dir.path)
    for (name, versions, result, ecosystem) in [("dpkg", debian, dpkg, Ecosystem.debian), ("packaging", pep440, packaging, .pypi)] {
        let valid = result.stdout.split(separator: "\n").map { $0 == "1" }
        #expect(valid.count == versions.count, "\(name) answered \(valid.count) of \(versions.count): \(result.stderr)")
        var wrong: [String] = []
        for (v, ok) in zip(versions, valid) where (ecosystem.invalidVersionReason(v) == nil) != ok {
            wrong.append("\"\(v)\": \(name) \(ok ? "valid" : "invalid"), Cairn \(ecosystem.invalidVersionReason(v) ?? "valid")")
        }
        #expect(wrong.isEmpty, "\(wrong.count) of \(versions.count) disagree with \(name): \(wrong.prefix(15))")
        let invalid = valid.filter { !$0 }.count
        #expect(invalid > versions.count / 10 && invalid < versions.count * 9 / 10, "\(name): \(invalid) invalid of \(versions.count)")
        print("validity: \(versions.count) \(ecosystem.rawValue) versions against \(name), \(invalid) invalid, \(wrong.count) disagreements")
    }
}

/// A version its ecosystem does not accept, and a package of an ecosystem Cairn cannot order,
/// are `unknown` for an advisory whose range needs the order, with the reason, on both
/// databases; what can be told exactly (a listed version, SEMVER ranges) still is.
@Test(arguments: backends) func unorderableVersionsAreUnknownNotClean(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    func app(_ digest: String, _ packages: [(String, String, String)]) -> ImageRecord {
        var r = InventoryFixture.app(digest, flask: "2.2.0", bp: "1.0.0", run: nil)
        r.packages = packages.map { .init(package: PackageRecord(name: $0.0, version: $0.1, purl: $0.2), buildpack: "tests/x", layer: "deps") }
        return r
    }
    func advisory(_ id: String, _ ecosystem: String, _ name: String, type: String = "ECOSYSTEM", fixed: String, versions: [String]? = nil) -> OSVRecord {
        OSVRecord(id: id, affected: [.init(package: .init(ecosystem: ecosystem, name: name),
                                           ranges: [.init(type: type, events: [.init(introduced: "1.0.0"), .init(fixed: fixed)])], versions: versions)])
    }
    let run = try f.inventory.beginRun(source: "test")
    try f.inventory.add(app("sha256:a", [("flask", "2.2.0+local build", "pkg:pypi/flask@2.2.0+local%20build"),
                                         ("rack", "2.2.3", "pkg:gem/rack@2.2.3"), ("serde", "1.0.5", "pkg:cargo/serde@1.0.5"),
                                         ("left-pad", "1.3.0", "pkg:npm/left-pad@1.3.0")]),
                        location: "store", names: ["a"], run: run)
    try f.inventory.importAdvisories([
        advisory("GHSA-flask", "PyPI", "flask", fixed: "2.3.2"),
        advisory("GHSA-rack", "RubyGems", "rack", fixed: "2.2.8"),
        advisory("GHSA-rack-listed", "RubyGems", "rack", fixed: "2.2.8", versions: ["2.2.3"]),
        advisory("RUSTSEC-serde", "crates.io", "serde", type: "SEMVER", fixed: "1.0.9"),
        advisory("RUSTSEC-serde-old", "crates.io", "serde", type: "SEMVER", fixed: "1.0.2"),
        advisory("GHSA-left-pad", "npm", "left-pad", fixed: "1.2.0"),
    ])
    let findings = try f.inventory.vulnerabilities().filter { $0.image == "a" }
    let by = Dictionary(findings.map { ($0.advisory ?? "", $0) }, uniquingKeysWith: { a, _ in a })
    #expect(by["GHSA-flask"]?.status == "unknown")
    #expect(by["GHSA-flask"]?.reason?.contains("is not a PEP 440 version") == true, "\(by["GHSA-flask"]?.reason ?? "none")")
    #expect(by["GHSA-rack"]?.status == "unknown")
    #expect(by["GHSA-rack"]?.reason?.contains("cannot order RubyGems versions") == true)
    #expect(by["GHSA-rack-listed"].map { $0.status == nil } == true, "a listed version is affected, for sure")
    #expect(by["RUSTSEC-serde"].map { $0.status == nil && $0.fixed == "1.0.9" } == true, "SEMVER ranges are exact")
    #expect(by["RUSTSEC-serde-old"] == nil && by["GHSA-left-pad"] == nil, "fixed before the installed version")
    // Asked for by id: still unknown (the image, recorded without a run image, is unknown too).
    let asked = try f.inventory.vulnerabilities(id: "GHSA-rack")
    #expect(asked.filter { $0.advisory == "GHSA-rack" }.map(\.status) == ["unknown"])
    #expect(asked.allSatisfy { $0.status == "unknown" })
}

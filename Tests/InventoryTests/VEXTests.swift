import Foundation
import Testing
import TestSupport
@testable import Inventory

/// VEX (issue 39): the statements Cairn makes of an indexed image, written as OpenVEX 0.2.0 and
/// CycloneDX 1.5, checked by others' code: CycloneDX against its JSON schema (cyclonedx-python-lib's
/// strict validator), OpenVEX read back by lib4vex's parser and checked against the rules of
/// OpenVEX's schema (required fields, the status enum, an action for `affected`); then VEX from
/// elsewhere applied to `vulns`, on both databases.
@Test(.requires("python3"), arguments: backends) func vexDocumentsAreWhatVerifiersReadAndAreApplied(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    try f.index(advisoriesFirst: true)
    let (subject, statements) = try f.inventory.vexStatements(image: "a:latest")
    #expect(subject.digest == "sha256:a" && subject.purl == "pkg:oci/a@sha256%3Aa")
    #expect(statements.map(\.vulnerability) == ["CVE-2023-30861", "CVE-2099-0001"], "the CVE as the name")
    #expect(statements[0].aliases == ["GHSA-m2qf-hxjv-5gpq"] && statements[0].subcomponent == "pkg:pypi/Flask@2.2.0")
    #expect(statements[1].subcomponent == "pkg:deb/debian/libfoo1@1.0-1", "a run image package: a purl made from its ecosystem")
    #expect(statements.allSatisfy { $0.status == .affected && ($0.detail ?? "").contains("or later") })
    #expect(throws: InventoryError.self) { try f.inventory.vexStatements(image: "nothing:here") }

    let dir = TempDir("vex")
    let checked = try checkVEXDocuments(statements, subject: subject, in: dir.path)
    #expect(checked.stdout.contains("cyclonedx: valid"), "\(checked.stdout)\(checked.stderr)")
    #expect(checked.stdout.contains("lib4vex: [('CVE-2023-30861', 'affected'), ('CVE-2099-0001', 'affected')]"), "\(checked.stdout)\(checked.stderr)")
    #expect(checked.stdout.contains("openvex rules: kept") && checked.stdout.contains("vexipy: valid"), "\(checked.stdout)\(checked.stderr)")

    // VEX from elsewhere: flask in image a is not affected (by its GHSA id, an OpenVEX 0.2.0
    // statement on the package); in CycloneDX, the Debian one is resolved.
    let openvex = try VEXReader.read(Data("""
        {"@context": "https://openvex.dev/ns/v0.2.0", "@id": "urn:x", "author": "vendor", "timestamp": "2026-12-01T00:00:00Z", "version": 1,
         "statements": [{"vulnerability": {"name": "GHSA-m2qf-hxjv-5gpq"}, "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
                         "products": [{"@id": "pkg:oci/a@sha256%3Aa", "subcomponents": [{"@id": "pkg:pypi/flask@2.2.0"}]}]}]}
        """.utf8), path: "vendor.json")
    let all = try f.inventory.vulnerabilities().filter { $0.status == nil }
    let applied = try f.inventory.applyVEX(all, openvex)
    #expect(applied.notAffected == 1 && applied.kept.map { $0.advisory ?? "" } == ["DSA-9999-1"])
    let cdx = try VEXReader.read(try Data(contentsOf: URL(fileURLWithPath: dir.path + "/doc.cdx.json")), path: "doc.cdx.json")
    #expect(cdx.count == 2 && cdx.allSatisfy { $0.status == .affected }, "our own document reads back")
    let resolved = try VEXReader.read(Data("""
        {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [{"bom-ref": "foo", "type": "library", "name": "libfoo1", "purl": "pkg:deb/debian/libfoo1"}],
         "vulnerabilities": [{"id": "CVE-2099-0001", "analysis": {"state": "resolved"}, "affects": [{"ref": "foo"}]}]}
        """.utf8), path: "cdx.json")
    #expect(try f.inventory.applyVEX(all, resolved).kept.map { $0.advisory ?? "" } == ["GHSA-m2qf-hxjv-5gpq"], "by CVE alias, any version")
    #expect(throws: InventoryError.self) { try VEXReader.read(Data("{\"statements\": []}".utf8), path: "x.json") }
}

/// Writes `statements` as OpenVEX and CycloneDX into `dir` and checks them with others' code:
/// CycloneDX against its JSON schema (cyclonedx-python-lib's strict validator), OpenVEX read by
/// lib4vex, by vexipy's model of the specification (IRIs, status and justification rules), and
/// checked against the rules of OpenVEX's schema.
func checkVEXDocuments(_ statements: [VEXStatement], subject: (name: String, digest: String, purl: String), in dir: String) throws -> RunResult {
    try VEXDocument.openVEX(statements, author: "Test", tooling: "cairn test").write(to: URL(fileURLWithPath: dir + "/doc.openvex.json"))
    try VEXDocument.cycloneDX(statements, image: subject, tooling: "test").write(to: URL(fileURLWithPath: dir + "/doc.cdx.json"))
    return try sh("""
        python3 - <<'PY'
        import json
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator
        error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open("doc.cdx.json").read())
        print("cyclonedx:", "valid" if error is None else error)
        from lib4vex.parser import VEXParser
        parser = VEXParser(vex_type="openvex")
        parser.parse("doc.openvex.json")
        print("lib4vex:", sorted((v["id"], v["status"]) for v in parser.get_vulnerabilities()))
        doc = json.load(open("doc.openvex.json"))
        allowed = {"@context", "@id", "author", "role", "timestamp", "last_updated", "version", "tooling", "statements"}
        problems = [k for k in ["@context", "@id", "author", "timestamp", "version", "statements"] if k not in doc]
        problems += [k for k in doc if k not in allowed]
        for s in doc["statements"]:
            problems += [] if s["status"] in ("not_affected", "affected", "fixed", "under_investigation") else ["status"]
            problems += [] if s["status"] != "affected" or s.get("action_statement") else ["action_statement"]
            justifications = ("component_not_present", "vulnerable_code_not_present", "vulnerable_code_not_in_execute_path",
                              "vulnerable_code_cannot_be_controlled_by_adversary", "inline_mitigations_already_exist")
            problems += [] if s["status"] != "not_affected" or s.get("justification") in justifications or s.get("impact_statement") else ["justification"]
            problems += [] if "name" in s["vulnerability"] and set(s["vulnerability"]) <= {"@id", "name", "description", "aliases"} else ["vulnerability"]
            problems += [] if all(set(p) <= {"@id", "identifiers", "hashes", "subcomponents"} for p in s["products"]) else ["products"]
        print("openvex rules:", problems or "kept")
        from vexipy import Document
        try:
            Document.from_json(open("doc.openvex.json").read())
            print("vexipy: valid")
        except Exception as e:
            print("vexipy:", e)
        PY
        """, cwd: dir)
}

/// Issue 39: a package only the build used (the image's build-time SBOM lists it, no layer of the
/// image and not its run image contains it) is never a finding; the image's VEX says
/// `not_affected` with `vulnerable_code_not_present` for it, and still `affected` for a package
/// the build-time SBOM lists that is also in a launch layer. The documents are what verifiers read.
@Test(.requires("python3"), arguments: backends) func buildOnlyPackagesAreNotAffected(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    let setuptools = OSVRecord(
        id: "GHSA-cx63-2mw6-8hw5", aliases: ["CVE-2024-6345"], summary: "setuptools code injection via download functions",
        affected: [.init(package: .init(ecosystem: "PyPI", name: "setuptools"),
                         ranges: [.init(type: "ECOSYSTEM", events: [.init(introduced: "0"), .init(fixed: "70.0.0")])])])
    try f.inventory.importAdvisories([InventoryFixture.flaskAdvisory, setuptools])
    var app = InventoryFixture.app("sha256:c", flask: "2.2.0", bp: "1.0.0", run: nil)
    app.buildPackages = [
        .init(package: PackageRecord(name: "setuptools", version: "65.5.0", purl: "pkg:pypi/setuptools@65.5.0"), buildpack: "tests/python", layer: ""),
        .init(package: PackageRecord(name: "Flask", version: "2.2.0", purl: "pkg:pypi/Flask@2.2.0"), buildpack: "tests/python", layer: ""),
    ]
    try f.inventory.add(app, location: "store", names: ["c:latest"], run: try f.inventory.beginRun(source: "test"))
    #expect(try f.inventory.vulnerabilities().filter { $0.status == nil }.compactMap(\.advisory) == ["GHSA-m2qf-hxjv-5gpq"],
            "a build-only package is no finding")
    let (subject, statements) = try f.inventory.vexStatements(image: "c:latest")
    #expect(statements.map { "\($0.vulnerability) \($0.status.rawValue) \($0.subcomponent ?? "")" }
            == ["CVE-2023-30861 affected pkg:pypi/Flask@2.2.0", "CVE-2024-6345 not_affected pkg:pypi/setuptools@65.5.0"])
    #expect(statements.last?.justification == "vulnerable_code_not_present" && statements.last?.aliases == ["GHSA-cx63-2mw6-8hw5"])
    let dir = TempDir("vex-build")
    let checked = try checkVEXDocuments(statements, subject: subject, in: dir.path)
    #expect(checked.stdout.contains("cyclonedx: valid"), "\(checked.stdout)\(checked.stderr)")
    #expect(checked.stdout.contains("lib4vex: [('CVE-2023-30861', 'affected'), ('CVE-2024-6345', 'not_affected')]"), "\(checked.stdout)\(checked.stderr)")
    #expect(checked.stdout.contains("openvex rules: kept") && checked.stdout.contains("vexipy: valid"), "\(checked.stdout)\(checked.stderr)")
}

import Foundation
import Testing
import CairnPlatform
import TestSupport

/// `cairn sbom` and `cairn audit` over images built from the examples.
@Test func sbomAndAuditFindImagesByRunImageBuildpackAndPackage() throws {
    // A home of its own: this test changes the run image and counts the app images.
    let tmp = TempDir("audit")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    for (name, app) in [("site", "static-site"), ("hello", "hello-procfile")] {
        let r = try cairnAt(["build", name, "--path", packageRoot + "/examples/apps/" + app, "--builder", ExampleBuilder.name], home: home)
        try #require(r.status == 0, "\(r.stdout)\(r.stderr)")
    }

    // The static-site buildpack writes CycloneDX SBOMs for its httpd layer and for the app.
    let sbom = try cairnAt(["sbom", "site"], home: home)
    #expect(sbom.status == 0, "\(sbom.stderr)")
    #expect(sbom.stdout.contains("examples_static-site:httpd  sbom.cdx.json  1 component") && sbom.stdout.contains("busybox-httpd  from the run image"), "\(sbom.stdout)")
    #expect(sbom.stdout.contains("examples_static-site (launch)  sbom.cdx.json"), "\(sbom.stdout)")
    let out = tmp.path + "/sboms"
    #expect(try cairnAt(["sbom", "site", "--output", out], home: home).status == 0)
    let saved = try String(contentsOfFile: out + "/layers/sbom/launch/examples_static-site/httpd/sbom.cdx.json", encoding: .utf8)
    #expect(saved.contains("\"bomFormat\": \"CycloneDX\""), "\(saved)")
    let none = try cairnAt(["sbom", "hello"], home: home)
    #expect(none.status == 1 && none.stderr.contains("hello has no SBOM layer"), "\(none.stderr)")

    func audit(_ args: [String]) throws -> [String] {
        let r = try cairnAt(["audit", "--format", "json"] + args, home: home)
        guard r.status == 0 else { throw TestSupportError(r.stderr) }
        let list = try JSONSerialization.jsonObject(with: r.stdoutData) as! [[String: Any]]
        return list.map { ($0["record"] as! [String: Any])["image"] as! String }.sorted()
    }
    // Only app images count (not the builder or the stack's images).
    #expect(try audit([]) == ["hello:latest", "site:latest"])
    #expect(try audit(["--package", "busybox-httpd"]) == ["site:latest"])
    #expect(try audit(["--package", "busybox-httpd@2.0"]) == [])
    #expect(try audit(["--buildpack", "examples/procfile@<0.2.0"]) == ["hello:latest"])
    #expect(try audit(["--buildpack", "examples/procfile@0.0.1"]) == [])
    #expect(try audit(["--run-image", "tiny/run"]) == ["hello:latest", "site:latest"])
    #expect(try audit(["--outdated"]) == [])
    // The run image's packages, from the dpkg status `cairn stack create --packages` writes.
    #expect(try audit(["--package", "busybox-static"]) == ["hello:latest", "site:latest"])
    #expect(try audit(["--package", "busybox-static@<1"]) == [], "the version has an epoch (1:…)")
    #expect(try audit(["--package", "busybox-static@<2", "--buildpack", "examples/static-site"]) == [], "the epoch counts: 1:1.x > 2")
    #expect(try audit(["--package", "busybox-static@<1:2", "--buildpack", "examples/static-site"]) == ["site:latest"])
    // In dpkg's order (the inventory's comparator, issue 39): `~` sorts before the end, `+` after it.
    let scanned = try JSONSerialization.jsonObject(with: cairnAt(["audit", "--format", "json", "--package", "busybox-static"], home: home).stdoutData) as! [[String: Any]]
    let installed = try #require(((scanned.first?["record"] as? [String: Any])?["packages"] as? [[String: Any]])?
        .first { $0["name"] as? String == "busybox-static" }?["version"] as? String)
    #expect(try audit(["--package", "busybox-static@<\(installed)~"]) == [], "\(installed)~ < \(installed)")
    #expect(try audit(["--package", "busybox-static@<\(installed)+x"]) == ["hello:latest", "site:latest"], "\(installed) < \(installed)+x")
    let why = try cairnAt(["audit", "--package", "bash-static"], home: home)
    #expect(why.stdout.contains("package bash-static@") && why.stdout.contains("(run image)"), "\(why.stdout)")

    // A run image update makes both outdated; a rebase brings one back.
    let patch = tmp.path + "/patch"
    try FileManager.default.createDirectory(atPath: patch + "/etc", withIntermediateDirectories: true)
    try writeFile(patch + "/etc/cairn-patch", "patched\n")
    #expect(try cairnAt(["import", patch, "tiny/run:latest", "--base", "tiny/run:latest"], home: home).status == 0)
    #expect(try audit(["--outdated"]) == ["hello:latest", "site:latest"])
    #expect(try cairnAt(["rebase", "site"], home: home).status == 0)
    #expect(try audit(["--outdated"]) == ["hello:latest"])
    let table = try cairnAt(["audit", "--outdated"], home: home)
    #expect(table.stdout.contains("hello:latest") && table.stdout.contains("outdated") && table.stderr.contains("1 of 2 app images match"), "\(table.stdout)\(table.stderr)")

    let bad = try cairnAt(["audit", "--buildpack", "@1"], home: home)
    #expect(bad.status == 1 && bad.stderr.contains("expected NAME, NAME@VERSION or NAME@<VERSION"), "\(bad.stderr)")
}

@Test func versionConstraintsCompareNumbersAsNumbers() throws {
    let below = try VersionConstraint(parsing: "openssl@<3.0.10")
    #expect(below.matches(name: "openssl", version: "3.0.9"))
    #expect(below.matches(name: "openssl", version: "1.1.1w"))
    #expect(!below.matches(name: "openssl", version: "3.0.10"))
    #expect(!below.matches(name: "openssl", version: "3.0.10.1"))
    #expect(!below.matches(name: "openssl", version: nil), "an unknown version does not match a version constraint")
    #expect(!below.matches(name: "libssl", version: "1.0"))
    let exact = try VersionConstraint(parsing: "zlib@1.3")
    #expect(exact.matches(name: "zlib", version: "1.3") && !exact.matches(name: "zlib", version: "1.3.1"))
    #expect(try VersionConstraint(parsing: "zlib").matches(name: "zlib", version: nil))
    #expect(VersionConstraint.compare("1.10", "1.9") == 1 && VersionConstraint.compare("1.0.1", "1.0") == 1)
    #expect(VersionConstraint.compare("1.0-rc1", "1.0") == -1 && VersionConstraint.compare("2.0", "2.0") == 0)
    #expect(throws: (any Error).self) { try VersionConstraint(parsing: "zlib@") }
    #expect(throws: (any Error).self) { try VersionConstraint(parsing: "@1") }
}

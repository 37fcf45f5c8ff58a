import Foundation
import OCI
import Testing
import TestSupport

/// The audit inventory over real images: two apps built with tests/flask (Flask 2.2.0 and
/// 2.3.3) on run image v1 and v2 (libfoo1 from source foo 1.0-1 and 1.0-2), OSV advisories for
/// both, and the plan applied with `cairn rebase`.
@Test(arguments: PostgresServer.available ? ["sqlite", "postgres"] : ["sqlite"])
func theInventoryFindsVulnerableImagesAndThePlanFixesThem(database: String) throws {
    let tmp = TempDir("inventory")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    // The default SQLite file, or a database on a PostgreSQL server of this test's own.
    let server = database == "postgres" ? try PostgresServer() : nil
    defer { server?.stop() }
    let databaseArgs = try server.map { ["--database", try $0.createDatabase("fleet")] } ?? []
    func cairn(_ args: [String]) throws -> RunResult {
        let inventoryCommand = args.first == "audit" && args.count > 1 && args[1] != "scan"
        let r = try cairnAt(args + (inventoryCommand ? databaseArgs : []), home: home)
        guard r.status == 0 else { throw TestSupportError("cairn \(args.joined(separator: " ")): \(r.stdout)\(r.stderr)") }
        return r
    }
    func json(_ args: [String]) throws -> [[String: Any]] {
        try JSONSerialization.jsonObject(with: cairn(["audit"] + args + ["--format", "json"]).stdoutData) as! [[String: Any]]
    }
    /// A run image version: a dpkg status.d entry for libfoo1 on top of the current run image.
    func runImage(_ version: String) throws {
        let dir = tmp.path + "/run-" + version
        try FileManager.default.createDirectory(atPath: dir + "/var/lib/dpkg/status.d", withIntermediateDirectories: true)
        try writeFile(dir + "/var/lib/dpkg/status.d/libfoo1", "Package: libfoo1\nSource: foo\nVersion: \(version)\nStatus: install ok installed\nArchitecture: amd64\n")
        _ = try cairn(["import", dir, "tiny/run:latest", "--base", "tiny/run:latest"])
    }
    func app(_ name: String, flask: String) throws {
        let dir = tmp.path + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try writeFile(dir + "/requirements.txt", "flask==\(flask)\n")
        _ = try cairn(["build", name, "--path", dir, "--builder", ExampleBuilder.name, "--buildpack", fixturesRoot + "/buildpacks/flask"])
    }
    try runImage("1.0-1")
    try app("old-flask", flask: "2.2.0")
    let first = try cairn(["audit", "index"])
    #expect(first.stdout.contains("1 indexed"), "\(first.stdout)")
    try runImage("1.0-2")
    try app("new-flask", flask: "2.3.3")

    let labels = ((try inspectJSON("tiny/run:latest", home: home)["config"] as? [String: Any])?["config"] as? [String: Any])?["Labels"] as? [String: String] ?? [:]
    let release = try #require(labels["io.buildpacks.base.distro.version"])
    let advisories = tmp.path + "/osv"
    try FileManager.default.createDirectory(atPath: advisories, withIntermediateDirectories: true)
    try writeFile(advisories + "/GHSA-m2qf-hxjv-5gpq.json", """
        {"id": "GHSA-m2qf-hxjv-5gpq", "aliases": ["CVE-2023-30861"], "summary": "Flask session cookie",
         "database_specific": {"severity": "HIGH"},
         "affected": [{"package": {"ecosystem": "PyPI", "name": "Flask"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.3.2"}]}]}]}
        """)
    try writeFile(advisories + "/DSA-9999-1.json", """
        {"id": "DSA-9999-1", "affected": [{"package": {"ecosystem": "Debian:\(release)", "name": "foo"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-2"}]}]}]}
        """)
    // pip: only in the build-time SBOM tests/flask writes (kept beside each image).
    try writeFile(advisories + "/GHSA-mq26-g339-26xf.json", """
        {"id": "GHSA-mq26-g339-26xf", "aliases": ["CVE-2023-5752"], "summary": "pip Mercurial configuration injection",
         "affected": [{"package": {"ecosystem": "PyPI", "name": "pip"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "23.3"}]}]}]}
        """)
    #expect(try cairn(["audit", "advisories", "import", advisories]).stdout.contains("3 advisories imported"))
    // Incremental: old-flask is known by digest, the rest is read.
    let second = try cairn(["audit", "index", "--whole-store", "--store", home + "/store"])
    #expect(second.stdout.contains("1 indexed") && second.stdout.contains("1 already known"), "\(second.stdout)")

    let vulns = try json(["vulns"]).map { "\($0["image"]!) \($0["advisory"]!) \($0["package"]!) \($0["version"]!) \($0["fixed"]!) \($0["buildpack"] ?? "-") \($0["layer"] ?? "-")" }
    #expect(vulns == ["old-flask:latest DSA-9999-1 libfoo1 1.0-1 1.0-2 - -",
                      "old-flask:latest GHSA-m2qf-hxjv-5gpq flask 2.2.0 2.3.2 tests/flask site-packages"], "\(vulns)")
    #expect(try json(["vulns", "--id", "CVE-2023-30861"]).count == 1)
    #expect(try json(["package", "flask", "--version", "<2.3.2"]).map { $0["image"] as! String } == ["old-flask:latest"])
    #expect(try json(["package", "pkg:pypi/flask"]).count == 2)
    #expect(try json(["buildpack", "tests/flask"]).count == 2)
    #expect(try json(["run-image", "--outdated"]).map { $0["image"] as! String } == ["old-flask:latest"])
    let csv = try cairn(["audit", "vulns", "--format", "csv"]).stdout
    #expect(csv.hasPrefix("image,advisory,severity,package,installed,fixed,from\n") && csv.contains("old-flask:latest,GHSA-m2qf-hxjv-5gpq,HIGH,flask,2.2.0,2.3.2,tests/flask:site-packages"), "\(csv)")

    // What users and scripts read, reviewed: the same on both databases.
    try Golden.expect("audit-vulns.json", try cairn(["audit", "vulns", "--format", "json"]).stdout, paths: [tmp.path: "<tmp>"])
    try Golden.expect("audit-vulns.txt", try cairn(["audit", "vulns"]).stdout)
    try Golden.expect("inspect-old-flask.txt", try cairn(["inspect", "old-flask"]).stdout)

    // Exploit data (issue 39): KEV as CISA publishes its CSV (quoted fields with commas), EPSS
    // gzipped with its comment line; --sort risk carries both.
    try writeFile(tmp.path + "/kev.csv", """
        cveID,vendorProject,product,vulnerabilityName,dateAdded,shortDescription,requiredAction,dueDate,knownRansomwareCampaignUse,notes,cwes
        CVE-2023-30861,Pallets,Flask,"Flask session, cookie",2026-11-02,"Cached, shared",Apply updates,2026-11-23,Unknown,,CWE-539

        """)
    try writeFile(tmp.path + "/epss.csv", "#model_version:v2025.03.14,score_date:2026-12-01T00:00:00+0000\ncve,epss,percentile\nCVE-2023-30861,0.97012,0.99901\n")
    _ = try sh("gzip -f epss.csv", cwd: tmp.path)
    let exploits = try cairn(["audit", "advisories", "import", "--kev", tmp.path + "/kev.csv", "--epss", tmp.path + "/epss.csv.gz"])
    #expect(exploits.stderr.contains("1 KEV entries imported") && exploits.stderr.contains("1 EPSS scores imported"), "\(exploits.stderr)")
    let risky = try json(["vulns", "--sort", "risk"])
    #expect(risky.first?["kev"] as? String == "2026-11-02" && risky.first?["epss"] as? String == "0.97012", "\(risky)")
    #expect(try cairn(["audit", "vulns", "--sort", "risk"]).stdout.contains("KEV"))

    // VEX (issue 39): written for an image, and a vendor's not_affected taken into account.
    let vex = try JSONSerialization.jsonObject(with: cairn(["audit", "vex", "old-flask:latest"]).stdoutData) as? [String: Any]
    let said = (vex?["statements"] as? [[String: Any]] ?? []).map { s in
        "\((s["vulnerability"] as? [String: Any])?["name"] ?? "") \(s["status"] ?? "") \(s["justification"] ?? "-")"
    }
    #expect(said.sorted() == ["CVE-2023-30861 affected -", "CVE-2023-5752 not_affected vulnerable_code_not_present", "DSA-9999-1 affected -"]
            && vex?["@context"] as? String == "https://openvex.dev/ns/v0.2.0", "the build-only pip is not affected: \(said)")
    _ = try cairn(["audit", "vex", "old-flask:latest", "--document", "cyclonedx", "--output", tmp.path + "/old-flask.cdx.json"])
    #expect(FileManager.default.fileExists(atPath: tmp.path + "/old-flask.cdx.json"))
    try writeFile(tmp.path + "/vendor.openvex.json", """
        {"@context": "https://openvex.dev/ns/v0.2.0", "@id": "urn:x", "author": "vendor", "timestamp": "2026-12-01T00:00:00Z", "version": 1,
         "statements": [{"vulnerability": {"name": "CVE-2023-30861"}, "status": "not_affected", "justification": "vulnerable_code_not_present",
                         "products": [{"@id": "pkg:pypi/flask@2.2.0"}]}]}
        """)
    let filtered = try cairn(["audit", "vulns", "--vex", tmp.path + "/vendor.openvex.json"])
    #expect(!filtered.stdout.contains("GHSA-m2qf-hxjv-5gpq") && filtered.stdout.contains("DSA-9999-1")
            && filtered.stderr.contains("1 left out as not affected or fixed per VEX"), "\(filtered.stdout)\(filtered.stderr)")

    // The plan: rebase for the Debian finding, a layer patch from new-flask for the Flask one.
    let patches = tmp.path + "/patches.json"
    let plan = try cairn(["audit", "plan", "--output", patches])
    #expect(plan.stdout.contains("old-flask:latest: rebase+patch") && plan.stdout.contains("$ cairn rebase old-flask:latest --run-image tiny/run:latest --layer-patches \(patches)"), "\(plan.stdout)")
    let file = try String(contentsOfFile: patches, encoding: .utf8)
    #expect(file.contains("\"patch-image\":\"new-flask:latest\"") && file.contains("\"layer\":\"site-packages\""), "\(file)")
    try Golden.expect("audit-plan.txt", plan.stdout, paths: [tmp.path: "<tmp>"])
    let dryRun = try cairn(["rebase", "old-flask:latest", "--run-image", "tiny/run:latest", "--layer-patches", patches, "--dry-run"])
    try Golden.expect("rebase-dry-run.txt", dryRun.stdout + dryRun.stderr, paths: [tmp.path: "<tmp>"])
    _ = try cairn(["rebase", "old-flask:latest", "--run-image", "tiny/run:latest", "--layer-patches", patches])
    let third = try cairn(["audit", "index"])
    #expect(third.stdout.contains("1 indexed"), "\(third.stdout)")
    #expect(try json(["vulns"]).isEmpty)
    #expect(try json(["run-image", "--outdated"]).isEmpty)
    let vexAfter = try cairn(["audit", "vex", "old-flask:latest"]).stdout
    #expect(vexAfter.contains("CVE-2023-5752") && vexAfter.contains("\"not_affected\""), "the build SBOM went with the rebase: \(vexAfter)")
    // Time (issue 39): re-indexing after the rebase closed old-flask's windows; the answer as of
    // a date before the first index run is empty, a bad date is named.
    let windows = try json(["exposure", "CVE-2023-30861"])
    #expect(windows.map { "\($0["image"]!) \($0["until"] != nil) \($0["fixedBy"] as? String == nil)" } == ["old-flask:latest true false"], "\(windows)")
    #expect(try json(["vulns", "--as-of", "2000-01-01"]).isEmpty)
    #expect(try cairnAt(["audit", "vulns", "--as-of", "yesterday"] + databaseArgs, home: home).stderr.contains("--as-of yesterday: expected a date"))
    #expect(try json(["package", "flask"]).map { "\($0["image"]!) \($0["version"]!)" } == ["new-flask:latest 2.3.3", "old-flask:latest 2.3.3"])
    // The patched image runs with the new layer.
    let ran = try cairn(["run", "old-flask"])
    #expect(ran.stdout.contains("__version__ = \"2.3.3\""), "\(ran.stdout)")

    if server == nil { #expect(FileManager.default.fileExists(atPath: home + "/audit.db")) }
    let bad = try cairnAt(["audit", "advisories", "import", tmp.path + "/patches.json"] + databaseArgs, home: home)
    #expect(bad.status == 1 && bad.stderr.contains("patches.json: not an OSV record: no id"), "\(bad.stderr)")
    let postgres = try cairnAt(["audit", "vulns", "--database", "postgres://u:secret@127.0.0.1:1/db"], home: home)
    #expect(postgres.status == 1 && !postgres.stderr.contains("secret"), "\(postgres.stderr)")
}

/// `cairn audit index --registry`: app images indexed from a real registry read manifests,
/// configs, the SBOM layer and the run image layers (for dpkg), never app or buildpack layers.
@Test(.requires("docker-registry"))
func theInventoryIndexesARegistryWithoutReadingAppLayers() throws {
    let tmp = TempDir("inventory-registry")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    let registry = try LocalRegistry()
    defer { registry.stop() }
    func cairn(_ args: [String]) throws -> RunResult {
        let r = try cairnAt(args, home: home)
        guard r.status == 0 else { throw TestSupportError("cairn \(args.joined(separator: " ")): \(r.stdout)\(r.stderr)") }
        return r
    }
    let app = tmp.path + "/app"
    try FileManager.default.createDirectory(atPath: app, withIntermediateDirectories: true)
    try writeFile(app + "/requirements.txt", "flask==2.2.0\n")
    try writeFile(app + "/big-app-file", String(repeating: "app bytes\n", count: 10_000))
    _ = try cairn(["build", "flask", "--path", app, "--builder", ExampleBuilder.name, "--buildpack", fixturesRoot + "/buildpacks/flask"])
    let insecure = ["--insecure-registry", registry.host]
    _ = try cairn(["push", "flask", "\(registry.host)/apps/flask:1"] + insecure)
    _ = try cairn(["push", "flask", "\(registry.host)/apps/flask:2"] + insecure)
    try writeFile(tmp.path + "/flask.json", """
        {"id": "GHSA-m2qf-hxjv-5gpq", "affected": [{"package": {"ecosystem": "PyPI", "name": "flask"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.3.2"}]}]}]}
        """)
    try writeFile(tmp.path + "/pip.json", """
        {"id": "GHSA-mq26-g339-26xf", "affected": [{"package": {"ecosystem": "PyPI", "name": "pip"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "23.3"}]}]}]}
        """)
    _ = try cairn(["audit", "advisories", "import", tmp.path + "/flask.json", tmp.path + "/pip.json"])
    let first = try cairn(["audit", "index", "--registry", "\(registry.host)/apps/flask"] + insecure)
    #expect(first.stdout.contains("registry: 2 images: 1 indexed, 1 already known"), "\(first.stdout)")
    #expect(!first.stdout.contains("store:"), "only the registry was asked for")
    let vulns = try JSONSerialization.jsonObject(with: cairn(["audit", "vulns", "--format", "json"]).stdoutData) as! [[String: Any]]
    #expect(vulns.map { "\($0["image"]!) \($0["location"]!) \($0["layer"]!)" } == [
        "\(registry.host)/apps/flask:1 registry site-packages", "\(registry.host)/apps/flask:2 registry site-packages"])
    // The build-time SBOM went with the push (its own tag) and was read from the registry: the
    // build-only pip is not affected.
    let vex = try cairn(["audit", "vex", "\(registry.host)/apps/flask:1"]).stdout
    #expect(vex.contains("GHSA-mq26-g339-26xf") && vex.contains("\"not_affected\"") && vex.contains("pkg:pypi/pip@23.0.1"), "\(vex)")
    let again = try cairn(["audit", "index", "--registry", "\(registry.host)/apps/flask"] + insecure)
    #expect(again.stdout.contains("2 already known"), "\(again.stdout)")

    // What was fetched: not the app layer, not the buildpack layer.
    let image = try ImageStore(root: home + "/store").resolve("flask")
    let label = try #require(image.config.config?.labels?["io.buildpacks.lifecycle.metadata"])
    let metadata = try JSONSerialization.jsonObject(with: Data(label.utf8)) as! [String: Any]
    let appDiffIDs = (metadata["app"] as! [[String: Any]]).map { $0["sha"] as! String }
    let bp = (metadata["buildpacks"] as! [[String: Any]]).first { $0["key"] as? String == "tests/flask" }
    let layerDiffID = ((bp?["layers"] as? [String: Any])?["site-packages"] as? [String: Any])?["sha"] as? String
    let diffIDs = image.config.rootfs.diffIDs.map(\.description)
    let skipped = (appDiffIDs + [layerDiffID ?? ""]).compactMap { d in diffIDs.firstIndex(of: d).map { image.manifest.layers[$0].digest } }
    #expect(skipped.count == appDiffIDs.count + 1)
    let cache = try ImageStore(root: home + "/audit-cache")
    for digest in skipped { #expect(!cache.hasBlob(digest), "\(digest) was downloaded") }
    #expect(cache.hasBlob(image.manifest.config.digest))
}

/// A malformed SBOM document (issue 17: not swallowed as "no packages"): `cairn audit index`
/// warns naming the image and the document and indexes the rest; `cairn sbom` fails naming it.
@Test func aMalformedSBOMIsNamedNotTakenForNoPackages() throws {
    let tmp = TempDir("bad-sbom")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    let bp = tmp.path + "/bad-sbom-bp"
    try writeFile(bp + "/buildpack.toml", """
        api = "0.10"
        [buildpack]
        id = "tests/bad-sbom"
        version = "0.0.1"
        sbom-formats = ["application/vnd.cyclonedx+json"]
        """)
    try writeFile(bp + "/bin/detect", "#!/bin/sh\nexit 0\n", mode: 0o755)
    try writeFile(bp + "/bin/build", "#!/bin/sh\nprintf '{\"bomFormat\": \"CycloneDX\", \"components\": [' > \"$CNB_LAYERS_DIR/launch.sbom.cdx.json\"\n", mode: 0o755)
    let app = tmp.path + "/app"
    _ = try sh("cp -a '\(packageRoot)/examples/apps/hello-procfile' '\(app)'")
    let build = try cairnAt(["build", "bad-sbom", "--path", app, "--builder", ExampleBuilder.name, "--buildpack", bp,
                             "--buildpack", "examples/procfile"], home: home)
    try #require(build.status == 0, "\(build.stdout.suffix(1500))\(build.stderr)")
    let index = try cairnAt(["audit", "index"], home: home)
    #expect(index.status == 0, "\(index.stderr)")
    #expect(index.stderr.contains("launch.sbom.cdx.json") || index.stderr.contains("sbom.cdx.json"), "\(index.stdout)\(index.stderr)")
    #expect(index.stderr.contains("not valid JSON") && index.stderr.contains("its packages are not indexed"), "\(index.stderr)")
    // Not taken for clean either: every answer lists it as unknown, with the document.
    let vulns = try cairnAt(["audit", "vulns", "--format", "json"], home: home)
    let listed = (try JSONSerialization.jsonObject(with: vulns.stdoutData) as? [[String: Any]] ?? []).filter { $0["image"] as? String == "bad-sbom:latest" }
    #expect(listed.count == 1 && listed[0]["status"] as? String == "unknown" && (listed[0]["reason"] as? String ?? "").contains("cannot be read"),
            "\(vulns.stdout)\(vulns.stderr)")
    let package = try cairnAt(["audit", "package", "anything"], home: home)
    #expect(package.stdout.contains("bad-sbom:latest") && package.stdout.contains("unknown: SBOM"), "\(package.stdout)")
    let sbom = try cairnAt(["sbom", "bad-sbom", "--format", "json"], home: home)
    #expect(sbom.status != 0 && sbom.stderr.contains("not valid JSON"), "\(sbom.stdout)\(sbom.stderr)")
}

/// `--database inventory.db`, a bare file name, is a file in the working directory.
@Test func aDatabaseGivenAsABareFileNameOpensInTheWorkingDirectory() throws {
    let tmp = TempDir("inventory-relative")
    let r = try run([cairnBinary, "audit", "vulns", "--database", "fleet.db"], cwd: tmp.path,
                    environment: ["CAIRN_HOME": tmp.path + "/home", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(FileManager.default.fileExists(atPath: tmp.path + "/fleet.db"))
}

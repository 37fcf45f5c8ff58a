import Foundation
import Testing
import TestSupport
@testable import Inventory

/// Every inventory test runs against SQLite and against a real PostgreSQL server.
let backends = PostgresServer.available ? ["sqlite", "postgres"] : ["sqlite"]

/// The inventory's answers from records alone (the end-to-end test indexes real images).
struct InventoryFixture {
    let dir: String
    let inventory: Inventory
    let server: PostgresServer?
    /// What `--database` would say.
    let url: String

    init(_ backend: String) throws {
        dir = NSTemporaryDirectory() + "cairn-inventory-\(UUID().uuidString)"
        if backend == "postgres" {
            let server = try PostgresServer()
            self.server = server
            url = try server.createDatabase("inventory")
        } else {
            server = nil
            url = dir + "/audit.db"
        }
        inventory = try Inventory.open(url, defaultPath: "")
    }

    static func runImage(_ version: String, libfoo: String) -> RunImageRecord {
        var r = RunImageRecord(identity: "io.example.stack", name: "example/run", topLayer: "sha256:run-\(version)", layers: "sha256:run-\(version)")
        r.reference = "example/run:\(version)"
        r.distro = "debian"
        r.distroVersion = "12"
        r.packages = [PackageRecord(ecosystem: .debian, name: "libfoo1", version: libfoo, sourceName: "foo", sourceVersion: libfoo),
                      PackageRecord(ecosystem: .debian, name: "base-files", version: "12.4")]
        return r
    }

    static func app(_ digest: String, flask: String, bp: String, run: RunImageRecord?) -> ImageRecord {
        var r = ImageRecord(digest: digest)
        r.runImage = run.map { var x = $0; x.packages = nil; return x }
        r.modules = [.init(kind: "buildpack", id: "tests/python", version: bp)]
        r.layers = [.init(buildpack: "tests/python", name: "site-packages", diffID: "sha256:layer-\(flask)", metadata: "{}", rebasable: true)]
        r.packages = [.init(package: PackageRecord(name: "Flask", version: flask, purl: "pkg:pypi/Flask@\(flask)"), buildpack: "tests/python", layer: "site-packages")]
        r.launcherVersion = "0.1.0"
        return r
    }

    static let flaskAdvisory = OSVRecord(
        id: "GHSA-m2qf-hxjv-5gpq", aliases: ["CVE-2023-30861"], summary: "Flask session cookie disclosure",
        severity: [.init(type: "CVSS_V3", score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N")],
        affected: [.init(package: .init(ecosystem: "PyPI", name: "flask"),
                         ranges: [.init(type: "ECOSYSTEM", events: [.init(introduced: "0"), .init(fixed: "2.3.2")])])])

    static let fooAdvisory = OSVRecord(
        id: "DSA-9999-1", aliases: ["CVE-2099-0001"], summary: "foo overflow",
        affected: [.init(package: .init(ecosystem: "Debian:12", name: "foo"),
                         ranges: [.init(type: "ECOSYSTEM", events: [.init(introduced: "0"), .init(fixed: "1.0-2")])])])

    /// v1 then v2 of the run image; app a (flask 2.2.0, v1) and b (flask 2.3.3, v2).
    func index(advisoriesFirst: Bool) throws {
        if advisoriesFirst { try inventory.importAdvisories([Self.flaskAdvisory, Self.fooAdvisory]) }
        let v1 = Self.runImage("1", libfoo: "1.0-1"), v2 = Self.runImage("2", libfoo: "1.0-2")
        let first = try inventory.beginRun(source: "test")
        try inventory.add(runImage: v1, run: first)
        try inventory.add(Self.app("sha256:a", flask: "2.2.0", bp: "1.0.0", run: v1), location: "store", names: ["a:latest"], run: first)
        let second = try inventory.beginRun(source: "test")
        try inventory.add(runImage: v2, run: second)
        try inventory.add(Self.app("sha256:b", flask: "2.3.3", bp: "1.0.1", run: v2), location: "store", names: ["b:latest"], run: second)
        if !advisoriesFirst { try inventory.importAdvisories([Self.flaskAdvisory, Self.fooAdvisory]) }
    }
}

@Test(arguments: backends, [true, false]) func vulnerabilitiesNameTheImageThePackageAndWhoBroughtIt(backend: String, advisoriesFirst: Bool) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    try f.index(advisoriesFirst: advisoriesFirst)
    let vulns = try f.inventory.vulnerabilities()
    #expect(vulns.map { "\($0.image) \($0.advisory ?? "") \($0.package ?? "") \($0.version ?? "") \($0.fixed ?? "") \($0.origin)" } == [
        "a:latest DSA-9999-1 libfoo1 1.0-1 1.0-2 run image example/run",
        "a:latest GHSA-m2qf-hxjv-5gpq flask 2.2.0 2.3.2 tests/python:site-packages",
    ])
    #expect(try f.inventory.vulnerabilities(id: "CVE-2023-30861").map(\.advisory) == ["GHSA-m2qf-hxjv-5gpq"])
    #expect(try f.inventory.vulnerabilities(minimumSeverity: "HIGH").map(\.advisory) == ["GHSA-m2qf-hxjv-5gpq"], "CVSS 7.5")
    #expect(try f.inventory.vulnerabilities(minimumSeverity: "critical").isEmpty)
    #expect(throws: InventoryError.self) { try f.inventory.vulnerabilities(minimumSeverity: "bad") }
}

@Test(arguments: backends) func queriesAnswerByPackageBuildpackRunImageAndLauncher(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    try f.index(advisoriesFirst: true)
    let inv = f.inventory
    #expect(try inv.package("flask").map(\.image) == ["a:latest", "b:latest"])
    #expect(try inv.package("pkg:pypi/FLASK").map(\.image) == ["a:latest", "b:latest"])
    #expect(try inv.package("flask", versions: VersionRange(parsing: "<2.3.2")).map(\.image) == ["a:latest"])
    #expect(try inv.package("foo", versions: VersionRange(parsing: ">=1.0-2")).map(\.image) == ["b:latest"], "by Debian source name")
    #expect(try inv.package("libfoo1").map(\.image) == ["a:latest", "b:latest"])
    #expect(try inv.buildpack("tests/python", versions: VersionRange(parsing: "<1.0.1")).map(\.image) == ["a:latest"])
    #expect(try inv.launcher(versions: VersionRange(parsing: ">=0.1")).count == 2)
    let runs = try inv.runImages()
    #expect(runs.map { "\($0.image) \($0.status ?? "")" } == ["a:latest outdated", "b:latest current"])
    #expect(runs.map { "\($0.location) \($0.digest) \($0.runImage ?? "")" } == ["store sha256:a example/run", "store sha256:b example/run"])
    #expect(runs[0].fixed != nil && runs[0].fixed == runs[1].version, "an outdated image names the newer version's top layer")
    #expect(runs[1].fixed == nil)
    #expect(try inv.runImages(outdatedOnly: true).map(\.image) == ["a:latest"])
    #expect(try inv.runImages(name: "example/run").count == 2)
    #expect(try inv.runImages(name: "example/other").isEmpty)
}

@Test(arguments: backends) func thePlanRebasesForTheRunImageAndPatchesForTheLayer(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    try f.index(advisoriesFirst: false)
    let plan = try f.inventory.plan(f.inventory.vulnerabilities())
    #expect(plan.steps.count == 1)
    let step = try #require(plan.steps.first)
    #expect(step.image == "a:latest" && step.action == "rebase+patch", "\(step)")
    #expect(step.runImage == "example/run:2")
    #expect(step.patches == [FixPlan.Patch(buildpack: "tests/python", layer: "site-packages", patchImage: "b:latest")])
    // A patch comes from the same location: an image in a registry is not patched from an image
    // only the store has, even after a store image was (its finding comes first).
    let elsewhere = try f.inventory.beginRun(source: "test")
    try f.inventory.add(InventoryFixture.app("sha256:d", flask: "2.2.0", bp: "1.0.0", run: nil), location: "registry.example/apps",
                        names: ["registry.example/apps/d:latest"], run: elsewhere)
    let both = try f.inventory.plan(f.inventory.vulnerabilities())
    #expect(both.steps.map { "\($0.image) \($0.action)" } == ["a:latest rebase+patch", "registry.example/apps/d:latest rebuild"])
    // Two advisories on one layer: the patch source has neither. The newest build (b, flask
    // 2.3.3) is still affected by the second; e (flask 2.4.1, an older buildpack) is not.
    let h = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: h.dir) }
    let second = OSVRecord(id: "GHSA-test-0002", aliases: [], summary: "a second flask advisory", severity: [],
                           affected: [.init(package: .init(ecosystem: "PyPI", name: "flask"),
                                            ranges: [.init(type: "ECOSYSTEM", events: [.init(introduced: "0"), .init(fixed: "2.4.0")])])])
    try h.inventory.importAdvisories([InventoryFixture.flaskAdvisory, second])
    let builds = try h.inventory.beginRun(source: "test")
    for (digest, flask, bp) in [("sha256:x", "2.2.0", "1.0.0"), ("sha256:b", "2.3.3", "1.0.2"), ("sha256:e", "2.4.1", "1.0.1")] {
        try h.inventory.add(InventoryFixture.app(digest, flask: flask, bp: bp, run: nil), location: "store",
                            names: [String(digest.dropFirst(7)) + ":latest"], run: builds)
    }
    let twoAdvisories = try h.inventory.plan(h.inventory.vulnerabilities())
    #expect(twoAdvisories.steps.map { "\($0.image) \($0.action) \($0.patches.map(\.patchImage))" }
            == ["b:latest rebuild []", "x:latest patch [\"e:latest\"]"])
    // Two run image advisories: the rebase target has neither. The newest run image (3) fixes
    // only DSA-9999-1; 2 fixes both.
    let r = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: r.dir) }
    let dsa1 = OSVRecord(id: "DSA-0001-1", aliases: [], summary: "another foo advisory", severity: [],
                         affected: [.init(package: .init(ecosystem: "Debian:12", name: "foo"),
                                          ranges: [.init(type: "ECOSYSTEM", events: [.init(introduced: "0"), .init(fixed: "1.0-3")])])])
    try r.inventory.importAdvisories([InventoryFixture.fooAdvisory, dsa1])
    let runs = [("1", "1.0-1"), ("2", "1.0-3"), ("3", "1.0-2")].map { InventoryFixture.runImage($0.0, libfoo: $0.1) }
    for (i, runImage) in runs.enumerated() {
        let seen = try r.inventory.beginRun(source: "test")
        try r.inventory.add(runImage: runImage, run: seen)
        if i == 0 {
            var app = InventoryFixture.app("sha256:old", flask: "2.3.3", bp: "1.0.0", run: runImage)
            app.packages = []
            try r.inventory.add(app, location: "store", names: ["old:latest"], run: seen)
        }
    }
    let rebase = try #require(try r.inventory.plan(r.inventory.vulnerabilities()).steps.first)
    #expect(rebase.action == "rebase" && rebase.runImage == "example/run:2", "\(rebase)")
    #expect(rebase.reasons.count == 2 && rebase.reasons.allSatisfy { $0.contains("rebase onto example/run:2") }, "\(rebase.reasons)")
    // Without a rebasable newer layer, a rebuild.
    let g = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: g.dir) }
    try g.inventory.importAdvisories([InventoryFixture.flaskAdvisory])
    let run = try g.inventory.beginRun(source: "test")
    try g.inventory.add(InventoryFixture.app("sha256:c", flask: "2.2.0", bp: "1.0.0", run: nil), location: "store", names: ["c"], run: run)
    let rebuild = try g.inventory.plan(g.inventory.vulnerabilities())
    #expect(rebuild.steps.map(\.action) == ["rebuild"])
}

/// Of the builds a patch may come from, the newest buildpack version, then the image indexed
/// last; builds are asked about in growing batches, so the answer may lie past the first ones.
@Test(arguments: backends) func thePatchSourceIsTheNewestBuildIndexedLastAtTheLocation(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    try f.inventory.importAdvisories([InventoryFixture.flaskAdvisory])
    let run = try f.inventory.beginRun(source: "test")
    func add(_ name: String, flask: String, bp: String, location: String = "store") throws {
        try f.inventory.add(InventoryFixture.app("sha256:\(name)", flask: flask, bp: bp, run: nil), location: location, names: ["\(name):latest"], run: run)
    }
    try add("me", flask: "2.2.0", bp: "1.0.0")
    // Unaffected: an older buildpack version (not a source), then two of the newest; the one
    // indexed last has the lesser name.
    try add("old", flask: "2.3.3", bp: "0.9.0")
    try add("p1", flask: "2.3.3", bp: "1.0.1")
    try add("p0", flask: "2.3.4", bp: "1.0.1")
    // Indexed after them: ten affected builds of the newest version, one unaffected build of a
    // version between, and one unaffected newest build that lives elsewhere.
    for i in 0..<10 { try add("q\(i)", flask: "2.2.\(i + 1)", bp: "1.0.1") }
    try add("mid", flask: "2.3.5", bp: "1.0.0.5")
    try add("r", flask: "2.3.3", bp: "1.0.1", location: "registry.example/apps")
    let plan = try f.inventory.plan(f.inventory.vulnerabilities())
    let mine = try #require(plan.steps.first { $0.image == "me:latest" })
    #expect(mine.patches.map(\.patchImage) == ["p0:latest"], "\(mine)")
    #expect(plan.steps.filter { $0.image.hasPrefix("q") }.map { "\($0.image) \($0.patches.map(\.patchImage))" }
            == (0..<10).map { "q\($0):latest [\"p0:latest\"]" })
    // The same plan asked of the images in the registry: only r is there, and it is unaffected.
    #expect(!plan.steps.contains { $0.location != "store" })
}

@Test(arguments: backends) func indexingIsIncrementalAndNamesMove(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    try f.index(advisoriesFirst: true)
    #expect(try f.inventory.knows(digest: "sha256:a") && !f.inventory.knows(digest: "sha256:z"))
    // a:latest now names b's image (as after a rebuild); the store listing forgets what is gone.
    let run = try f.inventory.beginRun(source: "test")
    #expect(try f.inventory.bind(location: "store", name: "a:latest", digest: "sha256:b", run: run))
    #expect(try !f.inventory.bind(location: "store", name: "x", digest: "sha256:unknown", run: run))
    try f.inventory.forgetNames(location: "store", notSeenIn: run)
    #expect(try f.inventory.vulnerabilities().isEmpty)
    #expect(try f.inventory.package("flask").map { "\($0.image) \($0.version ?? "")" } == ["a:latest 2.3.3"])
}

@Test func advisoryFilesAreReadFromJSONDirectoriesAndZips() throws {
    let dir = NSTemporaryDirectory() + "cairn-osv-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try FileManager.default.createDirectory(atPath: dir + "/PyPI", withIntermediateDirectories: true)
    let json = try JSONEncoder().encode(InventoryFixture.flaskAdvisory)
    try json.write(to: URL(fileURLWithPath: dir + "/PyPI/GHSA-m2qf-hxjv-5gpq.json"))
    try Data(#"{"id": "DSA-9999-1", "affected": [{"package": {"ecosystem": "Debian:12", "name": "foo"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-2"}]}]}]}"#.utf8)
        .write(to: URL(fileURLWithPath: dir + "/dsa.json"))
    var ids: [String] = []
    try OSVReader.read(dir) { ids.append($0.id) }
    #expect(ids.sorted() == ["DSA-9999-1", "GHSA-m2qf-hxjv-5gpq"])
    // A zip archive as OSV publishes them.
    let zip = Process()
    zip.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    zip.arguments = ["-c", "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED); z.write(sys.argv[2],'GHSA-m2qf-hxjv-5gpq.json'); z.write(sys.argv[3],'DSA-9999-1.json'); z.close()",
                     dir + "/all.zip", dir + "/PyPI/GHSA-m2qf-hxjv-5gpq.json", dir + "/dsa.json"]
    try zip.run()
    zip.waitUntilExit()
    var zipped: [String] = []
    try OSVReader.read(dir + "/all.zip") { zipped.append($0.id) }
    #expect(zipped.sorted() == ["DSA-9999-1", "GHSA-m2qf-hxjv-5gpq"])
    try Data(#"{"affected": []}"#.utf8).write(to: URL(fileURLWithPath: dir + "/bad.json"))
    #expect {
        try OSVReader.read(dir + "/bad.json") { _ in }
    } throws: { "\($0)".contains("bad.json: not an OSV record: no id") }
    #expect(throws: InventoryError.self) { try OSVReader.read(dir + "/missing") { _ in } }
}

/// Several writers at once (as several `cairn audit index` processes): each its own connection,
/// images sharing run images and packages; every image lands, each package row once.
@Test(arguments: backends) func concurrentWritersAllLand(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    try f.inventory.importAdvisories([InventoryFixture.flaskAdvisory])
    let writers = 4, perWriter = 10
    let errors = LockedErrors()
    DispatchQueue.concurrentPerform(iterations: writers) { w in
        do {
            let own = try Inventory.open(f.url, defaultPath: "")
            let run = try own.beginRun(source: "writer \(w)")
            for i in 0..<perWriter {
                let flask = ["2.2.0", "2.3.3", "2.1.0"][(w + i) % 3]
                let image = InventoryFixture.app("sha256:w\(w)-\(i)", flask: flask, bp: "1.0.0", run: InventoryFixture.runImage(String(i % 2), libfoo: "1.0-\(i % 2 + 1)"))
                try own.add(image, location: "store", names: ["w\(w)-\(i)"], run: run)
            }
        } catch {
            errors.append(error)
        }
    }
    #expect(errors.all.isEmpty, "\(errors.all)")
    // Known findings: these images' run image packages were never given, so each is also `unknown`.
    #expect(try f.inventory.package("flask").filter { $0.status != "unknown" }.count == writers * perWriter)
    #expect(try f.inventory.package("flask").filter { $0.status == "unknown" }.count == writers * perWriter)
    let rows = try f.inventory.backend.read { db in try db.value("SELECT COUNT(*) FROM package WHERE name = 'flask'")?.int }
    #expect(rows == 3)
    let vulnerable = try f.inventory.vulnerabilities().filter { $0.status != "unknown" }.count
    #expect(vulnerable == (0..<writers).flatMap { w in (0..<perWriter).filter { (w + $0) % 3 != 1 } }.count)
}

final class LockedErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [any Error] = []
    func append(_ e: any Error) { lock.withLock { errors.append(e) } }
    var all: [any Error] { lock.withLock { errors } }
}

/// With PostgreSQL installed every inventory test runs on it as well as on SQLite; without it
/// they run on SQLite only, and this test is reported skipped, saying so.
@Test(.enabled(if: PostgresServer.available, "PostgreSQL (initdb, pg_ctl) is not installed: the inventory tests ran on SQLite only"))
func postgresServesTheInventoryTests() throws {
    let server = try PostgresServer()
    let inventory = try Inventory.open(try server.createDatabase("probe"), defaultPath: "")
    #expect(try inventory.backend.read { try $0.value("SELECT 1 + 1", []) }?.int == 2)
    #expect(inventory.backend.dialect == .postgres)
}

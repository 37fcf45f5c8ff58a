import Foundation
import Testing
import TestSupport
@testable import Inventory

/// Migration v6 on a database written by the previous release (migrations v1–v5): run image
/// rows keep their packages under their old key, and a new version with the same top layer but
/// other layers below is a row of its own (before v6 the UNIQUE (name, top_layer) made it the
/// old one).
@Test(arguments: backends) func runImageVersionsKeyedByTopLayerMigrateToTheirLayers(backend: String) throws {
    let dir = NSTemporaryDirectory() + "cairn-migration-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let server = backend == "postgres" ? try PostgresServer() : nil
    defer { server?.stop() }
    let url = try server?.createDatabase("migration") ?? dir + "/audit.db"
    func open() throws -> any SQLBackend {
        server == nil ? try SQLiteBackend(path: url) : try PostgresBackend(url: url)
    }
    let old = try open()
    try old.migrate(Array(Schema.migrations(old.dialect).prefix(5)))
    try old.write { db in
        try db.execute("INSERT INTO run_image (identity, name, top_layer, packages_known, first_seen) VALUES ('io.example', 'example/run', 'sha256:top', 1, 1)", [])
    }

    let inventory = try Inventory(backend: try open())
    #expect(try inventory.knowsPackages(runImage: "example/run", layers: "sha256:top"), "the old row, under its old key")
    #expect(try !inventory.knowsPackages(runImage: "example/run", layers: "sha256:chain"))
    var newer = RunImageRecord(identity: "io.example", name: "example/run", topLayer: "sha256:top", layers: "sha256:chain")
    newer.packages = [PackageRecord(ecosystem: .debian, name: "netbase", version: "6.4")]
    try inventory.add(runImage: newer, run: try inventory.beginRun(source: "test"))
    #expect(try inventory.knowsPackages(runImage: "example/run", layers: "sha256:chain"))
    let versions = try inventory.backend.read { db in try Inventory.runImageVersions(db) }
    #expect(versions.byID.values.map(\.layers).sorted() == ["sha256:chain", "sha256:top"])
}

/// OSV as published (issue 39): JSON lines read line by line; a record modified later replaces
/// the one imported, an older copy does not; a withdrawn record matches nothing.
@Test(arguments: backends) func advisoriesFollowTheirModifiedTimeAndWithdrawal(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    let run = try f.inventory.beginRun(source: "test")
    try f.inventory.add(InventoryFixture.app("sha256:a", flask: "2.2.0", bp: "1.0.0", run: nil), location: "store", names: ["a"], run: run)
    func record(_ modified: String, fixed: String, withdrawn: String? = nil) -> String {
        #"{"id": "GHSA-x", "modified": "\#(modified)"\#(withdrawn.map { #", "withdrawn": "\#($0)""# } ?? ""), "affected": [{"package": {"ecosystem": "PyPI", "name": "flask"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "\#(fixed)"}]}]}]}"#
    }
    func fixedVersions() throws -> [String] {
        try f.inventory.vulnerabilities().filter { $0.status != "unknown" }.compactMap(\.fixed)
    }
    let lines = f.dir + "/osv.jsonl"
    try FileManager.default.createDirectory(atPath: f.dir, withIntermediateDirectories: true)
    // Modified twice: the later one (fractional seconds are later than none) wins, in either order.
    try writeFile(lines, record("2026-01-02T00:00:00.5Z", fixed: "2.3.2") + "\n\n" + record("2026-01-02T00:00:00Z", fixed: "2.0.0") + "\n")
    var read: [OSVRecord] = []
    try OSVReader.read(lines) { read.append($0) }
    #expect(read.count == 2)
    #expect(try f.inventory.importAdvisories(read) == 1, "the older copy is not applied")
    #expect(try fixedVersions() == ["2.3.2"])
    try writeFile(lines, record("2026-02-01T00:00:00Z", fixed: "2.2.5") + "\n")
    read = []
    try OSVReader.read(lines) { read.append($0) }
    #expect(try f.inventory.importAdvisories(read) == 1)
    #expect(try fixedVersions() == ["2.2.5"], "modified later: it replaces")
    try writeFile(lines, record("2026-03-01T00:00:00Z", fixed: "2.2.5", withdrawn: "2026-03-01T00:00:00Z") + "\n")
    read = []
    try OSVReader.read(lines) { read.append($0) }
    _ = try f.inventory.importAdvisories(read)
    #expect(try fixedVersions().isEmpty, "withdrawn: matches nothing")
    try writeFile(lines, "{\"id\": \"A\"}\nnot json\n")
    #expect(throws: (any Error).self) { try OSVReader.read(lines) { _ in } }
    do { try OSVReader.read(lines) { _ in } } catch { #expect("\(error)".contains("osv.jsonl:2"), "\(error)") }
}

/// One migration mechanism (issue 40): a SQLite database whose migrations GRDB's
/// `DatabaseMigrator` recorded (the table it writes: `grdb_migrations (identifier TEXT NOT NULL
/// PRIMARY KEY)`) is adopted: v1–v5 are not run again, v6 and v7 are, and one table lists them all.
@Test func sqliteDatabasesMigratedByGRDBAreAdopted() throws {
    let dir = NSTemporaryDirectory() + "cairn-migration-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let old = try SQLiteBackend(path: dir + "/audit.db")
    try old.write { db in
        for (name, sql) in Schema.migrations(.sqlite).prefix(5) {
            for statement in SQLiteBackend.statements(sql) { try db.execute(statement, []) }
            try db.execute("CREATE TABLE IF NOT EXISTS grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)", [])
            try db.execute("INSERT INTO grdb_migrations (identifier) VALUES (?)", [.text(name)])
        }
        try db.execute("INSERT INTO run_image (identity, name, top_layer, packages_known, first_seen) VALUES ('io.example', 'example/run', 'sha256:top', 1, 1)", [])
    }
    let inventory = try Inventory(backend: try SQLiteBackend(path: dir + "/audit.db"))
    let names = try inventory.backend.read { db in try db.rows("SELECT name FROM cairn_migrations ORDER BY name", []).compactMap { $0.first?.text } }
    #expect(Set(names) == Set(Schema.migrations(.sqlite).map(\.name)) && names.count == Schema.migrations(.sqlite).count)
    let grdb = try inventory.backend.read { db in try db.rows("SELECT 1 FROM sqlite_master WHERE name = 'grdb_migrations'", []) }
    #expect(grdb.isEmpty)
    #expect(try inventory.knowsPackages(runImage: "example/run", layers: "sha256:top"), "v6 ran on the adopted database")
}

/// A migration that fails leaves the database as it was, on both databases, and says so.
@Test(arguments: backends) func aFailedMigrationChangesNothing(backend: String) throws {
    let dir = NSTemporaryDirectory() + "cairn-migration-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let server = backend == "postgres" ? try PostgresServer() : nil
    defer { server?.stop() }
    let url = try server?.createDatabase("failed") ?? dir + "/audit.db"
    let db: any SQLBackend = server == nil ? try SQLiteBackend(path: url) : try PostgresBackend(url: url)
    try db.migrate([("a", "CREATE TABLE a (x INTEGER)")])
    #expect(throws: InventoryError.self) {
        try db.migrate([("a", "CREATE TABLE a (x INTEGER)"), ("b", "CREATE TABLE b (x INTEGER); INSERT INTO a (x) VALUES (1); SELECT nothing FROM nowhere")])
    }
    let applied = try db.read { s in try s.rows("SELECT name FROM cairn_migrations", []).compactMap { $0.first?.text } }
    #expect(applied == ["a"])
    #expect(try db.read { s in try s.rows("SELECT x FROM a", []) }.isEmpty)
    try db.migrate([("a", "CREATE TABLE a (x INTEGER)"), ("b", "CREATE TABLE b (x INTEGER)")])
    #expect(try db.read { s in try s.rows("SELECT x FROM b", []) }.isEmpty)
}

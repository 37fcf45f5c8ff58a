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

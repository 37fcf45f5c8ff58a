import Foundation

/// The one migration mechanism of both databases. The names of applied migrations are rows of
/// `cairn_migrations`; those not yet applied run in order, in one `exclusiveWrite` (SQLite:
/// BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so two first runs take turns and a failed
/// migration leaves the database as it was. SQLite databases written before this (GRDB's
/// `DatabaseMigrator`, which recorded names in `grdb_migrations`) are adopted: their names move
/// to `cairn_migrations` and GRDB's table goes.
extension SQLBackend {
    public func migrate(_ migrations: [(name: String, sql: String)]) throws {
        do {
            try exclusiveWrite { db in
                try db.execute("CREATE TABLE IF NOT EXISTS cairn_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)", [])
                if dialect == .sqlite { try Self.adoptGRDBMigrations(db) }
                let done = Set(try db.rows("SELECT name FROM cairn_migrations", []).compactMap { $0.first?.text })
                for m in migrations where !done.contains(m.name) {
                    for statement in Self.statements(m.sql) { try db.execute(statement, []) }
                    try db.execute("INSERT INTO cairn_migrations (name, applied) VALUES (?, ?)", [.text(m.name), .text(OSVRecord.rfc3339())])
                }
            }
        } catch let error as InventoryError {
            throw error
        } catch {
            throw InventoryError.database(location: location, reason: "migration failed: \(error)")
        }
    }

    /// A migration's statements, one per call: PostgreSQL's extended protocol takes one at a time.
    static func statements(_ sql: String) -> [String] {
        sql.split(separator: ";").filter { !$0.allSatisfy(\.isWhitespace) }.map(String.init)
    }

    static func adoptGRDBMigrations(_ db: any SQLSession) throws {
        let grdb = try db.rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'grdb_migrations'", [])
        guard !grdb.isEmpty else { return }
        for row in try db.rows("SELECT identifier FROM grdb_migrations", []) {
            guard let name = row.first?.text else { continue }
            try db.execute("INSERT INTO cairn_migrations (name, applied) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", [.text(name), .text(OSVRecord.rfc3339())])
        }
        try db.execute("DROP TABLE grdb_migrations", [])
    }
}

import Foundation
import Synchronization

/// The audit inventory: what every indexed image is made of, the advisories imported, and which
/// package versions they affect (kept up to date on every write).
public final class Inventory: Sendable {
    public let backend: any SQLBackend
    /// Package rows already in the database (rows are never deleted), so that indexing a fleet
    /// asks for each package's id once.
    let packageIDs = PackageIDCache()

    public init(backend: any SQLBackend) throws {
        self.backend = backend
        try backend.migrate(Schema.migrations(backend.dialect))
    }

    /// `$CAIRN_HOME/audit.db` unless `database` names another SQLite file (a path or
    /// `sqlite:PATH`) or a PostgreSQL server (`postgres://…`).
    public static func open(_ database: String?, defaultPath: String) throws -> Inventory {
        guard let database else { return try Inventory(backend: SQLiteBackend(path: defaultPath)) }
        if database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") {
            return try Inventory(backend: PostgresBackend(url: database))
        }
        return try Inventory(backend: SQLiteBackend(path: database.hasPrefix("sqlite:") ? String(database.dropFirst(7)) : database))
    }

    // MARK: indexing

    /// Starts an index run: its number orders what was seen when (`at`: now, but for tests of
    /// history).
    public func beginRun(source: String, at time: Date = Date()) throws -> Int64 {
        try backend.write { db in
            try db.value("INSERT INTO index_run (started, source) VALUES (?, ?) RETURNING id",
                         [.text(OSVRecord.rfc3339(time)), .text(source)])?.int ?? 0
        }
    }

    /// Whether the image with this manifest digest is indexed already.
    public func knows(digest: String) throws -> Bool {
        try backend.read { db in try db.value("SELECT id FROM image WHERE digest = ?", [.text(digest)]) != nil }
    }

    /// Whether the packages of this run image version (`layers`: the ChainID of its layers) are
    /// known, so its layers need not be read.
    public func knowsPackages(runImage name: String, layers: String) throws -> Bool {
        try backend.read { db in
            try db.value("SELECT packages_known FROM run_image WHERE name = ? AND layers = ?", [.text(name), .text(layers)])?.int == 1
        }
    }

    /// The names of every run image recorded.
    public func runImageNames() throws -> Set<String> {
        try backend.read { db in Set(try db.rows("SELECT DISTINCT name FROM run_image", []).compactMap { $0.first?.text }) }
    }

    /// Points `name` at `location` to the indexed image `digest`; false when it is not indexed.
    @discardableResult
    public func bind(location: String, name: String, digest: String, run: Int64) throws -> Bool {
        try backend.write { db in try Self.bind(db, dialect: backend.dialect, location: location, name: name, digest: digest, run: run) }
    }

    static func bind(_ db: any SQLSession, dialect: SQLDialect, location: String, name: String, digest: String, run: Int64) throws -> Bool {
        guard let id = try db.value("SELECT id FROM image WHERE digest = ?", [.text(digest)]) else { return false }
        try bind(db, dialect: dialect, location: location, name: name, imageID: id, run: run)
        return true
    }

    /// Points `name` at image `id`, keeping its history: a name that now points elsewhere (or
    /// anywhere, the first time) closes its interval and opens one. On PostgreSQL, where each
    /// statement is a round trip, it is one statement (four of them cost ~1 ms an image: 20,000
    /// images indexed in 78.6 s against 59.5 s before the history, same run).
    static func bind(_ db: any SQLSession, dialect: SQLDialect, location: String, name: String, imageID id: SQLValue, run: Int64) throws {
        let (l, n, r) = (SQLValue.text(location), SQLValue.text(name), SQLValue.int(run))
        let upsert = """
            INSERT INTO image_name (location, name, image_id, seen) VALUES (?, ?, ?, ?)
            ON CONFLICT (location, name) DO UPDATE SET image_id = excluded.image_id, seen = excluded.seen
            """
        if dialect == .postgres {
            // Every part sees the names as they were before the statement.
            try db.execute("""
                WITH moved AS (SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM image_name WHERE location = ? AND name = ? AND image_id = ?)),
                closed AS (UPDATE name_history SET until_run = ? WHERE location = ? AND name = ? AND until_run IS NULL
                           AND EXISTS (SELECT 1 FROM moved) RETURNING 1),
                opened AS (INSERT INTO name_history (location, name, image_id, from_run) SELECT ?, ?, ?, ? FROM moved RETURNING 1)
                \(upsert)
                """, [l, n, id, r, l, n, l, n, id, r, l, n, id, r])
            return
        }
        let before = try db.value("SELECT image_id FROM image_name WHERE location = ? AND name = ?", [l, n])
        if before?.int != id.int {
            try db.execute("UPDATE name_history SET until_run = ? WHERE location = ? AND name = ? AND until_run IS NULL", [r, l, n])
            try db.execute("INSERT INTO name_history (location, name, image_id, from_run) VALUES (?, ?, ?, ?)", [l, n, id, r])
        }
        try db.execute(upsert, [l, n, id, r])
    }

    /// The digest `name` is indexed under at `location`; nil when it is not.
    public func indexedDigest(location: String, name: String) throws -> String? {
        try backend.read { db in
            try db.value("SELECT i.digest FROM image_name n JOIN image i ON i.id = n.image_id WHERE n.location = ? AND n.name = ?",
                         [.text(location), .text(name)])?.text
        }
    }

    /// Names at `location` (starting with `prefix`) not seen since `run` are gone: the location
    /// (or the repository) was listed in full.
    public func forgetNames(location: String, prefix: String = "", notSeenIn run: Int64) throws {
        try backend.write { db in
            try db.execute("DELETE FROM image_name WHERE location = ? AND substr(name, 1, length(?)) = ? AND seen < ?",
                           [.text(location), .text(prefix), .text(prefix), .int(run)])
            try db.execute("""
                UPDATE name_history SET until_run = ? WHERE until_run IS NULL AND location = ? AND substr(name, 1, length(?)) = ?
                AND NOT EXISTS (SELECT 1 FROM image_name n WHERE n.location = name_history.location AND n.name = name_history.name)
                """, [.int(run), .text(location), .text(prefix), .text(prefix)])
        }
    }

    /// An image to record and the names it has at a location.
    public struct Entry: Sendable {
        public var image: ImageRecord
        public var location: String
        public var names: [String]
        public init(_ image: ImageRecord, location: String, names: [String]) {
            self.image = image
            self.location = location
            self.names = names
        }
    }

    /// Records an app image and names it; one transaction.
    public func add(_ image: ImageRecord, location: String, names: [String], run: Int64) throws {
        try add([Entry(image, location: location, names: names)], run: run)
    }

    /// Images per `add` call that indexers (and the fleet benchmark) use: each commit writes
    /// the pages its batch shares once.
    public static let writeBatchSize = 100

    /// Records app images in one transaction: an index run commits in batches, so that each
    /// commit writes the pages the batch shares once (random index pages dominate otherwise).
    /// Rows go in multi-row inserts, and package ids come from a cache after their first insert.
    public func add(_ entries: [Entry], run: Int64) throws {
        guard !entries.isEmpty else { return }
        try writeWithPackageIDs { db, packageID in
            var modules: [[SQLValue]] = [], layers: [[SQLValue]] = [], packages: [[SQLValue]] = [], buildPackages: [[SQLValue]] = []
            for entry in entries {
                let image = entry.image
                var runImageID: SQLValue = .null
                if let r = image.runImage { runImageID = .int(try Self.upsert(db, runImage: r, named: false, run: run, packageID: packageID)) }
                let id = try db.value("""
                    INSERT INTO image (digest, created, os, architecture, run_image_id, launcher_version, launcher_diffid, first_seen, unknown)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (digest) DO UPDATE SET run_image_id = excluded.run_image_id, unknown = excluded.unknown RETURNING id
                    """, [.text(image.digest), .text(image.created), .text(image.os), .text(image.architecture), runImageID,
                          .text(image.launcherVersion), .text(image.launcherDiffID), .int(run),
                          .text(image.unknown.joined(separator: "; "))]) ?? .null
                modules += image.modules.map { [id, .text($0.kind), .text($0.id), .text($0.version)] }
                layers += image.layers.map { [id, .text($0.buildpack), .text($0.name), .text($0.diffID), .text($0.metadata), .int($0.rebasable ? 1 : 0)] }
                for p in image.packages {
                    packages.append([id, .int(try packageID(p.package)), .text(p.buildpack), .text(p.layer)])
                }
                for p in image.buildPackages { buildPackages.append([id, .int(try packageID(p.package)), .text(p.buildpack)]) }
                for name in entry.names {
                    try Self.bind(db, dialect: backend.dialect, location: entry.location, name: name, imageID: id, run: run)
                }
            }
            try Self.insertRows(db, "image_module (image_id, kind, module, version)", modules)
            try Self.insertRows(db, "image_layer (image_id, buildpack, layer, diffid, metadata, rebasable)", layers)
            try Self.insertRows(db, "image_package (image_id, package_id, buildpack, layer)", packages)
            try Self.insertRows(db, "image_build_package (image_id, package_id, buildpack)", buildPackages)
            try AdvisoryMatch.matchNewPackages(db)
        }
    }

    /// A write transaction whose body gets package ids from the cache, inserting the others; the
    /// new ids join the cache only after the commit.
    func writeWithPackageIDs<T>(_ body: (any SQLSession, (PackageRecord) throws -> Int64) throws -> T) throws -> T {
        var fresh: [PackageRecord: Int64] = [:]
        let result = try backend.write { db in
            fresh = [:]  // a retried transaction starts again: ids of a rolled-back try are void
            return try body(db) { p in
                if let known = packageIDs.get(p) ?? fresh[p] { return known }
                let id = try Self.upsert(db, package: p)
                fresh[p] = id
                return id
            }
        }
        packageIDs.merge(fresh)
        return result
    }

    /// `INSERT INTO table VALUES (…), (…) … ON CONFLICT DO NOTHING`, at most 200 rows a statement.
    static func insertRows(_ db: any SQLSession, _ table: String, _ rows: [[SQLValue]]) throws {
        guard let width = rows.first?.count else { return }
        let tuple = "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")"
        var start = 0
        while start < rows.count {
            let batch = rows[start..<min(start + 200, rows.count)]
            try db.execute("INSERT INTO \(table) VALUES " + Array(repeating: tuple, count: batch.count).joined(separator: ", ") + " ON CONFLICT DO NOTHING",
                           batch.flatMap { $0 })
            start += batch.count
        }
    }

    /// Records a run image found under its name (a newer version of a run image, say).
    public func add(runImage: RunImageRecord, run: Int64) throws {
        try writeWithPackageIDs { db, packageID in
            _ = try Self.upsert(db, runImage: runImage, named: true, run: run, packageID: packageID)
            try AdvisoryMatch.matchNewPackages(db)
        }
    }

    static func upsert(_ db: any SQLSession, runImage r: RunImageRecord, named: Bool, run: Int64,
                       packageID: (PackageRecord) throws -> Int64) throws -> Int64 {
        let id = try db.value("""
            INSERT INTO run_image (identity, name, layers, top_layer, reference, released, created, distro, distro_version, first_seen, last_named)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (name, layers) DO UPDATE SET
              identity = CASE WHEN excluded.identity <> '' THEN excluded.identity ELSE run_image.identity END,
              reference = CASE WHEN excluded.reference <> '' THEN excluded.reference ELSE run_image.reference END,
              released = CASE WHEN excluded.released <> '' THEN excluded.released ELSE run_image.released END,
              created = CASE WHEN excluded.created <> '' THEN excluded.created ELSE run_image.created END,
              distro = CASE WHEN excluded.distro <> '' THEN excluded.distro ELSE run_image.distro END,
              distro_version = CASE WHEN excluded.distro_version <> '' THEN excluded.distro_version ELSE run_image.distro_version END,
              last_named = CASE WHEN excluded.last_named > run_image.last_named THEN excluded.last_named ELSE run_image.last_named END
            RETURNING id, packages_known
            """, [.text(r.identity), .text(r.name), .text(r.layers), .text(r.topLayer), .text(r.reference), .text(r.released), .text(r.created),
                  .text(r.distro), .text(r.distroVersion), .int(run), .int(named ? run : 0)])?.int ?? 0
        if let packages = r.packages, try db.value("SELECT packages_known FROM run_image WHERE id = ?", [.int(id)])?.int != 1 {
            let rows = try Set(packages).map { p -> [SQLValue] in [.int(id), .int(try packageID(p))] }
            try insertRows(db, "run_image_package (run_image_id, package_id)", rows)
            try db.execute("UPDATE run_image SET packages_known = 1 WHERE id = ?", [.int(id)])
        }
        return id
    }

    static func upsert(_ db: any SQLSession, package p: PackageRecord) throws -> Int64 {
        try db.value("""
            INSERT INTO package (ecosystem, name, version, purl, source_name, source_version) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (ecosystem, name, version, purl, source_name, source_version) DO UPDATE SET name = excluded.name
            RETURNING id
            """, [.text(p.ecosystem.rawValue), .text(p.name), .text(p.version), .text(p.purl), .text(p.sourceName), .text(p.sourceVersion)])?.int ?? 0
    }

    /// Refreshes the planner's statistics after bulk writes (an index run, an advisory import):
    /// without them PostgreSQL planned the advisory-id query as a scan (3.7 s on 100,000 images).
    public func optimize() throws {
        switch backend.dialect {
        case .postgres:
            // VACUUM also marks the pages written since as all-visible, so the covering indexes
            // answer without visiting the table (after indexing 100,000 images: 3 s).
            if let pg = backend as? PostgresBackend {
                try pg.executeOutsideTransaction("VACUUM (ANALYZE)")
            } else {
                try backend.write { db in try db.execute("ANALYZE") }
            }
        case .sqlite:
            try backend.write { db in
                try db.execute("PRAGMA analysis_limit = 1000")
                try db.execute("PRAGMA optimize")
            }
        }
    }

    // MARK: advisories

    /// Imports OSV records (replacing earlier imports of the same ids, unless the one imported
    /// before was modified later: OSV's `modified` decides, as its own importers do) and
    /// re-evaluates which package versions they affect. Returns how many records were applied.
    @discardableResult
    public func importAdvisories(_ records: [OSVRecord]) throws -> Int {
        try backend.write { db in
            var applied = 0
            for r in records {
                if let modified = r.modified, let before = try db.value("SELECT modified FROM advisory WHERE id = ?", [.text(r.id)])?.text,
                   OSVRecord.isLater(before, than: modified) {
                    continue
                }
                applied += 1
                try db.execute("DELETE FROM advisory_affected WHERE advisory_id = ?", [.text(r.id)])
                try db.execute("DELETE FROM advisory_alias WHERE advisory_id = ?", [.text(r.id)])
                try db.execute("DELETE FROM vulnerable WHERE advisory_id = ?", [.text(r.id)])
                try db.execute("""
                    INSERT INTO advisory (id, modified, summary, severity, withdrawn, published) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, summary = excluded.summary,
                      severity = excluded.severity, withdrawn = excluded.withdrawn, published = excluded.published
                    """, [.text(r.id), .text(r.modified ?? ""), .text(r.summary ?? ""), .text(r.severityLevel), .text(r.withdrawn ?? ""),
                          .text(r.published ?? "")])
                for alias in Set(r.aliases ?? []) {
                    try db.execute("INSERT INTO advisory_alias (alias, advisory_id) VALUES (?, ?) ON CONFLICT DO NOTHING", [.text(alias), .text(r.id)])
                }
                guard r.withdrawn == nil else { continue }
                for a in r.affected ?? [] {
                    guard let target = AdvisoryMatch.target(a) else { continue }
                    let ranges = AffectedRanges(ranges: a.ranges ?? [], versions: a.versions ?? [])
                    let json = String(decoding: try JSONEncoder().encode(ranges), as: UTF8.self)
                    try db.execute("INSERT INTO advisory_affected (advisory_id, ecosystem, release, name, ranges) VALUES (?, ?, ?, ?, ?)",
                                   [.text(r.id), .text(target.ecosystem), .text(target.release), .text(target.name), .text(json)])
                    try AdvisoryMatch.match(db, advisory: r.id, ecosystem: target.ecosystem, release: target.release, name: target.name, ranges: ranges)
                }
            }
            return applied
        }
    }
}

/// Package ids by package, shared by the writes of one Inventory; filled only after a commit.
final class PackageIDCache: Sendable {
    private let ids = Mutex<[PackageRecord: Int64]>([:])

    func get(_ p: PackageRecord) -> Int64? { ids.withLock { $0[p] } }
    func merge(_ fresh: [PackageRecord: Int64]) { ids.withLock { $0.merge(fresh) { a, _ in a } } }
}

import Foundation

/// Answers over time: which image each name pointed to when (`name_history`, written as names
/// are bound and forgotten, one interval per name and image, in index runs), so `vulns --as-of`
/// answers for the images of that day and `exposure` gives each name's window of exposure to an
/// advisory. Times are the index runs' start times: the inventory knows a name moved when an
/// index run saw it.
enum HistorySQL {
    static let runs = "SELECT id, started FROM index_run"
    static let namesAsOf = """
        SELECT h.image_id, h.location, h.name, i.digest FROM name_history h JOIN image i ON i.id = h.image_id
        WHERE h.from_run <= ? AND (h.until_run IS NULL OR h.until_run > ?)
        """
    static let intervals = """
        SELECT h.location, h.name, h.image_id, h.from_run, h.until_run, i.digest, i.created
        FROM name_history h JOIN image i ON i.id = h.image_id
        """
    /// Images holding a package the advisories affect: in a buildpack layer (advisories for every
    /// release), or in their run image (for every release or the run image's). Not those whose
    /// version cannot be ordered: they are not known to be affected.
    static func affectedImages(_ count: Int) -> String {
        let ids = Inventory.marks(count)
        return """
            SELECT ip.image_id FROM vulnerable v JOIN image_package ip ON ip.package_id = v.package_id
            WHERE v.advisory_id IN (\(ids)) AND v.release = '' AND v.unknown = ''
            UNION
            SELECT i.id FROM vulnerable v JOIN run_image_package rp ON rp.package_id = v.package_id
            JOIN run_image r ON r.id = rp.run_image_id JOIN image i ON i.run_image_id = r.id
            WHERE v.advisory_id IN (\(ids)) AND v.unknown = ''
              AND (v.release = '' OR r.distro_version = v.release OR substr(r.distro_version, 1, length(v.release) + 1) = v.release || '.')
            """
    }
}

/// A name's time exposed to an advisory: from the advisory's publication (or the image's
/// creation, or the run that saw the name move to it, if later) until an index run saw the name on an image without it (`until` nil:
/// still exposed).
public struct Exposure: Codable, Sendable, Hashable {
    public var location: String
    public var image: String
    public var digest: String
    public var advisory: String
    public var from: String
    public var until: String?
    /// The digest the name moved to, when one ended the window (nil: the name was removed).
    public var fixedBy: String?
    public var days: Double
}

extension Inventory {
    /// Index runs by id, with their start times.
    static func runTimes(_ db: any SQLSession) throws -> [Int64: Date] {
        var out: [Int64: Date] = [:]
        for row in try db.rows(HistorySQL.runs, []) {
            if let id = row[0].int, let t = row[1].text.flatMap(OSVRecord.time) { out[id] = t }
        }
        return out
    }

    /// The names as they were at `date` (after the last index run started by then), in the
    /// answers' order; none before the first run.
    static func namesAsOf(_ db: any SQLSession, dialect: SQLDialect, _ date: Date) throws -> RankedNames {
        guard let run = try runTimes(db).filter({ $0.value <= date }).keys.max() else { return RankedNames() }
        return try rankedNames(db, HistorySQL.namesAsOf + " ORDER BY " + dialect.order(["h.name", "h.location"]), [.int(run), .int(run)])
    }

    /// Today's names of one image name (at every location), in the answers' order.
    static func namesNamed(_ db: any SQLSession, dialect: SQLDialect, _ name: String) throws -> RankedNames {
        try rankedNames(db, """
            SELECT n.image_id, n.location, n.name, i.digest FROM image_name n JOIN image i ON i.id = n.image_id
            WHERE n.name = ? ORDER BY \(dialect.order(["n.location"]))
            """, [.text(name)])
    }

    /// Rows of (image id, location, name, digest), already in the answers' order.
    static func rankedNames(_ db: any SQLSession, _ sql: String, _ arguments: [SQLValue]) throws -> RankedNames {
        var names = RankedNames()
        for row in try db.rows(sql, arguments) {
            guard let image = row[0].int else { continue }
            names.append(image: image, Finding.Subject(location: row[1].text ?? "", image: row[2].text ?? "", digest: row[3].text ?? ""))
        }
        return names
    }

    /// Each name's windows of exposure to `advisory` (an id or alias), by location and name.
    public func exposure(advisory: String) throws -> [Exposure] {
        try backend.read { db in
            let ids = [advisory] + (try db.rows("SELECT advisory_id FROM advisory_alias WHERE alias = ?", [.text(advisory)]).compactMap { $0.first?.text })
            let known = try db.rows("SELECT id, published FROM advisory WHERE id IN (\(Self.marks(ids.count)))", ids.map { .text($0) })
            guard let first = known.first, let id = first[0].text else {
                throw InventoryError.query("\(advisory): no such advisory imported (cairn audit advisories import)")
            }
            let published = known.compactMap { $0[1].text.flatMap(OSVRecord.time) }.min()
            let affected = Set(try db.rows(HistorySQL.affectedImages(ids.count), ids.map { .text($0) } + ids.map { .text($0) }).compactMap { $0.first?.int })
            let runs = try Self.runTimes(db)
            var byName: [String: [[SQLValue]]] = [:]
            for row in try db.rows(HistorySQL.intervals, []) { byName[(row[0].text ?? "") + "\u{0}" + (row[1].text ?? ""), default: []].append(row) }
            var out: [Exposure] = []
            for key in byName.keys.sorted() {
                let intervals = byName[key]!.sorted { ($0[3].int ?? 0) < ($1[3].int ?? 0) }
                var open: Exposure?
                for (n, row) in intervals.enumerated() {
                    let isAffected = row[2].int.map(affected.contains) ?? false
                    if isAffected, open == nil {
                        let created = row[6].text.flatMap(OSVRecord.time)
                        // A name that pointed elsewhere before got the image when the run saw it.
                        let boundAt = n > 0 ? runs[row[3].int ?? 0] : nil
                        let start = [published, created, boundAt].compactMap { $0 }.max() ?? runs[row[3].int ?? 0] ?? Date()
                        open = Exposure(location: row[0].text ?? "", image: row[1].text ?? "", digest: row[5].text ?? "", advisory: id,
                                        from: OSVRecord.rfc3339(start), until: nil, fixedBy: nil, days: 0)
                    } else if !isAffected, var window = open {
                        window.until = runs[row[3].int ?? 0].map(OSVRecord.rfc3339)
                        window.fixedBy = row[5].text
                        out.append(window)
                        open = nil
                    }
                    // The name was removed and not bound again: the window ends there.
                    if n == intervals.count - 1, var window = open, let until = row[4].int {
                        window.until = runs[until].map(OSVRecord.rfc3339)
                        out.append(window)
                        open = nil
                    }
                }
                if let window = open { out.append(window) }
            }
            return out.map { e in
                var e = e
                let start = OSVRecord.time(e.from) ?? Date(), end = e.until.flatMap(OSVRecord.time) ?? Date()
                e.days = (max(0, end.timeIntervalSince(start)) / 86_400 * 10).rounded() / 10
                return e
            }
        }
    }
}

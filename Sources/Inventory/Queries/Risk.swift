import Foundation

/// `vulns --sort risk`: exploit data beside severity. An advisory is in CISA's KEV catalog when
/// its id or one of its aliases is; its EPSS score is the highest of theirs.
enum RiskSQL {
    static let lookup = """
        SELECT x.advisory_id, k.date_added, e.score FROM (
          SELECT id AS advisory_id, id AS cve FROM advisory
          UNION ALL SELECT advisory_id, alias FROM advisory_alias) x
        LEFT JOIN kev k ON k.cve = x.cve LEFT JOIN epss e ON e.cve = x.cve
        WHERE k.cve IS NOT NULL OR e.cve IS NOT NULL
        """
}

extension Inventory {
    /// Replaces the KEV catalog and/or the EPSS scores (each a whole snapshot). Returns the rows written.
    @discardableResult
    public func importExploitData(kev: [KEVEntry]?, epss: [EPSSScore]?) throws -> (kev: Int, epss: Int) {
        try backend.write { db in
            if let kev {
                try db.execute("DELETE FROM kev", [])
                try Self.insertRows(db, "kev (cve, date_added, ransomware)", kev.map { [.text($0.cve), .text($0.dateAdded), .text($0.ransomware)] })
            }
            if let epss {
                try db.execute("DELETE FROM epss", [])
                try Self.insertRows(db, "epss (cve, score, percentile)", epss.map { [.text($0.cve), .real($0.score), .real($0.percentile)] })
            }
            return (kev?.count ?? 0, epss?.count ?? 0)
        }
    }

    /// KEV date and EPSS score by advisory id, for the advisories that have either.
    static func risk(_ db: any SQLSession) throws -> [String: (kev: String?, epss: Double?)] {
        var out: [String: (kev: String?, epss: Double?)] = [:]
        for row in try db.rows(RiskSQL.lookup, []) {
            guard let id = row[0].text else { continue }
            var entry = out[id] ?? (nil, nil)
            if let date = row[1].text { entry.kev = date.isEmpty ? "yes" : date }
            if case .real(let score) = row[2] { entry.epss = max(entry.epss ?? 0, score) }
            out[id] = entry
        }
        return out
    }
}

extension Array where Element == Finding {
    /// Most urgent first: advisories in CISA's KEV catalog, then by severity, then by EPSS
    /// score; the answer's own order among equals.
    public func sortedByRisk() -> [Finding] {
        func key(_ f: Finding) -> (Int, Int, Double) {
            (f.kev == nil ? 1 : 0, -OSVRecord.Severity.rank(f.severity ?? ""), -(f.epss.flatMap(Double.init) ?? -1))
        }
        return enumerated().sorted { a, b in
            let x = key(a.element), y = key(b.element)
            return x != y ? x < y : a.offset < b.offset
        }.map(\.element)
    }
}

import Foundation

/// Which package versions an advisory's affected entry matches, and how sure the answer is.
///
/// Never "not affected" when unsure: a version that is not a version of its ecosystem (dpkg's
/// syntax, PEP 440, SemVer), or a package of an ecosystem whose order Cairn does not know
/// (RubyGems, crates.io, NuGet, …: recognised by purl type), matched by name against a range is
/// recorded as `unknown` with the reason, and every answer lists it so.
enum AdvisoryMatch {
    enum Verdict: Equatable {
        case notAffected
        case affected(fixed: String?)
        case unknown(String)
    }

    /// The ecosystem, release and name an affected entry names (from its package, else its
    /// purl): an ordered ecosystem's rawValue, or the OSV name of an ecosystem Cairn only
    /// matches by name (`PackageURL.unorderedEcosystems`); nil for anything else.
    static func target(_ a: OSVRecord.Affected) -> (ecosystem: String, release: String, name: String)? {
        if let eco = a.package?.ecosystem, let name = a.package?.name {
            let (ecosystem, release) = Ecosystem.parse(eco)
            if ecosystem != .generic { return (ecosystem.rawValue, release, ecosystem.normalize(name: name)) }
            let parts = eco.split(separator: ":", maxSplits: 1).map(String.init)
            guard let base = parts.first, PackageURL.unorderedEcosystemNames.contains(base) else { return nil }
            return (base, parts.count > 1 ? parts[1] : "", name)
        }
        if let purl = a.package?.purl.flatMap(PackageURL.init) {
            let osv = purl.osv
            if osv.ecosystem != .generic { return (osv.ecosystem.rawValue, "", osv.name) }
            return purl.unorderedEcosystem.map { ($0, "", purl.name) }
        }
        return nil
    }

    /// The verdict for one version: `ecosystem` is the stored ecosystem name (an ordered
    /// ecosystem's rawValue or an unordered one's OSV name).
    static func verdict(_ version: String, ecosystem name: String, ranges: AffectedRanges) -> Verdict {
        if ranges.versions.contains(version) { return .affected(fixed: nil) }
        let evaluated = ranges.ranges.filter { $0.type == "ECOSYSTEM" || $0.type == "SEMVER" }
        // Every version from the first: no order needed.
        if !evaluated.isEmpty, evaluated.allSatisfy({ $0.events.allSatisfy { $0.introduced == "0" } }) { return .affected(fixed: nil) }
        if let ordered = Ecosystem(rawValue: name), ordered != .generic {
            if let why = ordered.invalidVersionReason(version) {
                return evaluated.isEmpty ? .notAffected : .unknown("\(name) version \(version) \(why): whether it is affected cannot be told")
            }
            let result = ranges.evaluate(version, in: ordered)
            return result.affected ? .affected(fixed: result.fixed) : .notAffected
        }
        // An ecosystem without an ordering here: SEMVER ranges are still exact, ECOSYSTEM ones not.
        if evaluated.contains(where: { $0.type == "ECOSYSTEM" }) || !SemVer.isValid(version) && !evaluated.isEmpty {
            return .unknown("Cairn cannot order \(name) versions: \(version) may be in the advisory's range")
        }
        let result = AffectedRanges(ranges: evaluated, versions: []).evaluate(version, in: .npm)
        return result.affected ? .affected(fixed: result.fixed) : .notAffected
    }

    /// Records a verdict for a package.
    static func record(_ db: any SQLSession, package: SQLValue, advisory: String, release: String, _ verdict: Verdict) throws {
        let (fixed, unknown): (String, String)
        switch verdict {
        case .notAffected: return
        case .affected(let f): (fixed, unknown) = (f ?? "", "")
        case .unknown(let why): (fixed, unknown) = ("", why)
        }
        try db.execute("INSERT INTO vulnerable (package_id, advisory_id, release, fixed, unknown) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       [package, .text(advisory), .text(release), .text(fixed), .text(unknown)])
    }

    /// The stored ecosystem name and the name advisories use for a package row (ecosystem,
    /// name, version, purl, source name, source version); nil when no advisory can name it.
    static func key(_ row: [SQLValue]) -> (ecosystem: String, name: String, version: String)? {
        let ecosystem = Ecosystem(rawValue: row[1].text ?? "") ?? .generic
        if ecosystem == .generic {
            guard let purl = row[4].text.flatMap(PackageURL.init), let unordered = purl.unorderedEcosystem else { return nil }
            return (unordered, row[2].text ?? "", row[3].text ?? "")
        }
        let p = PackageRecord(ecosystem: ecosystem, name: row[2].text ?? "", version: row[3].text ?? "",
                              sourceName: row[5].text ?? "", sourceVersion: row[6].text ?? "")
        return (ecosystem.rawValue, p.advisoryKey.name, p.advisoryKey.version)
    }

    static let packageColumns = "id, ecosystem, name, version, purl, source_name, source_version"

    /// Evaluates one affected entry against every package of that name.
    static func match(_ db: any SQLSession, advisory: String, ecosystem: String, release: String, name: String, ranges: AffectedRanges) throws {
        let ordered = Ecosystem(rawValue: ecosystem).map { $0 != .generic } ?? false
        let rows = try db.rows("SELECT \(packageColumns) FROM package WHERE ecosystem = ? AND (name = ? OR source_name = ?)",
                               [.text(ordered ? ecosystem : ""), .text(name), .text(name)])
        for row in rows {
            guard let key = key(row), key.ecosystem == ecosystem, key.name == name else { continue }
            try record(db, package: row[0], advisory: advisory, release: release, verdict(key.version, ecosystem: ecosystem, ranges: ranges))
        }
    }

    /// Evaluates the packages added since the last match against the advisories naming them.
    static func matchNewPackages(_ db: any SQLSession) throws {
        let fresh = try db.rows("SELECT \(packageColumns) FROM package WHERE matched = 0", [])
        guard !fresh.isEmpty else { return }
        var cache: [String: [(advisory: String, release: String, ranges: AffectedRanges)]] = [:]
        for row in fresh {
            guard let key = key(row) else { continue }
            let cacheKey = key.ecosystem + "\u{0}" + key.name
            if cache[cacheKey] == nil {
                cache[cacheKey] = try db.rows("SELECT advisory_id, release, ranges FROM advisory_affected WHERE ecosystem = ? AND name = ?",
                                              [.text(key.ecosystem), .text(key.name)]).compactMap { r in
                    guard let json = r[2].text, let ranges = try? JSONDecoder().decode(AffectedRanges.self, from: Data(json.utf8)) else { return nil }
                    return (r[0].text ?? "", r[1].text ?? "", ranges)
                }
            }
            for entry in cache[cacheKey] ?? [] {
                try record(db, package: row[0], advisory: entry.advisory, release: entry.release,
                           verdict(key.version, ecosystem: key.ecosystem, ranges: entry.ranges))
            }
        }
        try db.execute("UPDATE package SET matched = 1 WHERE matched = 0")
    }
}

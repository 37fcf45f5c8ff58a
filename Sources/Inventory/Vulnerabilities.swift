/// `audit vulns`: which named images hold a package an advisory affects, who brought it, and the
/// fixed version.
///
/// Asked in pieces rather than as one join: the affected packages (one row per package version
/// and advisory, a few thousand), the buildpack layers and run images holding them (two integers
/// and two short names per row), then the names of the images found. A whole-fleet answer is
/// hundreds of thousands of findings; as one join each row repeated every text column and cost
/// ~4× the join itself (10.2 s for 798,209 findings on 100,000 images, see issue 16's note).
extension Inventory {
    /// A package version an advisory affects, with what a finding shows of it.
    struct Affected {
        var advisory, severity, ecosystem, name, version, fixed: String
        /// "" for every release, else the distribution release it is limited to (`12` of `Debian:12`).
        var release: String

        func applies(toDistroVersion distro: String) -> Bool {
            release.isEmpty || distro == release || distro.hasPrefix(release + ".")
        }
    }

    /// Named images with a package affected by an advisory: `id` (an advisory id or one of its
    /// aliases) and `minimumSeverity` (LOW, MEDIUM, HIGH, CRITICAL) narrow it. Sorted by image
    /// name, location, advisory, package, then origin (run image first), bytewise.
    public func vulnerabilities(id: String? = nil, minimumSeverity: String? = nil) throws -> [Finding] {
        try backend.read { db in
            let (filter, args) = try Self.advisoryFilter(db, id: id, minimumSeverity: minimumSeverity)
            var affected: [Int64: [Affected]] = [:]
            for row in try db.rows("""
                SELECT v.package_id, v.advisory_id, a.severity, p.ecosystem, p.name, p.version, v.fixed, v.release
                FROM vulnerable v JOIN advisory a ON a.id = v.advisory_id JOIN package p ON p.id = v.package_id
                WHERE 1 = 1\(filter)
                """, args) {
                affected[row[0].int ?? 0, default: []].append(
                    Affected(advisory: row[1].text ?? "", severity: row[2].text ?? "", ecosystem: row[3].text ?? "",
                             name: row[4].text ?? "", version: row[5].text ?? "", fixed: row[6].text ?? "", release: row[7].text ?? ""))
            }
            guard !affected.isEmpty else { return [] }
            var found = FoundVulnerabilities()
            // Brought by buildpacks: advisories for every release only (an app layer has no distribution).
            for row in try db.rows("""
                SELECT ip.image_id, ip.package_id, ip.buildpack, ip.layer FROM image_package ip
                WHERE ip.package_id IN (SELECT v.package_id FROM vulnerable v JOIN advisory a ON a.id = v.advisory_id WHERE v.release = ''\(filter))
                """, args) {
                guard let image = row[0].int, let package = row[1].int else { continue }
                for a in affected[package] ?? [] where a.release.isEmpty {
                    found.add(image: image, a, buildpack: row[2].text ?? "", layer: row[3].text ?? "")
                }
            }
            // Brought by run images: advisories for every release or for the run image's.
            var byRunImage: [Int64: [(Affected, runImage: String)]] = [:]
            for row in try db.rows("""
                SELECT rp.run_image_id, rp.package_id, r.name, r.distro_version FROM run_image_package rp
                JOIN run_image r ON r.id = rp.run_image_id
                WHERE rp.package_id IN (SELECT v.package_id FROM vulnerable v JOIN advisory a ON a.id = v.advisory_id WHERE 1 = 1\(filter))
                """, args) {
                guard let run = row[0].int, let package = row[1].int else { continue }
                let distro = row[3].text ?? ""
                for a in affected[package] ?? [] where a.applies(toDistroVersion: distro) {
                    byRunImage[run, default: []].append((a, row[2].text ?? ""))
                }
            }
            if !byRunImage.isEmpty {
                for chunk in Self.chunks(byRunImage.keys.sorted()) {
                    for row in try db.rows("SELECT id, run_image_id FROM image WHERE run_image_id IN (\(Self.marks(chunk.count)))",
                                           chunk.map { .int($0) }) {
                        guard let image = row[0].int, let run = row[1].int else { continue }
                        for (a, name) in byRunImage[run] ?? [] { found.add(image: image, a, runImage: name) }
                    }
                }
            }
            return found.findings(names: try Self.imageNames(db, found.images))
        }
    }

    /// The SQL condition (on `v` vulnerable and `a` advisory) for an advisory id and a minimum severity.
    static func advisoryFilter(_ db: any SQLSession, id: String?, minimumSeverity: String?) throws -> (String, [SQLValue]) {
        var filter = ""
        var args: [SQLValue] = []
        if let id {
            // The advisory ids first, then a plain IN list: with `= ? OR IN (subquery)` PostgreSQL
            // could not use the index and hashed whole tables (3.6 s for 75 rows on 100,000 images).
            let ids = [id] + (try db.rows("SELECT advisory_id FROM advisory_alias WHERE alias = ?", [.text(id)]).compactMap { $0.first?.text })
            filter += " AND v.advisory_id IN (\(marks(ids.count)))"
            args += ids.map { .text($0) }
        }
        if let minimumSeverity {
            let rank = OSVRecord.Severity.rank(OSVRecord.Severity.normalize(minimumSeverity))
            guard rank >= 0 else { throw InventoryError.query("severity \"\(minimumSeverity)\": expected LOW, MEDIUM, HIGH or CRITICAL") }
            let levels = OSVRecord.Severity.order[rank...]
            filter += " AND a.severity IN (\(marks(levels.count)))"
            args += levels.map { .text($0) }
        }
        return (filter, args)
    }

    /// Each image's names (location, name) and digest; all at once when most images are wanted.
    static func imageNames(_ db: any SQLSession, _ images: Set<Int64>) throws -> [Int64: [(location: String, name: String, digest: String)]] {
        var names: [Int64: [(location: String, name: String, digest: String)]] = [:]
        let sql = "SELECT n.image_id, n.location, n.name, i.digest FROM image_name n JOIN image i ON i.id = n.image_id"
        let batches: [[Int64]?] = images.count > 5_000 ? [nil] : chunks(images.sorted())
        for batch in batches {
            let rows = try batch.map { try db.rows(sql + " WHERE n.image_id IN (\(marks($0.count)))", $0.map { .int($0) }) } ?? db.rows(sql, [])
            for row in rows {
                guard let image = row[0].int, images.contains(image) else { continue }
                names[image, default: []].append((row[1].text ?? "", row[2].text ?? "", row[3].text ?? ""))
            }
        }
        return names
    }

    /// `n` SQL placeholders for an IN list: `?, ?, ?`.
    static func marks(_ n: Int) -> String { Array(repeating: "?", count: n).joined(separator: ", ") }

    static func chunks<T>(_ values: [T], size: Int = 1_000) -> [[T]] {
        stride(from: 0, to: values.count, by: size).map { Array(values[$0..<min($0 + size, values.count)]) }
    }
}

/// Findings by image id before their names are known; sorted once, by integer ranks of the
/// distinct texts (bytewise, absent first) rather than by comparing strings per pair.
struct FoundVulnerabilities {
    struct Hit {
        var image: Int64
        var affected: Inventory.Affected
        var buildpack, layer, runImage: String?
    }

    /// The sort key: image name, location, advisory, package, buildpack, layer, run image.
    struct Key: Comparable {
        var ranks: (Int, Int, Int, Int, Int, Int)
        var run: Int
        static func < (a: Key, b: Key) -> Bool { a.ranks != b.ranks ? a.ranks < b.ranks : a.run < b.run }
        static func == (a: Key, b: Key) -> Bool { a.ranks == b.ranks && a.run == b.run }
    }

    var hits: [Hit] = []
    var images: Set<Int64> = []

    mutating func add(image: Int64, _ a: Inventory.Affected, buildpack: String? = nil, layer: String? = nil, runImage: String? = nil) {
        hits.append(Hit(image: image, affected: a, buildpack: buildpack, layer: layer, runImage: runImage))
        images.insert(image)
    }

    func findings(names: [Int64: [(location: String, name: String, digest: String)]]) -> [Finding] {
        let advisories = Ranks(), packages = Ranks(), origins = Ranks(), imageNames = Ranks(), locations = Ranks()
        for h in hits {
            advisories.add(h.affected.advisory)
            packages.add(h.affected.name)
            origins.add(h.buildpack)
            origins.add(h.layer)
            origins.add(h.runImage)
        }
        for entries in names.values { for e in entries { imageNames.add(e.name); locations.add(e.location) } }
        for r in [advisories, packages, origins, imageNames, locations] { r.freeze() }

        // The keys are sorted with the positions of what they stand for; the findings (a dozen
        // strings each) are made once, in order, rather than moved by the sort.
        var keys: [Key] = []
        var entries: [(hit: Int, location: String, name: String, digest: String)] = []
        keys.reserveCapacity(hits.count)
        entries.reserveCapacity(hits.count)
        // Each text is ranked once per image name and once per hit, not once per finding.
        var rankedNames: [Int64: [(location: String, name: String, digest: String, nameRank: Int, locationRank: Int)]] = [:]
        for (image, entries) in names {
            rankedNames[image] = entries.map { ($0.location, $0.name, $0.digest, imageNames[$0.name], locations[$0.location]) }
        }
        for (i, h) in hits.enumerated() {
            let advisory = advisories[h.affected.advisory], package = packages[h.affected.name]
            let buildpack = origins[h.buildpack], layer = origins[h.layer], run = origins[h.runImage]
            for n in rankedNames[h.image] ?? [] {
                keys.append(Key(ranks: (n.nameRank, n.locationRank, advisory, package, buildpack, layer), run: run))
                entries.append((i, n.location, n.name, n.digest))
            }
        }
        var order = Array(keys.indices)
        order.sort { keys[$0] < keys[$1] }
        return order.map { k in
            let e = entries[k], h = hits[e.hit], a = h.affected
            return Finding(location: e.location, image: e.name, digest: e.digest, advisory: a.advisory, severity: a.severity,
                           ecosystem: a.ecosystem, package: a.name, version: a.version, fixed: a.fixed,
                           buildpack: h.buildpack, layer: h.layer, runImage: h.runImage)
        }
    }
}

/// The rank of each distinct text in bytewise order; nil ranks first.
final class Ranks {
    private var values: Set<String> = []
    private var rank: [String: Int] = [:]

    func add(_ value: String?) { if let value { values.insert(value) } }

    func freeze() {
        for (i, v) in values.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() { rank[v] = i + 1 }
    }

    subscript(_ value: String?) -> Int { value.flatMap { rank[$0] } ?? 0 }
}

/// `<2.3.2`, `>=1.0,<2`, `=1.2.3`, `1.2.3`, `!=1.0`: all must hold, compared in an ecosystem's
/// ordering.
public struct VersionRange: Sendable, CustomStringConvertible {
    public var constraints: [(op: String, version: String)]

    public init(parsing text: String) throws {
        constraints = []
        for part in text.split(separator: ",").map({ String(String($0).trimmingSpaces) }) {
            guard let op = ["<=", ">=", "==", "!=", "<", ">", "="].first(where: { part.hasPrefix($0) }) else {
                guard !part.isEmpty else { throw InventoryError.query("version range \"\(text)\": empty constraint") }
                constraints.append(("=", part))
                continue
            }
            let version = String(String(part.dropFirst(op.count)).trimmingSpaces)
            guard !version.isEmpty else { throw InventoryError.query("version range \"\(text)\": no version after \(op)") }
            constraints.append((op == "==" ? "=" : op, version))
        }
        guard !constraints.isEmpty else { throw InventoryError.query("version range \"\(text)\": expected e.g. <2.3.2 or >=1.0,<2") }
    }

    public func contains(_ version: String, in ecosystem: Ecosystem) -> Bool {
        constraints.allSatisfy { c in
            let r = ecosystem.compare(version, c.version)
            switch c.op {
            case "<": return r < 0
            case "<=": return r <= 0
            case ">": return r > 0
            case ">=": return r >= 0
            case "!=": return r != 0
            default: return r == 0
            }
        }
    }

    public var description: String { constraints.map { ($0.op == "=" ? "" : $0.op) + $0.version }.joined(separator: ",") }
}

/// One named image a query found, and why.
public struct Finding: Codable, Sendable, Hashable {
    public var location: String
    public var image: String
    public var digest: String
    /// The advisory (vulns), else nil.
    public var advisory: String?
    public var severity: String?
    public var ecosystem: String?
    public var package: String?
    public var version: String?
    public var fixed: String?
    /// Who brought the package: a buildpack (and layer, "" for its launch SBOM), else the run image.
    public var buildpack: String?
    public var layer: String?
    public var runImage: String?
    /// run-image and plan queries: current, outdated or unknown.
    public var status: String?

    /// Where the package came from, for a table.
    public var origin: String {
        if let buildpack { return buildpack + ((layer ?? "").isEmpty ? "" : ":" + (layer ?? "")) }
        return "run image " + (runImage ?? "?")
    }
}

extension Inventory {
    static let findingColumns = "n.location, n.name, i.digest"

    /// Named images with a package of this name (or purl), optionally in a version range.
    public func package(_ nameOrPURL: String, versions: VersionRange? = nil) throws -> [Finding] {
        var names: Set<String>
        var ecosystems: [Ecosystem]
        if let purl = PackageURL(nameOrPURL) {
            let osv = purl.osv
            names = [osv.name]
            ecosystems = [osv.ecosystem]
        } else {
            ecosystems = Ecosystem.allCases
            names = Set(ecosystems.map { $0.normalize(name: nameOrPURL) })
        }
        let marks = Self.marks(names.count)
        let nameArgs = names.sorted().map { SQLValue.text($0) }
        let ecoMarks = Self.marks(ecosystems.count)
        let ecoArgs = ecosystems.map { SQLValue.text($0.rawValue) }
        let sql = """
            SELECT \(Self.findingColumns), p.ecosystem, p.name, p.version, p.source_name, p.source_version, ip.buildpack, ip.layer, NULL
            FROM package p
            JOIN image_package ip ON ip.package_id = p.id
            JOIN image i ON i.id = ip.image_id
            JOIN image_name n ON n.image_id = i.id
            WHERE (p.name IN (\(marks)) OR p.source_name IN (\(marks))) AND p.ecosystem IN (\(ecoMarks))
            UNION ALL
            SELECT \(Self.findingColumns), p.ecosystem, p.name, p.version, p.source_name, p.source_version, NULL, NULL, r.name
            FROM package p
            JOIN run_image_package rp ON rp.package_id = p.id
            JOIN run_image r ON r.id = rp.run_image_id
            JOIN image i ON i.run_image_id = r.id
            JOIN image_name n ON n.image_id = i.id
            WHERE (p.name IN (\(marks)) OR p.source_name IN (\(marks))) AND p.ecosystem IN (\(ecoMarks))
            """
        let args = nameArgs + nameArgs + ecoArgs
        return try backend.read { db in
            try db.rows(sql, args + args).compactMap { row -> Finding? in
                let ecosystem = Ecosystem(rawValue: row[3].text ?? "") ?? .generic
                let p = PackageRecord(ecosystem: ecosystem, name: row[4].text ?? "", version: row[5].text ?? "",
                                      sourceName: row[6].text ?? "", sourceVersion: row[7].text ?? "")
                // Asked by source name: the source version is the one the range means.
                let version = names.contains(p.name) ? p.version : p.advisoryKey.version
                if let versions, !versions.contains(version, in: ecosystem) { return nil }
                return Finding(location: row[0].text ?? "", image: row[1].text ?? "", digest: row[2].text ?? "",
                               ecosystem: ecosystem.rawValue, package: p.name, version: p.version,
                               buildpack: row[8].text, layer: row[9].text, runImage: row[10].text)
            }.sortedFindings()
        }
    }

    /// Named images built with (or whose build metadata lists) this buildpack, optionally in a
    /// version range.
    public func buildpack(_ id: String, versions: VersionRange? = nil) throws -> [Finding] {
        try backend.read { db in
            try db.rows("""
                SELECT \(Self.findingColumns), m.version FROM image_module m
                JOIN image i ON i.id = m.image_id JOIN image_name n ON n.image_id = i.id
                WHERE m.module = ? AND m.kind = 'buildpack'
                """, [.text(id)]).compactMap { row -> Finding? in
                let version = row[3].text ?? ""
                if let versions, !versions.contains(version, in: .generic) { return nil }
                return Finding(location: row[0].text ?? "", image: row[1].text ?? "", digest: row[2].text ?? "",
                               version: version, buildpack: id)
            }.sortedFindings()
        }
    }

    /// Named images and their launcher, optionally in a version range.
    public func launcher(versions: VersionRange? = nil) throws -> [Finding] {
        try backend.read { db in
            // The range is checked once per distinct version, the images fetched for those only.
            var filter = ""
            var args: [SQLValue] = []
            if let versions {
                let all = try db.rows("SELECT DISTINCT launcher_version FROM image", []).compactMap { $0.first?.text }
                let wanted = all.filter { !$0.isEmpty && versions.contains($0, in: .generic) }
                guard !wanted.isEmpty else { return [] }
                filter = " WHERE i.launcher_version IN (\(Self.marks(wanted.count)))"
                args = wanted.map { .text($0) }
            }
            return try db.rows("""
                SELECT \(Self.findingColumns), i.launcher_version, i.launcher_diffid FROM image i JOIN image_name n ON n.image_id = i.id\(filter)
                """, args).map { row in
                Finding(location: row[0].text ?? "", image: row[1].text ?? "", digest: row[2].text ?? "",
                        package: "launcher", version: row[3].text ?? "", layer: row[4].text)
            }.sortedFindings()
        }
    }

    /// Named images with their run image and whether a newer version of it is known: a version of
    /// the same name or `io.buildpacks.base.id` that is later released, or later found under the
    /// name, or later created.
    public func runImages(outdatedOnly: Bool = false, name: String? = nil) throws -> [Finding] {
        try backend.read { db in
            let versions = try Self.runImageVersions(db)
            // Each run image version's status once; the images fetched for the wanted ones only.
            var newest: [Int64: RunImageVersions.Version] = [:]
            for v in versions.byID.values { newest[v.id] = versions.newest(for: v) }
            func outdated(_ id: Int64) -> Bool { newest[id].map { $0.id != id } ?? false }
            var filter = ""
            var args: [SQLValue] = []
            if outdatedOnly || name != nil {
                let wanted = versions.byID.values.filter { (name == nil || $0.name == name) && (!outdatedOnly || outdated($0.id)) }.map(\.id)
                guard !wanted.isEmpty else { return [] }
                filter = " WHERE i.run_image_id IN (\(Self.marks(wanted.count)))"
                args = wanted.map { .int($0) }
            }
            return try db.rows("""
                SELECT \(Self.findingColumns), i.run_image_id FROM image i JOIN image_name n ON n.image_id = i.id\(filter)
                """, args).map { row -> Finding in
                let run = row[3].int.flatMap { versions.byID[$0] }
                let status = run == nil ? "unknown" : outdated(run!.id) ? "outdated" : "current"
                return Finding(location: row[0].text ?? "", image: row[1].text ?? "", digest: row[2].text ?? "",
                               version: run?.topLayer, fixed: status == "outdated" ? run.flatMap { newest[$0.id]?.topLayer } : nil,
                               runImage: run?.name, status: status)
            }.sortedFindings()
        }
    }

}

extension Array where Element == Finding {
    /// By image, location, advisory, package, then origin. The keys are made once per finding,
    /// not per comparison (`origin` builds a string): for 21,785 findings of a package the sort
    /// with keys made in the comparison took a third of the query's time.
    func sortedFindings() -> [Finding] {
        let keys = map { ($0.image, $0.location, $0.advisory ?? "", $0.package ?? "", $0.origin) }
        return indices.sorted { keys[$0] < keys[$1] }.map { self[$0] }
    }
}

/// Every run image version the inventory knows, and which is the newest of each run image.
struct RunImageVersions {
    struct Version {
        var id: Int64
        var identity, name, topLayer, reference, released, created, distroVersion: String
        var lastNamed, firstSeen: Int64
        var packagesKnown: Bool

        /// Later release date first, then later found under its name, then later created, then later seen.
        func isNewer(than other: Version) -> Bool {
            (released, lastNamed, created, firstSeen) > (other.released, other.lastNamed, other.created, other.firstSeen)
        }
    }

    var byID: [Int64: Version] = [:]

    /// The versions of `v`'s run image: the same name, or the same non-empty identity.
    func family(of v: Version) -> [Version] {
        byID.values.filter { $0.name == v.name || (!v.identity.isEmpty && $0.identity == v.identity) }
    }

    func newest(for v: Version) -> Version? {
        family(of: v).max { $1.isNewer(than: $0) }
    }
}

extension Inventory {
    static func runImageVersions(_ db: any SQLSession) throws -> RunImageVersions {
        var versions = RunImageVersions()
        for row in try db.rows("""
            SELECT id, identity, name, top_layer, reference, released, created, distro_version, last_named, first_seen, packages_known FROM run_image
            """, []) {
            let v = RunImageVersions.Version(id: row[0].int ?? 0, identity: row[1].text ?? "", name: row[2].text ?? "",
                                             topLayer: row[3].text ?? "", reference: row[4].text ?? "", released: row[5].text ?? "",
                                             created: row[6].text ?? "", distroVersion: row[7].text ?? "",
                                             lastNamed: row[8].int ?? 0, firstSeen: row[9].int ?? 0, packagesKnown: row[10].int == 1)
            versions.byID[v.id] = v
        }
        return versions
    }
}

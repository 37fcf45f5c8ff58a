import Foundation

extension Inventory {
    /// Named images with a package of this name (or purl), optionally in a version range. Sorted
    /// as `vulns` sorts: by image name, location, package, origin (run image first), then
    /// ecosystem and version; bytewise.
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
        let nameArgs = names.sorted().map { SQLValue.text($0) }
        let ecoArgs = ecosystems.map { SQLValue.text($0.rawValue) }
        return try backend.read { db in
            // The package versions of that name first (a few), checked against the range here,
            // then their images as `vulns` finds an advisory's: listed package ids, arrays on
            // PostgreSQL. As one join of names and packages (a UNION of the two origins) it cost
            // PostgreSQL 108-170 ms on the bench fleet for 10,000-22,000 findings.
            var trace = QueryTrace("package")
            var found = FoundVulnerabilities()
            var byPackage: [Int64: [Int32]] = [:]
            try db.forEachRow("""
                SELECT id, ecosystem, name, version, source_name, source_version FROM package
                WHERE (name IN (\(Self.marks(names.count))) OR source_name IN (\(Self.marks(names.count)))) AND ecosystem IN (\(Self.marks(ecosystems.count)))
                """, nameArgs + nameArgs + ecoArgs) { row in
                guard let id = row.int(0) else { return }
                let eco = Ecosystem(rawValue: row.text(1) ?? "") ?? .generic
                let p = PackageRecord(ecosystem: eco, name: row.text(2) ?? "", version: row.text(3) ?? "",
                                      sourceName: row.text(4) ?? "", sourceVersion: row.text(5) ?? "")
                // Asked by source name: the source version is the one the range means.
                let wanted = names.contains(p.name) ? p.version : p.advisoryKey.version
                if let versions, !versions.contains(wanted, in: eco) { return }
                let matter = Finding.Matter(advisory: nil, severity: nil, ecosystem: eco.rawValue, package: p.name, version: p.version, fixed: nil)
                byPackage[id, default: []].append(found.add(Affected(matter: matter, release: "")))
            }
            guard !found.affected.isEmpty else { return try Self.withUnknown(db, []) }
            trace.lap("package versions")
            let known = try findings(db, &found, byPackage: byPackage, allNamesAbove: nil, trace: &trace)
            defer { trace.lap("unknown images") }
            return try Self.withUnknown(db, known)
        }
    }
}

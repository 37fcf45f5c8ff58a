import Foundation

extension Inventory {
    /// Named images with their run image and whether a newer version of it is known: a version of
    /// the same name or `io.buildpacks.base.id` that is later released, or later found under the
    /// name, or later created.
    public func runImages(outdatedOnly: Bool = false, name: String? = nil) throws -> [Finding] {
        try backend.read { db in
            var trace = QueryTrace("run-image")
            let versions = try Self.runImageVersions(db)
            trace.lap("run image versions")
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
            // What a run image version's findings show is made once per version.
            var parts: [Int64: (Finding.Matter, Finding.Source)] = [:]
            let unknown = (Finding.Matter(advisory: nil, severity: nil, ecosystem: nil, package: nil, version: nil, fixed: nil),
                           Finding.Source(buildpack: nil, layer: nil, runImage: nil, status: "unknown"))
            var findings: [Finding] = []
            func add(location: String, image: String, digest: String, runImage id: Int64?) {
                let (matter, source) = id.flatMap { id in
                    parts[id] ?? versions.byID[id].map { run in
                        let isOutdated = outdated(run.id)
                        let made = (Finding.Matter(advisory: nil, severity: nil, ecosystem: nil, package: nil, version: run.layers,
                                                   fixed: isOutdated ? newest[run.id]?.layers : nil),
                                    Finding.Source(buildpack: nil, layer: nil, runImage: run.name, status: isOutdated ? "outdated" : "current"))
                        parts[id] = made
                        return made
                    }
                } ?? unknown
                findings.append(Finding(Finding.Subject(location: location, image: image, digest: digest), matter, source))
            }
            if backend.dialect == .postgres {
                // Four arrays back rather than a row per name (the whole-fleet --outdated's
                // 60,580 rows one by one through the client: 160-193 ms; so, 112 ms). In four
                // queued parts it took longer (each part joined the whole name table again).
                try db.forEachRow("""
                    SELECT array_agg(n.location), array_agg(n.name), array_agg(i.digest), array_agg(coalesce(i.run_image_id, 0))
                    FROM image i JOIN image_name n ON n.image_id = i.id\(filter)
                    """, args) { row in
                    let (locations, names, digests, runs) = (try row.texts(0), try row.texts(1), try row.texts(2), try row.ints(3))
                    guard [names.count, digests.count, runs.count].allSatisfy({ $0 == locations.count }) else {
                        throw InventoryError.database(location: "image_name", reason: "image name arrays of different lengths")
                    }
                    findings.reserveCapacity(findings.count + locations.count)
                    for i in locations.indices {
                        add(location: locations[i], image: names[i], digest: digests[i], runImage: runs[i] == 0 ? nil : runs[i])
                    }
                }
            } else {
                try db.forEachRow("""
                    SELECT \(Self.findingColumns), i.run_image_id FROM image i JOIN image_name n ON n.image_id = i.id\(filter)
                    """, args) { row in
                    add(location: row.text(0) ?? "", image: row.text(1) ?? "", digest: row.text(2) ?? "", runImage: row.int(3))
                }
            }
            trace.lap("images (\(findings.count))")
            defer { trace.lap("sorted") }
            return findings.sortedFindings()
        }
    }
}

/// Every run image version the inventory knows (by name and the ChainID of its layers, which
/// findings show as the version), and which is the newest of each run image.
struct RunImageVersions {
    struct Version {
        var id: Int64
        var identity, name, layers, reference, released, created, distroVersion: String
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
            SELECT id, identity, name, layers, reference, released, created, distro_version, last_named, first_seen, packages_known FROM run_image
            """, []) {
            let v = RunImageVersions.Version(id: row[0].int ?? 0, identity: row[1].text ?? "", name: row[2].text ?? "",
                                             layers: row[3].text ?? "", reference: row[4].text ?? "", released: row[5].text ?? "",
                                             created: row[6].text ?? "", distroVersion: row[7].text ?? "",
                                             lastNamed: row[8].int ?? 0, firstSeen: row[9].int ?? 0, packagesKnown: row[10].int == 1)
            versions.byID[v.id] = v
        }
        return versions
    }
}

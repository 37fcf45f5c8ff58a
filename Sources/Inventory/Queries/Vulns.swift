import Foundation

import Foundation

/// `audit vulns`: which named images hold a package an advisory affects, who brought it, and the
/// fixed version.
///
/// Asked in pieces rather than as one join: the affected packages (one row per package version
/// and advisory, a few thousand), the buildpack layers and run images holding them (two integers
/// and two short names per row), then the names of the images found. A whole-fleet answer is
/// hundreds of thousands of findings; as one join each row repeated every text column and cost
/// ~4× the join itself (10.2 s for 798,209 findings on 100,000 images, see issue 16's note). The
/// rows are stepped in place, and a finding is three shared parts (see `Finding`): the image name,
/// the affected package version, who brought it.
/// The SQL of `vulns` (and of `package`, which finds its images the same way), both dialects.
enum VulnsSQL {
    /// The affected package versions: one row per package version and advisory; `filter` from
    /// `Inventory.advisoryFilter`.
    static func affected(filter: String) -> String {
        """
        SELECT v.package_id, v.advisory_id, a.severity, p.ecosystem, p.name, p.version, v.fixed, v.release, v.unknown
        FROM vulnerable v JOIN advisory a ON a.id = v.advisory_id JOIN package p ON p.id = v.package_id
        WHERE 1 = 1\(filter)
        """
    }

    /// The buildpack layers holding `count` listed package ids. The ids are listed, a few hundred
    /// per statement: PostgreSQL's planner cannot tell that vulnerable package versions are rare
    /// and, given a subquery, hashed all 9.9 million rows of a 100,000-image fleet (2.3 s; 34 ms
    /// per 500 ids listed). PostgreSQL answers each package's images per layer as one array: rows
    /// one by one through the client cost ~2 µs each (381,911 rows: 1 s of 1.1 s).
    static func buildpackRows(_ count: Int, postgres: Bool) -> String {
        postgres
            ? "SELECT package_id, buildpack, layer, array_agg(image_id) FROM image_package WHERE package_id IN (\(Inventory.marks(count))) GROUP BY package_id, buildpack, layer"
            : "SELECT image_id, package_id, buildpack, layer FROM image_package WHERE package_id IN (\(Inventory.marks(count)))"
    }

    /// The run images holding `count` listed package ids.
    static func runImageRows(_ count: Int, postgres: Bool) -> String {
        postgres
            ? "SELECT package_id, array_agg(run_image_id) FROM run_image_package WHERE package_id IN (\(Inventory.marks(count))) GROUP BY package_id"
            : "SELECT package_id, run_image_id FROM run_image_package WHERE package_id IN (\(Inventory.marks(count)))"
    }

    /// The images of `count` listed run images: (run image, image) rows; on PostgreSQL (run
    /// image, array of images) — a common run image package: 21,785 rows, ~50 ms one by one.
    static func imagesOfRunImages(_ count: Int, postgres: Bool) -> String {
        postgres
            ? "SELECT run_image_id, array_agg(id) FROM image WHERE run_image_id IN (\(Inventory.marks(count))) GROUP BY run_image_id"
            : "SELECT run_image_id, id FROM image WHERE run_image_id IN (\(Inventory.marks(count)))"
    }
}

extension Inventory {
    /// A package version an advisory affects, with what a finding shows of it.
    struct Affected {
        var matter: Finding.Matter
        /// "" for every release, else the distribution release it is limited to (`12` of `Debian:12`).
        var release: String

        func applies(toDistroVersion distro: String) -> Bool {
            release.isEmpty || distro == release || distro.hasPrefix(release + ".")
        }
    }

    /// Named images with a package affected by an advisory: `id` (an advisory id or one of its
    /// aliases) and `minimumSeverity` (LOW, MEDIUM, HIGH, CRITICAL) narrow it. Sorted by image
    /// name, location, advisory, package, origin (run image first), then ecosystem, installed and
    /// fixed version; bytewise.
    /// `risk`: each finding carries its advisory's KEV date and EPSS score (see `sortedByRisk`).
    /// `asOf`: the images the names pointed to then (see `History.swift`), with today's
    /// advisories.
    public func vulnerabilities(id: String? = nil, minimumSeverity: String? = nil, risk: Bool = false, asOf: Date? = nil) throws -> [Finding] {
        try vulnerabilities(id: id, minimumSeverity: minimumSeverity, allNamesAbove: nil, namesSentAbove: nil, risk: risk, asOf: asOf)
    }

    /// `allNamesAbove`: from how many hits every image name is read rather than those of the
    /// images found; `namesSentAbove`: from how many affected package versions PostgreSQL is
    /// asked for every name with the first statements; nil for the backend's own (tests take
    /// every path on small inventories).
    /// `image`: only the findings of that image name (`audit vex`).
    func vulnerabilities(id: String?, minimumSeverity: String?, allNamesAbove: Int?, namesSentAbove: Int?, risk: Bool = false,
                         asOf: Date? = nil, image: String? = nil) throws -> [Finding] {
        try backend.read { db in
            let dialect = backend.dialect
            let then = try image.map { try Self.namesNamed(db, dialect: dialect, $0) } ?? asOf.map { try Self.namesAsOf(db, dialect: dialect, $0) }
            let (filter, args) = try Self.advisoryFilter(db, id: id, minimumSeverity: minimumSeverity)
            let exploits = risk ? try Self.risk(db) : [:]
            var trace = QueryTrace("vulns")
            var found = FoundVulnerabilities()
            var byPackage: [Int64: [Int32]] = [:]
            try db.forEachRow(VulnsSQL.affected(filter: filter), args) { row in
                let exploit = exploits[row.text(1) ?? ""]
                let matter = Finding.Matter(advisory: row.text(1) ?? "", severity: row.text(2) ?? "", ecosystem: row.text(3) ?? "",
                                            package: row.text(4) ?? "", version: row.text(5) ?? "", fixed: row.text(6) ?? "",
                                            unknown: row.text(8).flatMap { $0.isEmpty ? nil : $0 },
                                            kev: exploit?.kev, epss: exploit?.epss.map { String(format: "%.5f", $0) })
                byPackage[row.int(0) ?? 0, default: []].append(found.add(Affected(matter: matter, release: row.text(7) ?? "")))
            }
            guard !found.affected.isEmpty else { return try Self.withUnknown(db, [], names: then) }
            trace.lap("affected packages")
            let known = try findings(db, &found, byPackage: byPackage, allNamesAbove: allNamesAbove, namesSentAbove: namesSentAbove,
                                     names: then, trace: &trace)
            defer { trace.lap("unknown images") }
            return try Self.withUnknown(db, known, names: then)
        }
    }

    /// The findings of these package versions (`byPackage`: package id → its entries in
    /// `found.affected`) in the images whose buildpack layers or run images hold them; `vulns`
    /// and `package` share it. The statements go out together (see `SQLStatementQueue`) and are
    /// read in the order sent: buildpack rows, run image rows, then (with every name sent) the
    /// fleet's images and names.
    func findings(_ db: any SQLSession, _ found: inout FoundVulnerabilities, byPackage: [Int64: [Int32]], allNamesAbove: Int?,
                  namesSentAbove: Int? = nil, names given: RankedNames? = nil, trace: inout QueryTrace) throws -> [Finding] {
        // Per package, the advisories for every release: the only ones an app layer can match
        // (an app layer has no distribution).
        let appAffected = byPackage.compactMapValues { list -> [Int32]? in
            let all = list.filter { found.affected[Int($0)].release.isEmpty }
            return all.isEmpty ? nil : all
        }
        let postgres = backend.dialect == .postgres
        let appChunks = Self.chunks(appAffected.keys.sorted(), size: 500)
        let runChunks = Self.chunks(byPackage.keys.sorted(), size: 500)
        var statements = appChunks.map { SQLStatement(VulnsSQL.buildpackRows($0.count, postgres: postgres), $0.map { .int($0) }) }
        statements += runChunks.map { SQLStatement(VulnsSQL.runImageRows($0.count, postgres: postgres), $0.map { .int($0) }) }
        // Many affected packages make a fleet's worth of findings: on PostgreSQL every image's
        // name is asked for with the rest, and the server reads them while the rows before are
        // read here.
        let allNamesSent = given == nil && postgres && byPackage.count > (namesSentAbove ?? Self.allNamesFromPackages)
        if allNamesSent { statements += Self.allImageNamesStatements }
        // Before the statements are sent: a statement after them waits for all of them.
        let runImages = try Self.runImageVersions(db).byID
        var queue = try db.queue(statements)
        try Self.readBuildpackRows(&queue, count: appChunks.count, postgres: postgres, appAffected: appAffected, into: &found)
        trace.lap("buildpack rows (\(byPackage.count) package versions)")
        let byRunImage = try Self.readRunImageRows(&queue, count: runChunks.count, postgres: postgres, byPackage: byPackage,
                                                   runImages: runImages, into: &found)
        trace.lap("run image rows")
        let fleet = try Self.addImagesOfRunImages(db, &queue, allNamesSent: allNamesSent, postgres: postgres, byRunImage: byRunImage, into: &found)
        // A fleet's worth of hits names most images: all names are read rather than a set made.
        let images: Set<Int64>? = found.hits.count > (allNamesAbove ?? Self.allNamesAbove) ? nil : Set(found.hits.map(\.image))
        trace.lap("images of run images")
        let names: RankedNames
        if let given {
            names = given
        } else if let fleet, var nameRows = try queue.next() {
            names = try Self.allImageNamesAsArrays(fleet, names: &nameRows, images: images)
        } else {
            names = try Self.imageNames(db, dialect: backend.dialect, images, runImages: byRunImage.keys.sorted())
        }
        trace.lap("image names")
        defer { trace.lap("findings sorted") }
        return found.findings(names: names)
    }

    /// Brought by buildpacks: hundreds of thousands of rows, stepped in this loop, not a closure.
    static func readBuildpackRows(_ queue: inout SQLStatementQueue, count: Int, postgres: Bool, appAffected: [Int64: [Int32]],
                                  into found: inout FoundVulnerabilities) throws {
        func add(image: Int64, package: Int64, source: Int32) {
            for a in appAffected[package] ?? [] { found.hits.append(.init(image: image, affected: a, source: source)) }
        }
        for _ in 0..<count {
            guard var rows = try queue.next() else { break }
            if postgres {
                while let row = try rows.next() {
                    guard let package = row.int(0) else { continue }
                    let source = found.source(buildpack: row.text(1) ?? "", layer: row.text(2) ?? "")
                    for image in try row.ints(3) { add(image: image, package: package, source: source) }
                }
            } else {
                while let row = try rows.next() {
                    guard let image = row.int(0), let package = row.int(1) else { continue }
                    add(image: image, package: package, source: found.source(buildpack: row.text(2) ?? "", layer: row.text(3) ?? ""))
                }
            }
        }
    }

    /// Brought by run images: advisories for every release or for the run image's. Returns the
    /// hits of each run image, for its images.
    static func readRunImageRows(_ queue: inout SQLStatementQueue, count: Int, postgres: Bool, byPackage: [Int64: [Int32]],
                                 runImages: [Int64: RunImageVersions.Version],
                                 into found: inout FoundVulnerabilities) throws -> [Int64: [(affected: Int32, source: Int32)]] {
        var byRunImage: [Int64: [(affected: Int32, source: Int32)]] = [:]
        func add(package: Int64, runImage run: Int64) {
            guard let affected = byPackage[package], let info = runImages[run] else { return }
            let source = found.source(runImage: info.name)
            for a in affected {
                if found.affected[Int(a)].applies(toDistroVersion: info.distroVersion) {
                    byRunImage[run, default: []].append((a, source))
                } else if info.distroVersion.isEmpty {
                    // A release's advisory on a run image whose release is not known: unknown.
                    byRunImage[run, default: []].append((found.releaseUnknown(a), source))
                }
            }
        }
        for _ in 0..<count {
            guard var rows = try queue.next() else { break }
            if postgres {
                while let row = try rows.next() {
                    guard let package = row.int(0) else { continue }
                    for run in try row.ints(1) { add(package: package, runImage: run) }
                }
            } else {
                while let row = try rows.next() {
                    if let package = row.int(0), let run = row.int(1) { add(package: package, runImage: run) }
                }
            }
        }
        return byRunImage
    }

    /// Adds the hits of each run image to its images. With every name sent, the images of run
    /// images come from the first of those statements (every image's run image), returned as
    /// the fleet: asked now, they would wait for the names, sorted by the server (~90 ms on the
    /// bench fleet). Otherwise they are asked for by run image.
    static func addImagesOfRunImages(_ db: any SQLSession, _ queue: inout SQLStatementQueue, allNamesSent: Bool, postgres: Bool,
                                     byRunImage: [Int64: [(affected: Int32, source: Int32)]],
                                     into found: inout FoundVulnerabilities) throws -> FleetImages? {
        if allNamesSent, var digests = try queue.next() {
            let fleet = try FleetImages(&digests)
            for (image, run) in zip(fleet.ids, fleet.runImages) {
                for (a, source) in byRunImage[run] ?? [] { found.hits.append(.init(image: image, affected: a, source: source)) }
            }
            return fleet
        }
        for chunk in chunks(byRunImage.keys.sorted()) {
            var rows = try db.cursor(VulnsSQL.imagesOfRunImages(chunk.count, postgres: postgres), chunk.map { .int($0) })
            while let row = try rows.next() {
                guard let run = row.int(0), let hitsOfRun = byRunImage[run] else { continue }
                // PostgreSQL: a run image's images as one array; SQLite: a row per image.
                for image in postgres ? try row.ints(1) : (row.int(1).map { [$0] } ?? []) {
                    for (a, source) in hitsOfRun { found.hits.append(.init(image: image, affected: a, source: source)) }
                }
            }
        }
        return nil
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
}

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
    public func vulnerabilities(id: String? = nil, minimumSeverity: String? = nil) throws -> [Finding] {
        try vulnerabilities(id: id, minimumSeverity: minimumSeverity, allNamesAbove: nil, namesSentAbove: nil)
    }

    /// `allNamesAbove`: from how many hits every image name is read rather than those of the
    /// images found; `namesSentAbove`: from how many affected package versions PostgreSQL is
    /// asked for every name with the first statements; nil for the backend's own (tests take
    /// every path on small inventories).
    func vulnerabilities(id: String?, minimumSeverity: String?, allNamesAbove: Int?, namesSentAbove: Int?) throws -> [Finding] {
        try backend.read { db in
            let (filter, args) = try Self.advisoryFilter(db, id: id, minimumSeverity: minimumSeverity)
            var trace = QueryTrace("vulns")
            var found = FoundVulnerabilities()
            var byPackage: [Int64: [Int32]] = [:]
            try db.forEachRow("""
                SELECT v.package_id, v.advisory_id, a.severity, p.ecosystem, p.name, p.version, v.fixed, v.release
                FROM vulnerable v JOIN advisory a ON a.id = v.advisory_id JOIN package p ON p.id = v.package_id
                WHERE 1 = 1\(filter)
                """, args) { row in
                let matter = Finding.Matter(advisory: row.text(1) ?? "", severity: row.text(2) ?? "", ecosystem: row.text(3) ?? "",
                                            package: row.text(4) ?? "", version: row.text(5) ?? "", fixed: row.text(6) ?? "")
                byPackage[row.int(0) ?? 0, default: []].append(found.add(Affected(matter: matter, release: row.text(7) ?? "")))
            }
            guard !found.affected.isEmpty else { return [] }
            trace.lap("affected packages")
            return try findings(db, &found, byPackage: byPackage, allNamesAbove: allNamesAbove, namesSentAbove: namesSentAbove, trace: &trace)
        }
    }

    /// The findings of these package versions (`byPackage`: package id → its entries in
    /// `found.affected`) in the images whose buildpack layers or run images hold them; `vulns`
    /// and `package` share it.
    func findings(_ db: any SQLSession, _ found: inout FoundVulnerabilities, byPackage: [Int64: [Int32]], allNamesAbove: Int?,
                  namesSentAbove: Int? = nil, trace: inout QueryTrace) throws -> [Finding] {
        // Brought by buildpacks: advisories for every release only (an app layer has no
        // distribution). Hundreds of thousands of rows: stepped in this loop, not a closure.
        // The package ids are listed, a few hundred per statement: PostgreSQL's planner
        // cannot tell that vulnerable package versions are rare and, given the subquery,
        // hashed all 9.9 million rows of a 100,000-image fleet (2.3 s; 34 ms per 500 ids listed).
        // Per package, the advisories for every release: the only ones an app layer can match.
        let appAffected = byPackage.compactMapValues { list -> [Int32]? in
            let all = list.filter { found.affected[Int($0)].release.isEmpty }
            return all.isEmpty ? nil : all
        }
        func add(image: Int64, package: Int64, source: Int32) {
            for a in appAffected[package] ?? [] { found.hits.append(.init(image: image, affected: a, source: source)) }
        }
        let postgres = backend.dialect == .postgres
        let appChunks = Self.chunks(appAffected.keys.sorted(), size: 500)
        let runChunks = Self.chunks(byPackage.keys.sorted(), size: 500)
        // Each package's images per layer as one array on PostgreSQL: rows one by one through
        // the client cost ~2 µs each (381,911 rows: 1 s of 1.1 s).
        var statements = appChunks.map { chunk in
            SQLStatement(postgres
                ? "SELECT package_id, buildpack, layer, array_agg(image_id) FROM image_package WHERE package_id IN (\(Self.marks(chunk.count))) GROUP BY package_id, buildpack, layer"
                : "SELECT image_id, package_id, buildpack, layer FROM image_package WHERE package_id IN (\(Self.marks(chunk.count)))",
                chunk.map { .int($0) })
        }
        statements += runChunks.map { chunk in
            SQLStatement(postgres
                ? "SELECT package_id, array_agg(run_image_id) FROM run_image_package WHERE package_id IN (\(Self.marks(chunk.count))) GROUP BY package_id"
                : "SELECT package_id, run_image_id FROM run_image_package WHERE package_id IN (\(Self.marks(chunk.count)))",
                chunk.map { .int($0) })
        }
        // Many affected packages make a fleet's worth of findings: on PostgreSQL every image's
        // name is asked for with the rest, and the server reads them while the rows before are
        // read here.
        let allNamesSent = postgres && byPackage.count > (namesSentAbove ?? Self.allNamesFromPackages)
        if allNamesSent { statements += Self.allImageNamesStatements }
        // Before the statements are sent: a statement after them waits for all of them.
        let runImages = try Self.runImageVersions(db).byID
        var queue = try db.queue(statements)
        var rows: SQLCursor
        for _ in appChunks {
            guard let next = try queue.next() else { break }
            rows = next
            if postgres {
                while let row = try rows.next() {
                    guard let package = row.int(0) else { continue }
                    let source = found.source(buildpack: row.text(1) ?? "", layer: row.text(2) ?? "")
                    for image in row.ints(3) { add(image: image, package: package, source: source) }
                }
            } else {
                while let row = try rows.next() {
                    guard let image = row.int(0), let package = row.int(1) else { continue }
                    add(image: image, package: package, source: found.source(buildpack: row.text(2) ?? "", layer: row.text(3) ?? ""))
                }
            }
        }
        trace.lap("buildpack rows (\(byPackage.count) package versions)")
        // Brought by run images: advisories for every release or for the run image's.
        var byRunImage: [Int64: [(affected: Int32, source: Int32)]] = [:]
        func add(package: Int64, runImage run: Int64) {
            guard let affected = byPackage[package], let info = runImages[run] else { return }
            let source = found.source(runImage: info.name)
            for a in affected where found.affected[Int(a)].applies(toDistroVersion: info.distroVersion) {
                byRunImage[run, default: []].append((a, source))
            }
        }
        for _ in runChunks {
            guard let next = try queue.next() else { break }
            rows = next
            if postgres {
                while let row = try rows.next() {
                    guard let package = row.int(0) else { continue }
                    for run in row.ints(1) { add(package: package, runImage: run) }
                }
            } else {
                while let row = try rows.next() {
                    if let package = row.int(0), let run = row.int(1) { add(package: package, runImage: run) }
                }
            }
        }
        trace.lap("run image rows")
        // With every name sent, the images of run images come from the first of those
        // statements (every image's run image): asked now, they would wait for the names,
        // sorted by the server (~90 ms on the bench fleet).
        var fleet: FleetImages?
        if allNamesSent, var digests = try queue.next() {
            let all = try FleetImages(&digests)
            for (image, run) in zip(all.ids, all.runImages) {
                for (a, source) in byRunImage[run] ?? [] { found.hits.append(.init(image: image, affected: a, source: source)) }
            }
            fleet = all
        }
        for chunk in fleet == nil ? Self.chunks(byRunImage.keys.sorted()) : [] {
            let marks = Self.marks(chunk.count)
            if postgres {
                // A run image's images as one array (a common run image package: 21,785 rows, ~50 ms one by one).
                rows = try db.cursor("SELECT run_image_id, array_agg(id) FROM image WHERE run_image_id IN (\(marks)) GROUP BY run_image_id",
                                     chunk.map { .int($0) })
                while let row = try rows.next() {
                    guard let run = row.int(0), let hitsOfRun = byRunImage[run] else { continue }
                    for image in row.ints(1) {
                        for (a, source) in hitsOfRun { found.hits.append(.init(image: image, affected: a, source: source)) }
                    }
                }
                continue
            }
            rows = try db.cursor("SELECT id, run_image_id FROM image WHERE run_image_id IN (\(marks))", chunk.map { .int($0) })
            while let row = try rows.next() {
                guard let image = row.int(0), let run = row.int(1) else { continue }
                for (a, source) in byRunImage[run] ?? [] { found.hits.append(.init(image: image, affected: a, source: source)) }
            }
        }
        // A fleet's worth of hits names most images: all names are read rather than a set made.
        let images: Set<Int64>? = found.hits.count > (allNamesAbove ?? Self.allNamesAbove) ? nil : Set(found.hits.map(\.image))
        trace.lap("images of run images")
        let names: RankedNames
        if let fleet, var nameRows = try queue.next() {
            names = try Self.allImageNamesAsArrays(fleet, names: &nameRows, images: images)
        } else {
            names = try Self.imageNames(db, dialect: backend.dialect, images, runImages: byRunImage.keys.sorted())
        }
        trace.lap("image names")
        defer { trace.lap("findings sorted") }
        return found.findings(names: names)
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

    /// Each image's names (location, name) and digest, ranked in bytewise (name, location)
    /// order; every image's when `images` is nil or more than `allNamesAbove` (then in that
    /// order from the database, else sorted here). `runImages`: run images all of whose images
    /// are among `images` (PostgreSQL asks for those by run image).
    static func imageNames(_ db: any SQLSession, dialect: SQLDialect, _ images: Set<Int64>?, runImages: [Int64] = []) throws -> RankedNames {
        var names = RankedNames()
        let sql = "SELECT n.image_id, n.location, n.name, i.digest FROM image_name n JOIN image i ON i.id = n.image_id"
        guard let images, images.count <= allNamesAbove else {
            if dialect == .postgres {
                var queue = try db.queue(allImageNamesStatements)
                guard var digests = try queue.next(), var nameRows = try queue.next() else { return names }
                return try allImageNamesAsArrays(try FleetImages(&digests), names: &nameRows, images: images)
            }
            var rows = try db.cursor(sql + " ORDER BY " + dialect.order(["n.name", "n.location"]), [])
            while let row = try rows.next() {
                guard let image = row.int(0), images?.contains(image) ?? true else { continue }
                names.append(image: image, Finding.Subject(location: row.text(1) ?? "", image: row.text(2) ?? "", digest: row.text(3) ?? ""))
            }
            return names
        }
        if dialect == .postgres {
            var ids: [Int64] = [], locations: [String] = [], imageNames: [String] = [], digests: [String] = []
            func take(_ rows: inout SQLCursor) throws {
                guard let row = try rows.next() else { return }
                let batch = (ids: row.ints(0), locations: row.texts(1), names: row.texts(2), digests: row.texts(3))
                guard [batch.locations.count, batch.names.count, batch.digests.count].allSatisfy({ $0 == batch.ids.count }) else {
                    throw InventoryError.database(location: "image_name", reason: "image name arrays of different lengths")
                }
                ids += batch.ids
                locations += batch.locations
                imageNames += batch.names
                digests += batch.digests
            }
            // Four arrays back rather than a row per name (~3 µs each through the client). The
            // images of run images holding a package are all wanted: asked by run image, the
            // server reads them from the (run image, id, digest) index and hashes the names
            // (21,785 names: 64 ms, against 130 ms by image id).
            for chunk in chunks(runImages) {
                var rows = try db.cursor("""
                    SELECT array_agg(n.image_id), array_agg(n.location), array_agg(n.name), array_agg(i.digest)
                    FROM image i JOIN image_name n ON n.image_id = i.id WHERE i.run_image_id IN (\(marks(chunk.count)))
                    """, chunk.map { .int($0) })
                try take(&rows)
            }
            // The rest by id, in one statement, the ids as an array literal (integers only):
            // planned once with the count known (10,000 names: 58 ms on the server; by 1,000
            // ids in IN lists, 100 ms).
            let named = Set(ids)
            let rest = images.filter { !named.contains($0) }.sorted()
            if !rest.isEmpty {
                var rows = try db.cursor("""
                    SELECT array_agg(n.image_id), array_agg(n.location), array_agg(n.name), array_agg(i.digest)
                    FROM unnest('{\(rest.map(String.init).joined(separator: ","))}'::bigint[]) u(id)
                    JOIN image_name n ON n.image_id = u.id JOIN image i ON i.id = n.image_id
                    """, [])
                try take(&rows)
            }
            return rankedNames(ids: ids, locations: locations, names: imageNames, digests: digests, images: nil)
        }
        var ids: [Int64] = [], locations: [String] = [], imageNames: [String] = [], digests: [String] = []
        for batch in chunks(images.sorted()) {
            try db.forEachRow(sql + " WHERE n.image_id IN (\(marks(batch.count)))", batch.map { .int($0) }) { row in
                guard let image = row.int(0) else { return }
                ids.append(image)
                locations.append(row.text(1) ?? "")
                imageNames.append(row.text(2) ?? "")
                digests.append(row.text(3) ?? "")
            }
        }
        return rankedNames(ids: ids, locations: locations, names: imageNames, digests: digests, images: nil)
    }

    /// From how many images every image name is read in (name, location) order rather than
    /// those wanted, sorted here. SQLite sorts the whole fleet's 100,000 names in ~130 ms and
    /// finds 1,000 names by id in ~2 ms.
    static let allNamesAbove = 50_000

    /// From how many affected package versions a query is taken to name most of the fleet
    /// (PostgreSQL asks for every name with its first statements). The bench fleet's whole-fleet
    /// vulns has 2,995 and --severity CRITICAL 748; one advisory, a handful.
    static let allNamesFromPackages = 200

    /// PostgreSQL: every image's digest and run image (three arrays), then every name as three arrays in
    /// (name, location) order; 100,000 rows one by one through the client cost ~3 µs each. The
    /// digests are asked apart (a join of the two 100,000-row tables cost the server half the
    /// time). The arrays are aggregated from a sorted subquery, which PostgreSQL keeps in order
    /// but does not promise to: the order is checked here, and sorted here when it does not hold.
    static let allImageNamesStatements = [
        SQLStatement("SELECT array_agg(id), array_agg(digest), array_agg(coalesce(run_image_id, 0)) FROM image"),
        SQLStatement("""
            SELECT array_agg(s.image_id), array_agg(s.location), array_agg(s.name)
            FROM (SELECT image_id, location, name FROM image_name ORDER BY \(SQLDialect.postgres.order(["name", "location"]))) s
            """),
    ]

    /// Every image's id, digest and run image (0: none), from the first of `allImageNamesStatements`.
    struct FleetImages {
        var ids: [Int64] = [], digests: [String] = [], runImages: [Int64] = []

        init(_ rows: inout SQLCursor) throws {
            guard let row = try rows.next() else { return }
            (ids, digests, runImages) = (row.ints(0), row.texts(1), row.ints(2))
            guard ids.count == digests.count, ids.count == runImages.count else {
                throw InventoryError.database(location: "image", reason: "id, digest and run image arrays of different lengths (\(ids.count), \(digests.count), \(runImages.count))")
            }
        }
    }

    /// The names of the second of `allImageNamesStatements`, for `images` (nil: all).
    static func allImageNamesAsArrays(_ fleet: FleetImages, names nameRows: inout SQLCursor, images: Set<Int64>?) throws -> RankedNames {
        var digestOf: [Int64: String] = [:]
        digestOf.reserveCapacity(fleet.ids.count)
        for (id, digest) in zip(fleet.ids, fleet.digests) { digestOf[id] = digest }
        guard let row = try nameRows.next() else { return RankedNames() }
        let ids = row.ints(0), locations = row.texts(1), names = row.texts(2)
        guard ids.count == locations.count, ids.count == names.count else {
            throw InventoryError.database(location: "image_name", reason: "image name arrays of different lengths (\(ids.count), \(locations.count), \(names.count))")
        }
        return rankedNames(ids: ids, locations: locations, names: names, digests: ids.map { digestOf[$0] ?? "" }, images: images)
    }

    /// Names in rank order from parallel arrays that should be in (name, location) order: checked
    /// in one pass, sorted when they are not.
    static func rankedNames(ids: [Int64], locations: [String], names: [String], digests: [String], images: Set<Int64>?) -> RankedNames {
        var order = Array(ids.indices)
        func before(_ a: Int, _ b: Int) -> Bool {
            FoundVulnerabilities.bytewise(names[a], names[b]) ?? FoundVulnerabilities.bytewise(locations[a], locations[b]) ?? false
        }
        if zip(order, order.dropFirst()).contains(where: { before($1, $0) }) { order.sort(by: before) }
        var ranked = RankedNames()
        for i in order where images?.contains(ids[i]) ?? true {
            ranked.append(image: ids[i], Finding.Subject(location: locations[i], image: names[i], digest: digests[i]))
        }
        return ranked
    }

    /// `n` SQL placeholders for an IN list: `?, ?, ?`.
    static func marks(_ n: Int) -> String { n <= 0 ? "" : String(repeating: "?, ", count: n - 1) + "?" }

    static func chunks<T>(_ values: [T], size: Int = 1_000) -> [[T]] {
        stride(from: 0, to: values.count, by: size).map { Array(values[$0..<min($0 + size, values.count)]) }
    }
}

/// Findings by image id before their names are known: hits of an image, an affected package
/// version and a source, each an index. Sorted once, by integer ranks of the distinct texts
/// (bytewise, absent first) packed into one word, rather than by comparing strings per pair.
struct FoundVulnerabilities {
    struct Hit {
        var image: Int64
        var affected: Int32
        var source: Int32
    }

    var affected: [Inventory.Affected] = []
    var sourceTable = SourceTable()
    var hits: [Hit] = []

    var sources: [Finding.Source] { sourceTable.sources }

    mutating func add(_ a: Inventory.Affected) -> Int32 {
        affected.append(a)
        return Int32(affected.count - 1)
    }

    /// The index of a buildpack layer's or a run image's source, made once.
    mutating func source(buildpack: String? = nil, layer: String? = nil, runImage: String? = nil) -> Int32 {
        sourceTable.number(buildpack: buildpack, layer: layer, runImage: runImage)
    }

    /// The findings in order. Each is keyed by its image name's rank and the ranks of what it
    /// shows (advisory and package, source, affected version), packed into 64 bits and radix
    /// sorted: the findings of a fleet are hundreds of thousands, and the comparison sort and the
    /// counting sort before this one spent most of their time on cache misses. `packedBits` below
    /// what the ranks need takes the comparison path (tests; and fleets whose ranks need more).
    func findings(names: RankedNames, packedBits: Int = 64) -> [Finding] {
        let sources = self.sources
        // Ranks of the distinct values, each made once: (advisory, package) pairs, sources
        // (buildpack, layer, run image; run images first), affected package versions (the rest of
        // what is shown, so that equal keys are equal findings).
        let affectedRank = Self.ranks(of: affected) { a, b in
            let x = a.matter, y = b.matter
            return Self.bytewise(x.advisory ?? "", y.advisory ?? "") ?? Self.bytewise(x.package ?? "", y.package ?? "")
                ?? Self.bytewise(x.ecosystem ?? "", y.ecosystem ?? "") ?? Self.bytewise(x.version ?? "", y.version ?? "")
                ?? Self.bytewise(x.fixed ?? "", y.fixed ?? "") ?? Self.bytewise(x.severity ?? "", y.severity ?? "") ?? false
        }
        let pairRank = Self.ranks(of: affected) { a, b in
            Self.bytewise(a.matter.advisory ?? "", b.matter.advisory ?? "") ?? Self.bytewise(a.matter.package ?? "", b.matter.package ?? "") ?? false
        }
        let sourceRank = Self.ranks(of: sources) { a, b in
            Self.bytewise(a.buildpack, b.buildpack) ?? Self.bytewise(a.layer, b.layer) ?? Self.bytewise(a.runImage, b.runImage) ?? false
        }
        // Per affected version and source, the low part of the key, made once.
        let widths = (name: Self.bitWidth(names.subjects.count), pair: Self.bitWidth(affected.count),
                      source: Self.bitWidth(sources.count), affected: Self.bitWidth(affected.count))
        let packed = widths.name + widths.pair + widths.source + widths.affected <= packedBits
        let affectedKey = affected.indices.map { UInt64(pairRank[$0]) << (widths.source + widths.affected) | UInt64(affectedRank[$0]) }
        func key(rank: Int32, _ h: Hit) -> UInt64 {
            UInt64(rank) << (widths.pair + widths.source + widths.affected)
                | affectedKey[Int(h.affected)] | UInt64(sourceRank[Int(h.source)]) << widths.affected
        }

        var keyed: [(key: UInt64, hit: UInt32)] = []
        keyed.reserveCapacity(hits.count)
        var rankOf: [(key: UInt64, hit: UInt32)] = []
        for (i, h) in hits.enumerated() {
            names.forEachRank(of: h.image) { rank in
                keyed.append((packed ? key(rank: rank, h) : 0, UInt32(i)))
                if !packed { rankOf.append((UInt64(rank), UInt32(i))) }
            }
        }
        if packed {
            Self.radixSort(&keyed, bits: widths.name + widths.pair + widths.source + widths.affected)
        } else {
            func fields(_ e: (key: UInt64, hit: UInt32)) -> (UInt64, Int, Int, Int) {
                let h = hits[Int(e.hit)], a = Int(h.affected)
                return (e.key, pairRank[a], sourceRank[Int(h.source)], affectedRank[a])
            }
            keyed = rankOf.sorted { fields($0) < fields($1) }
            return keyed.map { e in
                let h = hits[Int(e.hit)]
                return Finding(names.subjects[Int(e.key)], affected[Int(h.affected)].matter, sources[Int(h.source)])
            }
        }
        let shift = widths.pair + widths.source + widths.affected
        return keyed.map { e in
            let h = hits[Int(e.hit)]
            return Finding(names.subjects[Int(e.key >> shift)], affected[Int(h.affected)].matter, sources[Int(h.source)])
        }
    }

    /// Sorts by the low `bits` bits of the key, least significant 11-bit digit first (stable).
    static func radixSort(_ items: inout [(key: UInt64, hit: UInt32)], bits: Int) {
        let digit = 11, buckets = 1 << 11
        var other = items
        var shift = 0
        while shift < bits {
            var count = [Int](repeating: 0, count: buckets + 1)
            for e in items { count[Int((e.key >> UInt64(shift)) & UInt64(buckets - 1)) + 1] += 1 }
            for b in 0..<buckets { count[b + 1] += count[b] }
            for e in items {
                let b = Int((e.key >> UInt64(shift)) & UInt64(buckets - 1))
                other[count[b]] = e
                count[b] += 1
            }
            swap(&items, &other)
            shift += digit
        }
    }

    /// Bits for values 0...n.
    static func bitWidth(_ n: Int) -> Int { max(1, Int.bitWidth - n.leadingZeroBitCount) }

    /// nil when equal, else whether `a` sorts first (bytewise; nil first).
    static func bytewise(_ a: String?, _ b: String?) -> Bool? {
        switch (a, b) {
        case (nil, nil): return nil
        case (nil, _): return true
        case (_, nil): return false
        case (var a?, var b?):
            // memcmp over the UTF-8 bytes in place: the generic `lexicographicallyPrecedes` of
            // the UTF-8 views walked index by index and made sorting 10,000 image names most of a
            // 10,000-finding query.
            let order = a.withUTF8 { x in
                b.withUTF8 { y -> Int in
                    let common = min(x.count, y.count)
                    let c = common == 0 ? 0 : Int(memcmp(x.baseAddress!, y.baseAddress!, common))
                    return c != 0 ? c : x.count - y.count
                }
            }
            return order == 0 ? nil : order < 0
        }
    }

    /// Each element's rank in the order `less` gives; equal elements share a rank.
    static func ranks<T>(of values: [T], by less: (T, T) -> Bool) -> [Int] {
        let order = values.indices.sorted { less(values[$0], values[$1]) }
        var rank = [Int](repeating: 0, count: values.count)
        var current = 0
        for (position, i) in order.enumerated() {
            if position > 0 && less(values[order[position - 1]], values[i]) { current += 1 }
            rank[i] = current
        }
        return rank
    }
}

/// Image names in rank order (bytewise by name, then location) and where each image's are.
struct RankedNames {
    private(set) var subjects: [Finding.Subject] = []
    /// Image id → its first name's rank + 1 (0: none), when ids are small enough for an array;
    /// an image's further names in `more`.
    private var first: [Int32] = []
    private var firstByID: [Int64: Int32] = [:]
    private var more: [Int64: [Int32]] = [:]

    /// The next name in rank order.
    mutating func append(image: Int64, _ subject: Finding.Subject) {
        let rank = Int32(subjects.count)
        subjects.append(subject)
        if image >= 0 && image < 1 << 22 {
            if Int(image) >= first.count { first.append(contentsOf: repeatElement(0, count: max(Int(image) + 1 - first.count, first.count))) }
            if first[Int(image)] == 0 { first[Int(image)] = rank + 1 } else { more[image, default: []].append(rank) }
        } else if firstByID[image] == nil {
            firstByID[image] = rank + 1
        } else {
            more[image, default: []].append(rank)
        }
    }

    /// Each rank of an image's names.
    func forEachRank(of image: Int64, _ body: (Int32) -> Void) {
        let r = image >= 0 && Int(image) < first.count ? first[Int(image)] : (firstByID[image] ?? 0)
        guard r > 0 else { return }
        body(r - 1)
        if !more.isEmpty, let extra = more[image] { for rank in extra { body(rank) } }
    }
}

/// With CAIRN_QUERY_TRACE set, how long each step of a query took, on standard error.
struct QueryTrace {
    static let enabled = ProcessInfo.processInfo.environment["CAIRN_QUERY_TRACE"].map { !$0.isEmpty } ?? false
    let query: String
    var last = Date()

    init(_ query: String) { self.query = query }

    mutating func lap(_ step: String) {
        guard Self.enabled else { return }
        let now = Date()
        FileHandle.standardError.write(Data(String(format: "%@: %@ %.1f ms\n", query, step, now.timeIntervalSince(last) * 1000).utf8))
        last = now
    }
}

import Foundation

extension Inventory {
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
                let batch = (ids: try row.ints(0), locations: try row.texts(1), names: try row.texts(2), digests: try row.texts(3))
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
            (ids, digests, runImages) = (try row.ints(0), try row.texts(1), try row.ints(2))
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
        let ids = try row.ints(0), locations = try row.texts(1), names = try row.texts(2)
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

import Foundation

extension Inventory {
    struct RebaseQuestion: Hashable {
        var runImage: Int64
        var advisories: [String]
    }

    /// An image's id and run image (by id).
    struct ImageRow {
        var id: Int64
        var runImage: Int64?
        /// Whether a build-time SBOM with packages was indexed for it (a fix carries it along).
        var buildSBOM = false
    }

    /// The images with these digests, by digest. The chunks are queued (PostgreSQL runs each
    /// next one while the rows before are read here).
    static func images(_ db: any SQLSession, digests: Set<String>) throws -> [String: ImageRow] {
        let chunks = chunks(digests.sorted())
        var queue = try db.queue(chunks.map { chunk in
            SQLStatement("""
                SELECT digest, id, run_image_id, CASE WHEN EXISTS (SELECT 1 FROM image_build_package b WHERE b.image_id = image.id) THEN 1 ELSE 0 END
                FROM image WHERE digest IN (\(marks(chunk.count)))
                """, chunk.map { .text($0) })
        })
        var images: [String: ImageRow] = [:]
        images.reserveCapacity(digests.count)
        while var cursor = try queue.next() {
            while let row = try cursor.next() {
                if let digest = row.text(0), let id = row.int(1) { images[digest] = ImageRow(id: id, runImage: row.int(2), buildSBOM: row.int(3) == 1) }
            }
        }
        return images
    }

    /// A buildpack layer of an image: its diffID and the buildpack's version.
    struct LayerBuild {
        var diffID: String
        var version: String
    }

    struct LayerKey: Hashable {
        var image: Int64
        var buildpack, layer: String
    }

    /// These buildpack layers of images (by id). An image's layers are read together; those not
    /// wanted are skipped before their diffID and version are read (a whole-fleet plan wants
    /// about one in four).
    static func buildpackLayers(_ db: any SQLSession, wanted: Set<LayerKey>) throws -> [LayerKey: LayerBuild] {
        let chunks = chunks(Set(wanted.map(\.image)).sorted())
        var queue = try db.queue(chunks.map { chunk in
            SQLStatement("""
                SELECT l.image_id, l.buildpack, l.layer, l.diffid, m.version FROM image_layer l
                LEFT JOIN image_module m ON m.image_id = l.image_id AND m.module = l.buildpack AND m.kind = 'buildpack'
                WHERE l.image_id IN (\(marks(chunk.count)))
                """, chunk.map { .int($0) })
        })
        var layers: [LayerKey: LayerBuild] = [:]
        layers.reserveCapacity(wanted.count)
        while var cursor = try queue.next() {
            while let row = try cursor.next() {
                guard let image = row.int(0) else { continue }
                let key = LayerKey(image: image, buildpack: row.text(1) ?? "", layer: row.text(2) ?? "")
                if wanted.contains(key) { layers[key] = LayerBuild(diffID: row.text(3) ?? "", version: row.text(4) ?? "") }
            }
        }
        return layers
    }

    /// The newest version of the run image `runID` that is newer than it, whose packages are
    /// known and none affected by any of `advisories`; as a reference `cairn rebase --run-image` takes.
    static func newerRunImage(_ db: any SQLSession, versions: RunImageVersions, runImage runID: Int64, advisories: [String]) throws -> String? {
        let advisories = advisories.isEmpty ? [""] : advisories
        guard let current = versions.byID[runID] else { return nil }
        let candidates = versions.family(of: current).filter { $0.packagesKnown && $0.isNewer(than: current) }
            .sorted { $0.isNewer(than: $1) }
        for c in candidates {
            let hit = try db.value("""
                SELECT 1 FROM run_image_package rp JOIN vulnerable v ON v.package_id = rp.package_id
                WHERE rp.run_image_id = ? AND v.advisory_id IN (\(marks(advisories.count)))
                  AND (v.release = '' OR v.release = ? OR ? LIKE v.release || '.%')
                """, [.int(c.id)] + advisories.map { .text($0) } + [.text(c.distroVersion), .text(c.distroVersion)])
            if hit == nil { return c.reference.isEmpty ? c.name : c.reference }
        }
        return nil
    }

    /// The rebasable builds of a buildpack layer: image id, diffID and the buildpack's version,
    /// each read from a covering index (schema v4) without visiting the tables. Which of them
    /// are named at a location is asked only of the builds a plan reaches, best first: joining
    /// every build to its image and names cost PostgreSQL ~25 ms per layer of 2,400 builds
    /// (bench fleet), against ~4 ms for this.
    static func layerBuilds(buildpack: String, layer: String) -> SQLStatement {
        SQLStatement("""
            SELECT l.image_id, l.diffid, m.version FROM image_layer l
            LEFT JOIN image_module m ON m.image_id = l.image_id AND m.module = l.buildpack AND m.kind = 'buildpack'
            WHERE l.buildpack = ? AND l.layer = ? AND l.rebasable = 1
            """, [.text(buildpack), .text(layer)])
    }

    /// `layerBuilds`' rows for each (buildpack, layer) the findings may ask about, by the two
    /// joined with NUL; at most 64 (the rest are asked when needed). Asked together: PostgreSQL
    /// runs each next one while the rows before are read here.
    static func layerBuilds(_ db: any SQLSession, keys: [[String]]) throws -> [String: [[SQLValue]]] {
        var seen = Set<[String]>()
        let wanted = Array(keys.filter { seen.insert($0).inserted }.prefix(64))
        var queue = try db.queue(wanted.map { layerBuilds(buildpack: $0[0], layer: $0[1]) })
        var rows: [String: [[SQLValue]]] = [:]
        for key in wanted {
            guard var cursor = try queue.next() else { break }
            var list: [[SQLValue]] = []
            while let row = try cursor.next() { list.append((0..<3).map(row.value)) }
            rows[key.joined(separator: "\u{0}")] = list
        }
        return rows
    }

    /// An image named at the same location whose build of the same buildpack layer is marked
    /// rebasable, differs from this one, comes from the same or a newer buildpack version and
    /// has no package affected by any of `advisories`: the best such (newest buildpack version,
    /// then the image indexed last; of its names there, the greatest). Builds are taken in
    /// growing batches (8, 64, 512, …): one statement for their names, one for their affected
    /// advisories, per batch.
    static func patchSource(_ db: any SQLSession, location: String, mine: LayerBuild?, buildpack: String, layer: String, advisories: [String],
                            search: inout PatchSearch) throws -> FixPlan.Patch? {
        let advisories = advisories.isEmpty ? [""] : advisories
        let myVersion = mine?.version ?? ""
        let key = buildpack + "\u{0}" + layer
        if search.ordered[key] == nil {
            let statement = layerBuilds(buildpack: buildpack, layer: layer)
            search.ordered[key] = PatchSearch.bestFirst(try search.fetched[key] ?? db.rows(statement.sql, statement.arguments))
        }
        let builds = search.ordered[key] ?? []
        var next = 0, batchSize = 8
        while next < builds.count {
            var batch: [PatchSearch.Candidate] = []
            while next < builds.count, batch.count < batchSize {
                let candidate = builds[next]
                next += 1
                if candidate.diffID == mine?.diffID { continue }
                // Best first: the rest come from older buildpack versions too.
                if GenericVersion.compare(candidate.version, myVersion) < 0 {
                    next = builds.count
                    break
                }
                batch.append(candidate)
            }
            batchSize *= 8
            try search.learnNames(db, location: location, images: batch.map(\.image))
            let named = batch.filter { search.name(location: location, image: $0.image) != nil }
            try search.learnAffected(db, buildpack: buildpack, layer: layer, images: named.map(\.image), advisories: advisories)
            for candidate in named where !advisories.contains(where: { search.isAffected(candidate.image, key, $0) }) {
                guard let name = search.name(location: location, image: candidate.image) else { continue }
                return FixPlan.Patch(buildpack: buildpack, layer: layer, patchImage: name)
            }
        }
        return nil
    }
}

/// What the patch questions of a plan share: each layer's rebasable builds in order, best
/// first; the names the builds reached have at each location; and which of their layers an
/// advisory affects. A whole-fleet plan asks thousands of questions of a few dozen layers.
struct PatchSearch {
    struct Candidate {
        var image: Int64
        var diffID, version: String
        var versionRank: Int
    }

    /// Rows of `layerBuilds` by buildpack and layer (joined with NUL), as fetched ahead.
    var fetched: [String: [[SQLValue]]]
    var ordered: [String: [Candidate]] = [:]
    /// Per location, each image asked about: its greatest name there, or "" for none.
    private var names: [String: [Int64: String]] = [:]
    /// By image, buildpack, layer and advisory (joined with NUL).
    private var affected: [String: Bool] = [:]
    /// How many statements the questions took (`CAIRN_QUERY_TRACE`).
    private(set) var statements = 0

    init(fetched: [String: [[SQLValue]]]) { self.fetched = fetched }

    /// Newest buildpack version first (versions that compare equal rank together), then the
    /// image indexed last (the highest id). The few distinct versions are ordered once, the
    /// builds by their integer ranks.
    static func bestFirst(_ rows: [[SQLValue]]) -> [Candidate] {
        let versions = Set(rows.map { $0[2].text ?? "" }).sorted { GenericVersion.compare($0, $1) < 0 }
        var rank: [String: Int] = [:]
        for (i, v) in versions.enumerated() {
            rank[v] = i > 0 && GenericVersion.compare(versions[i - 1], v) == 0 ? rank[versions[i - 1]] ?? i : i
        }
        let candidates = rows.compactMap { row -> Candidate? in
            guard let image = row[0].int else { return nil }
            let version = row[2].text ?? ""
            return Candidate(image: image, diffID: row[1].text ?? "", version: version, versionRank: rank[version] ?? 0)
        }
        return candidates.sorted { a, b in
            a.versionRank != b.versionRank ? a.versionRank > b.versionRank : a.image > b.image
        }
    }

    /// The image's greatest name at the location, if it has one there (asked before).
    func name(location: String, image: Int64) -> String? {
        guard let name = names[location]?[image], !name.isEmpty else { return nil }
        return name
    }

    func isAffected(_ image: Int64, _ layerKey: String, _ advisory: String) -> Bool {
        affected["\(image)\u{0}\(layerKey)\u{0}\(advisory)"] ?? true
    }

    /// Asks the names at `location` of the images not asked about there yet.
    mutating func learnNames(_ db: any SQLSession, location: String, images: [Int64]) throws {
        let unknown = Array(Set(images.filter { names[location]?[$0] == nil })).sorted()
        guard !unknown.isEmpty else { return }
        var found = [Int64: String](uniqueKeysWithValues: unknown.map { ($0, "") })
        for chunk in Inventory.chunks(unknown) {
            statements += 1
            for row in try db.rows("SELECT image_id, name FROM image_name WHERE location = ? AND image_id IN (\(Inventory.marks(chunk.count)))",
                                   [.text(location)] + chunk.map { .int($0) }) {
                guard let image = row[0].int, let name = row[1].text else { continue }
                if name > found[image, default: ""] { found[image] = name }
            }
        }
        names[location, default: [:]].merge(found) { _, new in new }
    }

    /// Asks which of `advisories` affect a package of each image's layer, for the pairs not
    /// asked about yet.
    mutating func learnAffected(_ db: any SQLSession, buildpack: String, layer: String, images: [Int64], advisories: [String]) throws {
        let layerKey = buildpack + "\u{0}" + layer
        func question(_ image: Int64, _ advisory: String) -> String { "\(image)\u{0}\(layerKey)\u{0}\(advisory)" }
        let unknown = Array(Set(images.filter { image in advisories.contains { affected[question(image, $0)] == nil } })).sorted()
        guard !unknown.isEmpty else { return }
        for image in unknown { for advisory in advisories { affected[question(image, advisory)] = false } }
        for chunk in Inventory.chunks(unknown, size: 500) {
            statements += 1
            for row in try db.rows("""
                SELECT DISTINCT ip.image_id, v.advisory_id FROM image_package ip JOIN vulnerable v ON v.package_id = ip.package_id
                WHERE ip.image_id IN (\(Inventory.marks(chunk.count))) AND ip.buildpack = ? AND ip.layer = ?
                  AND v.advisory_id IN (\(Inventory.marks(advisories.count)))
                """, chunk.map { .int($0) } + [.text(buildpack), .text(layer)] + advisories.map { .text($0) }) {
                if let image = row[0].int, let advisory = row[1].text { affected[question(image, advisory)] = true }
            }
        }
    }
}

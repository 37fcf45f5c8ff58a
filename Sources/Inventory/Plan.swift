/// For each affected image, the cheapest fix the inventory knows: a rebase onto a newer run
/// image without the vulnerable package, a layer patch from a newer build of the same buildpack
/// layer without it, or a rebuild when neither helps.
public struct FixPlan: Codable, Sendable {
    public struct Step: Codable, Sendable {
        public var location: String
        public var image: String
        public var digest: String
        /// `rebase`, `patch`, `rebase+patch` or `rebuild`.
        public var action: String
        /// The run image to rebase onto.
        public var runImage: String?
        public var patches: [Patch]
        /// One line per advisory finding: what it is and why this fix.
        public var reasons: [String]
    }

    /// An entry of a layer patches file (`cairn rebase --layer-patches`).
    public struct Patch: Codable, Sendable, Hashable {
        public var buildpack: String
        public var layer: String
        public var patchImage: String

        enum CodingKeys: String, CodingKey {
            case buildpack, layer
            case patchImage = "patch-image"
        }
    }

    /// The layer patches file the patch steps share.
    public struct PatchFile: Codable, Sendable {
        public var patches: [Patch]
    }

    public var steps: [Step]
    public var patchFile: PatchFile { PatchFile(patches: Array(Set(steps.flatMap(\.patches))).sorted { ($0.buildpack, $0.layer) < ($1.buildpack, $1.layer) }) }
}

extension Finding {
    /// The buildpack and layer that brought the package when a layer can be patched: not a run
    /// image's package, nor one a buildpack's launch SBOM lists (no layer).
    var patchableLayer: (buildpack: String, layer: String)? {
        guard let buildpack, let layer, !layer.isEmpty else { return nil }
        return (buildpack, layer)
    }
}

extension Inventory {
    /// What an image must have fixed at one place: its run image (no buildpack) or one of its
    /// buildpack layers.
    struct FixKey: Hashable {
        var location, digest: String
        var buildpack, layer: String?
    }

    /// The same patch question for images with the same build of the layer and the same
    /// advisories; per location (a patch image is named where it lives, and so is the image
    /// patched).
    struct PatchQuestion: Hashable {
        var location, buildpack, layer, diffID, version: String
        var advisories: [String]
    }

    struct StepKey: Hashable {
        var location, image: String
    }

    /// The fix plan for the images in `findings` (from `vulnerabilities`).
    public func plan(_ findings: [Finding]) throws -> FixPlan {
        try backend.read { db in
            var trace = QueryTrace("plan")
            let versions = try Self.runImageVersions(db)
            trace.lap("run image versions")
            // What fixes an image must fix all of its findings there: the run image to rebase
            // onto has none of the advisories its run image findings name, the patch source
            // layer none of those of the image's layer. (Per finding, an image with two
            // advisories on one layer was sent two patch images for it, the second maybe still
            // affected by the first's advisory.)
            func fixKey(_ f: Finding) -> FixKey? {
                if f.buildpack == nil { return FixKey(location: f.location, digest: f.digest) }
                guard let (buildpack, layer) = f.patchableLayer else { return nil }
                return FixKey(location: f.location, digest: f.digest, buildpack: buildpack, layer: layer)
            }
            let keys = findings.map(fixKey)
            var advisoriesOf: [FixKey: [String]] = [:]
            for (f, key) in zip(findings, keys) {
                if let key, let advisory = f.advisory, !(advisoriesOf[key]?.contains(advisory) ?? false) {
                    advisoriesOf[key, default: []].append(advisory)
                }
            }
            advisoriesOf = advisoriesOf.mapValues { $0.sorted() }
            // Findings of a fleet repeat the same run image and layer questions: asked once, and
            // what each image is made of is read for all of them at once, not per finding.
            let images = try Self.images(db, digests: Set(findings.map(\.digest)))
            let layersOf = try Self.buildpackLayers(db, wanted: Set(findings.compactMap { f in
                f.patchableLayer.flatMap { p in images[f.digest].map { LayerKey(image: $0.id, buildpack: p.buildpack, layer: p.layer) } }
            }))
            trace.lap("images' run images and layers")
            var rebaseTargets: [RebaseQuestion: String?] = [:]
            var chosen: [PatchQuestion: FixPlan.Patch?] = [:]
            var search = PatchSearch(fetched: try Self.layerBuilds(db, keys: findings.compactMap { f -> [String]? in
                f.patchableLayer.map { [$0.buildpack, $0.layer] }
            }))
            trace.lap("layer builds (\(search.fetched.count) layers, \(search.fetched.values.map(\.count).reduce(0, +)) builds)")
            defer { trace.lap("rebase targets and patch sources (\(rebaseTargets.count) rebase and \(chosen.count) patch questions, \(search.statements) statements)") }
            // Steps in order of their first finding, changed in place (a step copied out of a
            // dictionary and back copied its reasons at every finding).
            var steps: [FixPlan.Step] = []
            var stepOf: [StepKey: Int] = [:]
            for (f, fixKey) in zip(findings, keys) {
                let i = stepOf[StepKey(location: f.location, image: f.image)] ?? {
                    steps.append(FixPlan.Step(location: f.location, image: f.image, digest: f.digest, action: "", patches: [], reasons: []))
                    stepOf[StepKey(location: f.location, image: f.image)] = steps.count - 1
                    return steps.count - 1
                }()
                let what = "\(f.advisory ?? "?"): \(f.package ?? "?") \(f.version ?? "?") (\(f.origin))"
                let advisories = fixKey.flatMap { advisoriesOf[$0] } ?? []
                if f.buildpack == nil {
                    let runID = images[f.digest]?.runImage
                    let question = RebaseQuestion(runImage: runID ?? -1, advisories: advisories)
                    if rebaseTargets[question] == nil {
                        rebaseTargets[question] = .some(try runID.flatMap { try Self.newerRunImage(db, versions: versions, runImage: $0, advisories: advisories) })
                    }
                    if let target = rebaseTargets[question] ?? nil {
                        steps[i].runImage = target
                        steps[i].reasons.append("\(what): rebase onto \(target), which has no affected version")
                    } else {
                        steps[i].action = "rebuild"
                        steps[i].reasons.append("\(what): no newer version of the run image without it is known")
                    }
                } else if let (buildpack, layer) = f.patchableLayer {
                    let mine = images[f.digest].flatMap { layersOf[LayerKey(image: $0.id, buildpack: buildpack, layer: layer)] }
                    let question = PatchQuestion(location: f.location, buildpack: buildpack, layer: layer, diffID: mine?.diffID ?? "",
                                                 version: mine?.version ?? "", advisories: advisories)
                    if chosen[question] == nil {
                        chosen[question] = .some(try Self.patchSource(db, location: f.location, mine: mine, buildpack: buildpack, layer: layer,
                                                                      advisories: advisories, search: &search))
                    }
                    if let patch = chosen[question] ?? nil {
                        if !steps[i].patches.contains(patch) { steps[i].patches.append(patch) }
                        steps[i].reasons.append("\(what): patch the layer from \(patch.patchImage)")
                    } else {
                        steps[i].action = "rebuild"
                        steps[i].reasons.append("\(what): no build of \(buildpack)'s \(layer) layer without it is indexed (or none is marked rebasable)")
                    }
                } else {
                    steps[i].action = "rebuild"
                    steps[i].reasons.append("\(what): the buildpack's launch SBOM lists it, no layer can be patched")
                }
            }
            for i in steps.indices {
                if steps[i].action != "rebuild" {
                    steps[i].action = [steps[i].runImage != nil ? "rebase" : nil, steps[i].patches.isEmpty ? nil : "patch"].compactMap { $0 }.joined(separator: "+")
                } else {
                    steps[i].runImage = nil
                    steps[i].patches = []
                }
            }
            return FixPlan(steps: steps.sorted { ($0.image, $0.location) < ($1.image, $1.location) })
        }
    }

    struct RebaseQuestion: Hashable {
        var runImage: Int64
        var advisories: [String]
    }

    /// An image's id and run image (by id).
    struct ImageRow {
        var id: Int64
        var runImage: Int64?
    }

    /// The images with these digests, by digest. The chunks are queued (PostgreSQL runs each
    /// next one while the rows before are read here).
    static func images(_ db: any SQLSession, digests: Set<String>) throws -> [String: ImageRow] {
        let chunks = chunks(digests.sorted())
        var queue = try db.queue(chunks.map { chunk in
            SQLStatement("SELECT digest, id, run_image_id FROM image WHERE digest IN (\(marks(chunk.count)))", chunk.map { .text($0) })
        })
        var images: [String: ImageRow] = [:]
        images.reserveCapacity(digests.count)
        while var cursor = try queue.next() {
            while let row = try cursor.next() {
                if let digest = row.text(0), let id = row.int(1) { images[digest] = ImageRow(id: id, runImage: row.int(2)) }
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

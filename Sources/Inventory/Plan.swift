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

extension Inventory {
    /// The fix plan for the images in `findings` (from `vulnerabilities`).
    public func plan(_ findings: [Finding]) throws -> FixPlan {
        try backend.read { db in
            let versions = try Self.runImageVersions(db)
            var steps: [String: FixPlan.Step] = [:]
            var chosen: [String: FixPlan.Patch] = [:]
            // Findings of a fleet repeat the same run image and layer questions: asked once.
            var rebaseTargets: [String: String?] = [:]
            var patchRows: [String: [[SQLValue]]] = [:]
            for f in findings {
                let key = f.location + "\u{0}" + f.image
                var step = steps[key] ?? FixPlan.Step(location: f.location, image: f.image, digest: f.digest, action: "", patches: [], reasons: [])
                let what = "\(f.advisory ?? "?"): \(f.package ?? "?") \(f.version ?? "?") (\(f.origin))"
                if f.buildpack == nil {
                    let key = f.digest + "\u{0}" + (f.advisory ?? "")
                    if rebaseTargets[key] == nil {
                        rebaseTargets[key] = .some(try Self.newerRunImage(db, versions: versions, image: f.digest, advisory: f.advisory ?? ""))
                    }
                    if let target = rebaseTargets[key] ?? nil {
                        step.runImage = target
                        step.reasons.append("\(what): rebase onto \(target), which has no affected version")
                    } else {
                        step.action = "rebuild"
                        step.reasons.append("\(what): no newer version of the run image without it is known")
                    }
                } else if let buildpack = f.buildpack, let layer = f.layer, !layer.isEmpty {
                    let pick = chosen[buildpack + "\u{0}" + layer]
                    if let patch = try pick ?? Self.patchSource(db, location: f.location, digest: f.digest, buildpack: buildpack, layer: layer,
                                                                advisory: f.advisory ?? "", cache: &patchRows) {
                        chosen[buildpack + "\u{0}" + layer] = patch
                        if !step.patches.contains(patch) { step.patches.append(patch) }
                        step.reasons.append("\(what): patch the layer from \(patch.patchImage)")
                    } else {
                        step.action = "rebuild"
                        step.reasons.append("\(what): no build of \(buildpack)'s \(layer) layer without it is indexed (or none is marked rebasable)")
                    }
                } else {
                    step.action = "rebuild"
                    step.reasons.append("\(what): the buildpack's launch SBOM lists it, no layer can be patched")
                }
                steps[key] = step
            }
            return FixPlan(steps: steps.values.map { s in
                var s = s
                if s.action != "rebuild" {
                    s.action = [s.runImage != nil ? "rebase" : nil, s.patches.isEmpty ? nil : "patch"].compactMap { $0 }.joined(separator: "+")
                } else {
                    s.runImage = nil
                    s.patches = []
                }
                return s
            }.sorted { ($0.image, $0.location) < ($1.image, $1.location) })
        }
    }

    /// The newest version of the image's run image that is newer than it, whose packages are
    /// known and none affected by `advisory`; as a reference `cairn rebase --run-image` takes.
    static func newerRunImage(_ db: any SQLSession, versions: RunImageVersions, image digest: String, advisory: String) throws -> String? {
        guard let runID = try db.value("SELECT run_image_id FROM image WHERE digest = ?", [.text(digest)])?.int,
              let current = versions.byID[runID] else { return nil }
        let candidates = versions.family(of: current).filter { $0.packagesKnown && $0.isNewer(than: current) }
            .sorted { $0.isNewer(than: $1) }
        for c in candidates {
            let hit = try db.value("""
                SELECT 1 FROM run_image_package rp JOIN vulnerable v ON v.package_id = rp.package_id
                WHERE rp.run_image_id = ? AND v.advisory_id = ?
                  AND (v.release = '' OR v.release = ? OR ? LIKE v.release || '.%')
                """, [.int(c.id), .text(advisory), .text(c.distroVersion), .text(c.distroVersion)])
            if hit == nil { return c.reference.isEmpty ? c.name : c.reference }
        }
        return nil
    }

    /// A named image at the same location whose build of the same buildpack layer is marked
    /// rebasable, differs from this one, comes from the same or a newer buildpack version and
    /// has no package affected by `advisory`.
    static func patchSource(_ db: any SQLSession, location: String, digest: String, buildpack: String, layer: String, advisory: String,
                            cache: inout [String: [[SQLValue]]]) throws -> FixPlan.Patch? {
        let mine = try db.rows("""
            SELECT l.diffid, m.version FROM image i JOIN image_layer l ON l.image_id = i.id
            LEFT JOIN image_module m ON m.image_id = i.id AND m.module = l.buildpack AND m.kind = 'buildpack'
            WHERE i.digest = ? AND l.buildpack = ? AND l.layer = ?
            """, [.text(digest), .text(buildpack), .text(layer)]).first
        let myVersion = mine?[1].text ?? ""
        let key = [location, buildpack, layer, advisory].joined(separator: "\u{0}")
        let rows = try cache[key] ?? db.rows("""
            SELECT n.name, l.diffid, m.version, i.id, i.first_seen FROM image_layer l
            JOIN image i ON i.id = l.image_id
            JOIN image_name n ON n.image_id = i.id AND n.location = ?
            LEFT JOIN image_module m ON m.image_id = i.id AND m.module = l.buildpack AND m.kind = 'buildpack'
            WHERE l.buildpack = ? AND l.layer = ? AND l.rebasable = 1
              AND NOT EXISTS (
                SELECT 1 FROM image_package ip JOIN vulnerable v ON v.package_id = ip.package_id
                WHERE ip.image_id = i.id AND ip.buildpack = l.buildpack AND ip.layer = l.layer AND v.advisory_id = ?)
            """, [.text(location), .text(buildpack), .text(layer), .text(advisory)])
        cache[key] = rows
        let usable = rows.filter { $0[1].text != mine?[0].text && GenericVersion.compare($0[2].text ?? "", myVersion) >= 0 }
        let best = usable.max { a, b in
            let c = GenericVersion.compare(a[2].text ?? "", b[2].text ?? "")
            return c != 0 ? c < 0 : (a[4].int ?? 0, a[0].text ?? "") < (b[4].int ?? 0, b[0].text ?? "")
        }
        return best.map { FixPlan.Patch(buildpack: buildpack, layer: layer, patchImage: $0[0].text ?? "") }
    }
}

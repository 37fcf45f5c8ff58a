import Foundation

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
        /// The advisories this step fixes (absent in plans written before campaigns read them).
        public var advisories: [String]?
        /// true when the image has a build-time SBOM (`sha256-<hex>.build-sbom`) that its fix
        /// carries to the new digest; absent otherwise (a campaign asks the registry only then).
        public var buildSBOM: Bool?
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
    /// `unknown` findings (images whose packages could not all be read) cannot be planned for
    /// and are left out; the caller says so.
    public func plan(_ findings: [Finding]) throws -> FixPlan {
        let findings = findings.filter { $0.status != "unknown" }
        return try backend.read { db in
            var trace = QueryTrace("plan")
            let versions = try Self.runImageVersions(db)
            trace.lap("run image versions")
            let (keys, advisoriesOf) = Self.fixKeys(findings)
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
                    steps.append(FixPlan.Step(location: f.location, image: f.image, digest: f.digest, action: "", patches: [], reasons: [],
                                              buildSBOM: images[f.digest]?.buildSBOM == true ? true : nil))
                    stepOf[StepKey(location: f.location, image: f.image)] = steps.count - 1
                    return steps.count - 1
                }()
                if let a = f.advisory, !(steps[i].advisories ?? []).contains(a) { steps[i].advisories = (steps[i].advisories ?? []) + [a] }
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
            Self.settle(&steps)
            return FixPlan(steps: steps.sorted { ($0.image, $0.location) < ($1.image, $1.location) })
        }
    }

    /// Each finding's fix key, and the advisories each key must be fixed of. What fixes an image
    /// must fix all of its findings there: the run image to rebase onto has none of the
    /// advisories its run image findings name, the patch source layer none of those of the
    /// image's layer. (Per finding, an image with two advisories on one layer was sent two patch
    /// images for it, the second maybe still affected by the first's advisory.)
    static func fixKeys(_ findings: [Finding]) -> (keys: [FixKey?], advisoriesOf: [FixKey: [String]]) {
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
        return (keys, advisoriesOf.mapValues { $0.sorted() })
    }

    /// Each step's action from what it gathered: rebase, patch or both; a rebuild drops the rest.
    static func settle(_ steps: inout [FixPlan.Step]) {
        for i in steps.indices {
            if steps[i].action != "rebuild" {
                steps[i].action = [steps[i].runImage != nil ? "rebase" : nil, steps[i].patches.isEmpty ? nil : "patch"].compactMap { $0 }.joined(separator: "+")
            } else {
                steps[i].runImage = nil
                steps[i].patches = []
            }
        }
    }
}

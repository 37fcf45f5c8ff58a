import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// Applies a resolved `LayerPatchPlan` to an image's layers and config. Only the SBOM layer is
/// written (when a replaced layer's SBOM documents change); every other new layer is a blob the
/// patch image already has, linked into the store or mounted in the registry.
enum LayerPatchApplier {
    /// `<escaped buildpack id>/<layer>`: where a layer's SBOM documents are below `sbom/launch`.
    static func sbomDirectory(_ buildpack: String, _ layer: String) -> String {
        buildpack.replacing("/", with: "_") + "/" + layer
    }

    static func apply(_ plan: LayerPatchPlan, layers: inout [Descriptor], config: inout ImageConfig,
                      into dest: WriteSession) throws(LifecycleError) {
        guard !plan.isEmpty else { return }
        let layerHistory = historyIndexes(config)
        for (replacement, source) in zip(plan.replacements, plan.sources) {
            guard let old = Digest(replacement.oldDiffID), let index = config.rootfs.diffIDs.firstIndex(of: old),
                  let new = Digest(replacement.newDiffID) else {
                throw .imageContent(image: "the app image", reason: "layer \(replacement.oldDiffID) (\(replacement.name)) is no longer in it")
            }
            do { try copyBlob(source.descriptor.digest, from: source.store, to: dest) } catch {
                throw .layer(operation: "link into the store", layer: "patch layer \(source.descriptor.digest)", cause: error)
            }
            layers[index] = source.descriptor
            config.rootfs.diffIDs[index] = new
            if let h = layerHistory?[index] {
                var entry = source.history ?? config.history![h]
                entry.comment = "patched: \(replacement.name) \(replacement.oldDiffID) -> \(replacement.newDiffID) from \(replacement.patchImage)@\(replacement.patchImageDigest)"
                config.history![h] = entry
            }
        }
        var labels = config.config?.labels ?? [:]
        var sbomSHA: String?
        if let rebuilt = try rebuildSBOM(plan, layers: &layers, config: &config, into: dest) { sbomSHA = rebuilt.description }
        labels[CNBLabel.lifecycleMetadata] = try patchedLifecycleLabel(labels[CNBLabel.lifecycleMetadata], plan, sbomSHA: sbomSHA)
        if let build = labels[CNBLabel.buildMetadata] {
            labels[CNBLabel.buildMetadata] = try patchedBuildLabel(build, plan)
        }
        config.config?.labels = labels
    }

    /// Layer index -> history index, when the history matches the layers.
    static func historyIndexes(_ config: ImageConfig) -> [Int: Int]? {
        guard let history = config.history else { return nil }
        let indexes = history.indices.filter { history[$0].emptyLayer != true }
        guard indexes.count == config.rootfs.diffIDs.count else { return nil }
        return Dictionary(uniqueKeysWithValues: indexes.enumerated().map { ($0.offset, $0.element) })
    }

    /// The SBOM layer with each replaced buildpack layer's documents swapped for the patch
    /// image's; returns its diffID, or nil when nothing changed.
    static func rebuildSBOM(_ plan: LayerPatchPlan, layers: inout [Descriptor], config: inout ImageConfig,
                            into dest: WriteSession) throws(LifecycleError) -> Digest? {
        guard var sbom = plan.appSBOM, let oldSHA = sbom.diffID, let index = config.rootfs.diffIDs.firstIndex(of: oldSHA) else { return nil }
        var changed = false
        for (replacement, source) in zip(plan.replacements, plan.sources) {
            guard let buildpack = replacement.buildpack else { continue }
            let dir = sbomDirectory(buildpack, replacement.layer)
            let before = sbom.entries.count
            sbom.entries.removeAll { $0.relative == dir || $0.relative.hasPrefix(dir + "/") }
            changed = changed || sbom.entries.count != before || source.sbom != nil
            if let patch = source.sbom { sbom.add(patch.entries) }
        }
        guard changed else { return nil }
        let old = layers[index]
        let result = try write(sbom, mediaType: old.mediaType, into: dest)
        layers[index] = Descriptor(mediaType: old.mediaType, digest: result.digest, size: result.size)
        config.rootfs.diffIDs[index] = result.diffID
        return result.diffID
    }

    /// Writes an SBOM layer, compressed as `mediaType` says.
    static func write(_ sbom: SBOMEntries, mediaType: String, into store: WriteSession) throws(LifecycleError) -> LayerResult {
        var options = LayerWriteOptions()
        options.compression = mediaType.hasSuffix("zstd") ? .zstd : mediaType.hasSuffix("gzip") ? .gzip : .none
        do {
            let (result, _, _) = try store.writeBlob { output in
                try LayerWriter.writeStream(options: options, to: output) { tar in
                    let all = sbom.sorted()
                    for entry in all {
                        if entry.header.type == .regular { try tar.writeFile(entry.header, contents: entry.contents) } else { try tar.writeHeader(entry.header) }
                    }
                    return all.count
                }
            }
            return result
        } catch {
            throw .layer(operation: "write", layer: "the SBOM layer", cause: error)
        }
    }

    /// `io.buildpacks.lifecycle.metadata` with each replaced layer's entry taken from the patch
    /// image, newer buildpack versions, the launcher's sha and the SBOM layer's sha; keys this
    /// lifecycle does not model are kept.
    static func patchedLifecycleLabel(_ raw: String?, _ plan: LayerPatchPlan, sbomSHA: String?) throws(LifecycleError) -> String {
        guard case .table(var table)? = try? JSONDecoder().decode(AnyTOML.self, from: Data((raw ?? "{}").utf8)) else {
            throw .label(image: "the app image", label: CNBLabel.lifecycleMetadata, reason: "is not a JSON object")
        }
        var buildpacks: [AnyTOML] = []
        if case .array(let list)? = table["buildpacks"] { buildpacks = list }
        for (replacement, source) in zip(plan.replacements, plan.sources) {
            guard let id = replacement.buildpack else {
                table["launcher"] = .table(["sha": .string(replacement.newDiffID)])
                continue
            }
            for i in buildpacks.indices {
                guard case .table(var bp) = buildpacks[i], bp["key"] == .string(id) else { continue }
                var layers: [String: AnyTOML] = [:]
                if case .table(let l)? = bp["layers"] { layers = l }
                layers[replacement.layer] = source.labelEntry ?? layers[replacement.layer]
                bp["layers"] = .table(layers)
                if let new = replacement.newVersion, LayerPatchMatching.isNewer(new, than: replacement.oldVersion ?? "") {
                    bp["version"] = .string(new)
                }
                buildpacks[i] = .table(bp)
            }
        }
        table["buildpacks"] = .array(buildpacks)
        if let sbomSHA { table["sbom"] = .table(["sha": .string(sbomSHA)]) }
        return try encode(.table(table), label: CNBLabel.lifecycleMetadata)
    }

    /// `io.buildpacks.build.metadata` with newer buildpack versions and the launcher's version.
    static func patchedBuildLabel(_ raw: String, _ plan: LayerPatchPlan) throws(LifecycleError) -> String {
        guard case .table(var table)? = try? JSONDecoder().decode(AnyTOML.self, from: Data(raw.utf8)) else {
            throw .label(image: "the app image", label: CNBLabel.buildMetadata, reason: "is not a JSON object")
        }
        for replacement in plan.replacements {
            guard let new = replacement.newVersion, LayerPatchMatching.isNewer(new, than: replacement.oldVersion ?? "") else { continue }
            guard let id = replacement.buildpack else {
                if case .table(var launcher)? = table["launcher"] {
                    launcher["version"] = .string(new)
                    table["launcher"] = .table(launcher)
                }
                continue
            }
            if case .array(var list)? = table["buildpacks"] {
                for i in list.indices {
                    guard case .table(var bp) = list[i], bp["id"] == .string(id) else { continue }
                    bp["version"] = .string(new)
                    list[i] = .table(bp)
                }
                table["buildpacks"] = .array(list)
            }
        }
        return try encode(.table(table), label: CNBLabel.buildMetadata)
    }

    static func encode(_ value: AnyTOML, label: String) throws(LifecycleError) -> String {
        do { return String(decoding: try CanonicalJSON.encode(value), as: UTF8.self) } catch {
            throw .label(image: "the app image", label: label, reason: "cannot be encoded", cause: error)
        }
    }
}

extension SBOMEntries {
    /// Reads an SBOM layer blob.
    static func read(_ path: String, what: String) throws(LifecycleError) -> SBOMEntries {
        do {
            let reader = try TarReader(layerBlob: path, what: what)
            var root: String?
            var all: [(name: String, header: TarHeader, contents: [UInt8])] = []
            while let header = try reader.next() {
                let contents = header.type == .regular ? try reader.readAll() : []
                let name = String(header.name.drop { $0 == "/" }.reversed().drop { $0 == "/" }.reversed())
                all.append((name, header, contents))
                let parts = name.split(separator: "/")
                if root == nil, let at = parts.lastIndex(of: "launch"), at > 0, parts[at - 1] == "sbom" {
                    root = parts[...at].joined(separator: "/")
                }
            }
            guard let root else { return SBOMEntries(root: "layers/sbom/launch", entries: []) }
            var entries = SBOMEntries(root: root, entries: [])
            for (name, header, contents) in all {
                if name == root { entries.entries.append(("", header, contents)) } else if name.hasPrefix(root + "/") {
                    entries.entries.append((String(name.dropFirst(root.count + 1)), header, contents))
                } else {
                    entries.parents.append((name, header))
                }
            }
            return entries
        } catch let e as LifecycleError {
            throw e
        } catch {
            throw .layer(operation: "read", layer: what, cause: error)
        }
    }

    /// The entries at and below `dir` (relative), or nil when there are none.
    func below(_ dir: String) -> SBOMEntries? {
        let found = entries.filter { $0.relative == dir || $0.relative.hasPrefix(dir + "/") }
        return found.isEmpty ? nil : SBOMEntries(root: root, entries: found)
    }

    /// Adds entries (from another SBOM layer), with the directories above them this layer lacks.
    mutating func add(_ more: [(relative: String, header: TarHeader, contents: [UInt8])]) {
        var have = Set(entries.map(\.relative))
        let template = entries.first { $0.relative.isEmpty }?.header ?? more.first { $0.header.type == .directory }?.header
        for entry in more {
            var dir = ""
            for component in entry.relative.split(separator: "/").dropLast() {
                dir += (dir.isEmpty ? "" : "/") + component
                if have.insert(dir).inserted, var header = template {
                    header.type = .directory
                    header.size = 0
                    entries.append((dir, header, []))
                }
            }
            if have.insert(entry.relative).inserted { entries.append(entry) }
        }
    }

    /// Every entry with its full name, parents first, in name order.
    func sorted() -> [(header: TarHeader, contents: [UInt8])] {
        var out: [(String, TarHeader, [UInt8])] = parents.map { ($0.name, $0.header, []) }
        for e in entries {
            var header = e.header
            let name = e.relative.isEmpty ? root : root + "/" + e.relative
            header.name = name
            out.append((name, header, e.contents))
        }
        return out.sorted { $0.0 < $1.0 }.map { ($0.1, $0.2) }
    }
}

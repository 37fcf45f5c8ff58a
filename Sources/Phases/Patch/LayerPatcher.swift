import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// Resolves a layer patches file against app images (every patch image read and checked first)
/// and applies the result to an image's layers and config: the patched layer takes the old one's
/// place, and the labels, history and SBOM layer say what is there now.
public struct LayerPatcher: Sendable {
    public let file: LayerPatchFile
    public let location: ImageLocation
    /// Patch layers their buildpack did not mark rebasable, too.
    public let force: Bool

    public init(file: LayerPatchFile, location: ImageLocation, force: Bool) {
        self.file = file
        self.location = location
        self.force = force
    }

    /// Resolves every patch against `app`; throws on the first patch that cannot be applied (so
    /// nothing is applied), naming the patch, the layer and what is wrong.
    public func plan(for app: LocatedImage, named appName: String) async throws(LifecycleError) -> LayerPatchPlan {
        guard let metadata = try app.image.lifecycleMetadata() else {
            throw .missingLabel(image: "app image \(appName)", label: CNBLabel.lifecycleMetadata, meaning: "it was not built by a buildpacks lifecycle")
        }
        var plan = LayerPatchPlan()
        var images = PatchImages(location: location, platform: Self.platform(of: app.image.config))
        for (index, patch) in file.patches.enumerated() {
            let what = "patches[\(index)] (\(patch.buildpack):\(patch.layer))"
            let matches = LayerPatchMatching.matchingLayers(patch, in: metadata)
            if matches.isEmpty {
                plan.skipped.append(SkippedPatch(patch: what, reason: "no layer of \(appName) matches"))
                continue
            }
            for (buildpack, layer) in matches {
                try await resolve(patch, what: what, buildpack: buildpack, layer: layer, app: app, metadata: metadata,
                                  images: &images, into: &plan)
            }
        }
        if let launcher = file.launcher {
            try await resolveLauncher(launcher, app: app, metadata: metadata, images: &images, into: &plan)
        }
        // Only a buildpack layer has SBOM documents to swap (the launcher has none).
        if plan.replacements.contains(where: { $0.buildpack != nil }) {
            plan.appSBOM = try await sbomEntries(of: app, name: appName)
        }
        return plan
    }

    func resolve(_ patch: LayerPatchFile.Patch, what: String, buildpack: String, layer: String, app: LocatedImage,
                 metadata: LifecycleMetadataLabel, images: inout PatchImages, into plan: inout LayerPatchPlan) async throws(LifecycleError) {
        let current = metadata.buildpack(buildpack)?.layers[layer]
        let name = "\(buildpack):\(layer)"
        guard let current, let oldDiffID = Digest(current.sha), app.image.layer(diffID: oldDiffID) != nil else {
            throw .layerPatch(patch: what, layer: name, reason: "the app image's label names this layer but the image has no such layer")
        }
        guard force || LayerPatchMatching.isRebasable(current.data) else {
            throw .layerPatch(patch: what, layer: name, reason: "buildpack \(buildpack) did not mark this layer patchable (\"\(LayerPatchMatching.rebasableKey)\" = true in its metadata); use --force to patch it anyway")
        }
        let (reference, patchImage) = try await images.image(patch.images, what: what)
        guard let patchMetadata = try patchImage.image.lifecycleMetadata(), let patchBuildpack = patchMetadata.buildpack(buildpack),
              let patchLayer = patchBuildpack.layers[layer] else {
            throw .layerPatch(patch: what, layer: name, reason: "patch image \(reference) has no layer \(layer) of buildpack \(buildpack)")
        }
        guard let newDiffID = Digest(patchLayer.sha), let found = patchImage.image.layer(diffID: newDiffID) else {
            throw .layerPatch(patch: what, layer: name, reason: "patch image \(reference) names layer \(patchLayer.sha) for it but does not contain it")
        }
        if newDiffID == oldDiffID {
            plan.skipped.append(SkippedPatch(patch: what, reason: "\(name) is already \(newDiffID) (\(reference))"))
            return
        }
        guard !plan.replacements.contains(where: { $0.oldDiffID == oldDiffID.description }) else {
            throw .layerPatch(patch: what, layer: name, reason: "another patch already replaces this layer")
        }
        let oldVersion = metadata.buildpack(buildpack)?.version
        plan.replacements.append(LayerReplacement(
            buildpack: buildpack, layer: layer, oldDiffID: oldDiffID.description, newDiffID: newDiffID.description,
            patchImage: reference, patchImageDigest: patchImage.image.digest.description,
            oldVersion: oldVersion, newVersion: patchBuildpack.version))
        plan.sources.append(LayerPatchPlan.Source(
            descriptor: found.descriptor, store: patchImage.store,
            labelEntry: try Self.rawLayerEntry(patchImage.image, buildpack: buildpack, layer: layer),
            history: Self.history(of: patchImage.image.config, layerIndex: found.index),
            sbom: try await patchSBOM(patchImage, name: reference, images: &images)?.below(LayerPatchApplier.sbomDirectory(buildpack, layer))))
    }

    /// A patch image's SBOM layer entries, read once however many of its layers are used.
    func patchSBOM(_ image: LocatedImage, name: String, images: inout PatchImages) async throws(LifecycleError) -> SBOMEntries? {
        if let known = images.sboms[image.image.digest] { return known }
        let entries = try await sbomEntries(of: image, name: name)
        images.sboms[image.image.digest] = .some(entries)
        return entries
    }

    func resolveLauncher(_ launcher: LayerPatchFile.LauncherPatch, app: LocatedImage, metadata: LifecycleMetadataLabel,
                         images: inout PatchImages, into plan: inout LayerPatchPlan) async throws(LifecycleError) {
        let what = "launcher"
        guard let sha = metadata.launcher?.sha, let oldDiffID = Digest(sha), app.image.layer(diffID: oldDiffID) != nil else {
            throw .layerPatch(patch: what, layer: "launcher", reason: "the app image records no launcher layer it contains")
        }
        let (reference, patchImage) = try await images.image(launcher.images, what: what)
        guard let newSHA = try patchImage.image.lifecycleMetadata()?.launcher?.sha, let newDiffID = Digest(newSHA),
              let found = patchImage.image.layer(diffID: newDiffID) else {
            throw .layerPatch(patch: what, layer: "launcher", reason: "patch image \(reference) has no launcher layer")
        }
        if newDiffID == oldDiffID {
            plan.skipped.append(SkippedPatch(patch: what, reason: "the launcher is already \(newDiffID) (\(reference))"))
            return
        }
        if let allowed = launcher.mustMatchSHA, !allowed.contains(oldDiffID.description) {
            throw .layerPatch(patch: what, layer: "launcher", reason: "the app image's launcher layer \(oldDiffID) is not one of must-match-sha (\(allowed.joined(separator: ", ")))")
        }
        plan.replacements.append(LayerReplacement(
            buildpack: nil, layer: "launcher", oldDiffID: oldDiffID.description, newDiffID: newDiffID.description,
            patchImage: reference, patchImageDigest: patchImage.image.digest.description,
            oldVersion: Self.launcherVersion(app.image), newVersion: Self.launcherVersion(patchImage.image)))
        plan.sources.append(LayerPatchPlan.Source(descriptor: found.descriptor, store: patchImage.store, labelEntry: nil,
                                                  history: Self.history(of: patchImage.image.config, layerIndex: found.index), sbom: nil))
    }

    /// The SBOM layer's entries (its blob fetched from a registry when needed); nil when the
    /// image has no SBOM layer.
    func sbomEntries(of image: LocatedImage, name: String) async throws(LifecycleError) -> SBOMEntries? {
        guard let sha = try image.image.lifecycleMetadata()?.sbom?.sha else { return nil }
        guard let digest = Digest(sha), let layer = image.image.layer(diffID: digest) else {
            throw .label(image: "image \(name)", label: CNBLabel.lifecycleMetadata, reason: "names SBOM layer \(sha), which is not one of its layers")
        }
        try await location.ensureBlob(layer.descriptor, of: name, in: image.store)
        var entries = try SBOMEntries.read(image.store.blobPath(layer.descriptor.digest), what: "the SBOM layer of \(name)")
        entries.diffID = digest
        return entries
    }

    /// The label's JSON for one layer, as the patch image has it (keys this lifecycle does not
    /// model kept).
    static func rawLayerEntry(_ image: StoredImage, buildpack: String, layer: String) throws(LifecycleError) -> AnyTOML? {
        guard let raw = image.config.config?.labels?[CNBLabel.lifecycleMetadata],
              case .table(let table)? = try? JSONDecoder().decode(AnyTOML.self, from: Data(raw.utf8)),
              case .array(let buildpacks)? = table["buildpacks"] else { return nil }
        for case .table(let bp) in buildpacks where bp["key"] == .string(buildpack) {
            if case .table(let layers)? = bp["layers"] { return layers[layer] }
        }
        return nil
    }

    /// The history entry of the layer at `layerIndex` (history has entries for empty layers too).
    static func history(of config: ImageConfig, layerIndex: Int) -> History? {
        guard let history = config.history, history.filter({ $0.emptyLayer != true }).count == config.rootfs.diffIDs.count else { return nil }
        return history.filter { $0.emptyLayer != true }[layerIndex]
    }

    static func launcherVersion(_ image: StoredImage) -> String? {
        guard let raw = image.config.config?.labels?[CNBLabel.buildMetadata] else { return nil }
        return (try? JSONDecoder().decode(BuildMetadataLabel.self, from: Data(raw.utf8)))?.launcher?.version
    }

    static func platform(of config: ImageConfig) -> Platform {
        Platform(architecture: config.architecture, os: config.os, variant: config.variant)
    }
}

/// The patch images read so far (each once however many patches name it), tried image then
/// mirrors, and checked against the app image's platform.
struct PatchImages {
    let location: ImageLocation
    let platform: Platform
    var found: [String: (String, LocatedImage)] = [:]
    /// Their SBOM layers' entries by image digest (nil: the image has none).
    var sboms: [Digest: SBOMEntries?] = [:]

    init(location: ImageLocation, platform: Platform) {
        self.location = location
        self.platform = platform
    }

    mutating func image(_ candidates: [String], what: String) async throws(LifecycleError) -> (String, LocatedImage) {
        let key = candidates.joined(separator: "\n")
        if let known = found[key] { return known }
        var failures: [String] = []
        for reference in candidates {
            let located: LocatedImage?
            do { located = try await location.find(reference, layers: false, platform: platform) } catch {
                failures.append("\(reference): \(error)")
                continue
            }
            guard let image = located else {
                failures.append("\(reference): not found")
                continue
            }
            let config = image.image.config
            guard config.os == platform.os, config.architecture == platform.architecture,
                  platform.variant == nil || config.variant == nil || config.variant == platform.variant else {
                throw .layerPatch(patch: what, layer: nil, reason: "patch image \(reference) is for \(config.os)/\(config.architecture)\(config.variant.map { "/" + $0 } ?? ""), the app image for \(platform)")
            }
            found[key] = (reference, image)
            return (reference, image)
        }
        throw .layerPatch(patch: what, layer: nil, reason: "no patch image could be read (\(failures.joined(separator: "; ")))")
    }
}

extension ImageLocation {
    /// Makes sure `store` holds a blob of `reference`: from a registry it is downloaded (SBOM
    /// layers are small); elsewhere it must be there.
    func ensureBlob(_ descriptor: Descriptor, of reference: String, in store: ImageStore) async throws(LifecycleError) {
        guard !store.hasBlob(descriptor.digest) else { return }
        guard case .registry(let client, _) = self else {
            throw .imageContent(image: "image \(reference)", reason: "blob \(descriptor.digest) is missing from \(store.root)")
        }
        do {
            try await client.download(Repository(try ImageReference(parsing: reference)), descriptor, into: try store.beginWriteSession(), progress: nil)
        } catch {
            throw .layer(operation: "download", layer: "blob \(descriptor.digest) of \(reference)", cause: error)
        }
    }
}

import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// `cairn patch extract`: a minimal patch image of one buildpack layer — that layer, an SBOM
/// layer with only its documents (when the source has any), and labels naming the buildpack, its
/// version and the layer's metadata — small to publish, complete enough to apply.
public enum PatchImageExtractor {
    public static func extract(_ source: LocatedImage, name: String, buildpack: String, layer: String,
                               into target: ImageStore, reference: String) throws(LifecycleError) -> StoredImage {
        let store = try writeSession(target, for: "patch image \(reference)")
        guard let metadata = try source.image.lifecycleMetadata(), let bp = metadata.buildpack(buildpack), let entry = bp.layers[layer] else {
            throw .label(image: "image \(name)", label: CNBLabel.lifecycleMetadata, reason: "names no layer \(layer) of buildpack \(buildpack)")
        }
        guard let diffID = Digest(entry.sha), let found = source.image.layer(diffID: diffID) else {
            throw .imageContent(image: "image \(name)", reason: "its label names layer \(entry.sha) for \(buildpack):\(layer), which it does not contain")
        }
        do { try copyBlob(found.descriptor.digest, from: source.store, to: store) } catch {
            throw .layer(operation: "copy", layer: "layer \(found.descriptor.digest) of \(name)", cause: error)
        }
        var layers = [found.descriptor]
        var config = ImageConfig(created: source.image.config.created, architecture: source.image.config.architecture,
                                 os: source.image.config.os, variant: source.image.config.variant)
        config.rootfs.diffIDs = [diffID]
        config.history = [LayerPatcher.history(of: source.image.config, layerIndex: found.index)
            ?? History(createdBy: "Layer: '\(layer)', Created by buildpack: \(buildpack)@\(bp.version)")]
        var label = LifecycleMetadataLabel(buildpacks: [.init(key: buildpack, version: bp.version,
                                                              layers: [layer: entry])])
        if let sbom = try sbomLayer(source, name: name, metadata: metadata, buildpack: buildpack, layer: layer, into: store) {
            layers.append(sbom.descriptor)
            config.rootfs.diffIDs.append(sbom.diffID)
            config.history?.append(History(createdBy: "Layer: 'SBOM' of \(buildpack):\(layer)"))
            label.sbom = .init(sha: sbom.diffID.description)
        }
        // The layer's own label entry, verbatim (keys this lifecycle does not model kept).
        var table: [String: AnyTOML] = [:]
        do {
            table = try JSONDecoder().decode([String: AnyTOML].self, from: try CanonicalJSON.encode(label))
            if let raw = try LayerPatcher.rawLayerEntry(source.image, buildpack: buildpack, layer: layer) {
                table["buildpacks"] = .array([.table(["key": .string(buildpack), "version": .string(bp.version),
                                                      "layers": .table([layer: raw])])])
            }
        } catch {
            throw .label(image: "the patch image", label: CNBLabel.lifecycleMetadata, reason: "cannot be encoded", cause: error)
        }
        let build: AnyTOML = .table(["buildpacks": .array([.table(["id": .string(buildpack), "version": .string(bp.version)])])])
        config.config = ExecutionConfig(labels: [
            CNBLabel.lifecycleMetadata: try LayerPatchApplier.encode(.table(table), label: CNBLabel.lifecycleMetadata),
            CNBLabel.buildMetadata: try LayerPatchApplier.encode(build, label: CNBLabel.buildMetadata),
        ])
        do { return try store.commitManifest(config: config, layers: layers, reference: reference) } catch {
            throw .imageIO(operation: "write", image: "patch image \(reference)", cause: error)
        }
    }

    /// An SBOM layer holding only the layer's documents; nil when it has none.
    static func sbomLayer(_ source: LocatedImage, name: String, metadata: LifecycleMetadataLabel, buildpack: String,
                          layer: String, into store: WriteSession) throws(LifecycleError) -> LayerResult? {
        guard let sha = metadata.sbom?.sha, let digest = Digest(sha), let found = source.image.layer(diffID: digest) else { return nil }
        let all = try SBOMEntries.read(source.store.blobPath(found.descriptor.digest), what: "the SBOM layer of \(name)")
        guard let mine = all.below(LayerPatchApplier.sbomDirectory(buildpack, layer)) else { return nil }
        var sbom = SBOMEntries(root: all.root, entries: all.entries.filter { $0.relative.isEmpty }, parents: all.parents)
        sbom.add(mine.entries)
        return try LayerPatchApplier.write(sbom, mediaType: found.descriptor.mediaType, into: store)
    }
}

import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// What the rebaser works on (platform.md, rebaser Inputs).
public struct RebaserInputs: Sendable {
    /// The tags to write the rebased image to (`<image>...`); the first names the image to rebase
    /// unless `previousImage` is given.
    public var images: [String]
    public var previousImage: String?
    /// `-run-image`; else resolved from the app image's `runImage` metadata.
    public var runImage: String?
    /// `-force`: rebase even when `io.buildpacks.rebasable` is false, onto another target or a run
    /// image the metadata does not name.
    public var force: Bool
    /// Where report.toml goes; nil: no report (`cairn rebase`).
    public var reportPath: String?
    /// Owner of the report (the build image user), when set.
    public var reportOwner: (uid: Int, gid: Int)?
    public var location: ImageLocation
    public var platformAPI: APIVersion
    /// `-layer-patches`: buildpack and launcher layers to replace from patch images, in the same
    /// operation as the run image rebase (`force` also allows layers not marked patchable).
    public var layerPatches: LayerPatchFile?
    /// Called with the app image, its current run image layers and the new run image before
    /// anything is written; throwing refuses the rebase (`cairn rebase`'s package check).
    public var checkRunImage: (@Sendable (_ app: LocatedImage, _ oldRunLayers: [Descriptor], _ newRun: LocatedImage) throws -> Void)?
    /// Keep the app image's run image layers (only `layerPatches` change it): a fix campaign's
    /// patch without a rebase, which must not pick up a run image the metadata's tag moved to.
    public var keepRunImage = false

    public init(images: [String], previousImage: String?, runImage: String?, force: Bool, reportPath: String?,
                reportOwner: (uid: Int, gid: Int)? = nil, location: ImageLocation, platformAPI: APIVersion,
                layerPatches: LayerPatchFile? = nil) {
        self.layerPatches = layerPatches
        self.reportOwner = reportOwner
        self.images = images
        self.previousImage = previousImage
        self.runImage = runImage
        self.force = force
        self.reportPath = reportPath
        self.location = location
        self.platformAPI = platformAPI
    }
}

/// What a rebase did.
public struct RebaseResult: Sendable {
    public var image: StoredImage
    public var runImage: String
    /// The run image layers replaced and the ones put in their place.
    public var removedLayers: Int
    public var addedLayers: Int
    /// The layers patched (and the patches that changed nothing), with `layerPatches`.
    public var patches: LayerPatchPlan?
}

/// The rebase phase (platform.md, rebaser): the app image's run image layers — everything up to
/// and including `runImage.topLayer` — are replaced by the new run image's layers; the layers
/// above, the config and the labels stay, except the run image identity, the `io.buildpacks.base.*`
/// and `io.buildpacks.stack.*` labels and (with `force`) the target data.
public struct Rebaser: Sendable {
    let inputs: RebaserInputs
    let log: Logger

    public init(inputs: RebaserInputs, log: Logger) {
        self.inputs = inputs
        self.log = log
    }

    @discardableResult
    public func run() async throws(LifecycleError) -> RebaseResult {
        try checkTags()
        let appName = inputs.previousImage ?? inputs.images[0]
        let (given, prefetch) = prefetchRunImage()
        defer { prefetch?.cancel() }
        guard let app = try await inputs.location.find(appName, layers: false) else { throw .imageNotFound(role: "app image", reference: appName) }
        try checkRebasable(app, appName)
        guard let metadata = try app.image.lifecycleMetadata() else {
            throw .missingLabel(image: "app image \(appName)", label: CNBLabel.lifecycleMetadata, meaning: "it was not built by a buildpacks lifecycle")
        }
        // runImage, else the stack.runImage of images exported for older platforms (platform.md, deprecations).
        let named = metadata.runImage?.image.map { (image: $0, mirrors: metadata.runImage?.mirrors ?? []) }
            ?? metadata.stack?.runImage.map { (image: $0.image, mirrors: $0.mirrors ?? []) }
        let runName = inputs.keepRunImage ? named?.image ?? "" : try chooseRunImage(named: named)
        guard let topLayerText = metadata.runImage?.topLayer, let topLayer = Digest(topLayerText) else {
            throw .label(image: "app image \(appName)", label: CNBLabel.lifecycleMetadata, reason: "has no valid runImage.topLayer, so its run image layers are unknown")
        }
        guard let top = app.image.layer(diffID: topLayer)?.index, app.image.config.rootfs.diffIDs.count == app.image.manifest.layers.count else {
            throw .imageContent(image: "app image \(appName)", reason: "runImage.topLayer \(topLayer) is not one of its layers")
        }

        let run: LocatedImage?
        if inputs.keepRunImage {
            run = app
        } else if let prefetch, runName == given {
            run = try await prefetch.value.get()
        } else {
            run = try await inputs.location.find(runName, layers: false)
        }
        guard let run else { throw .imageNotFound(role: "run image", reference: runName) }
        // Every patch resolved and checked before anything is written: all or nothing.
        var patches: LayerPatchPlan?
        if let file = inputs.layerPatches {
            patches = try await LayerPatcher(file: file, location: inputs.location, force: inputs.force).plan(for: app, named: appName)
        }
        if let check = inputs.checkRunImage, !inputs.keepRunImage {
            do { try check(app, Array(app.image.manifest.layers[...top]), run) } catch {
                throw .imageIO(operation: "rebase", image: "app image \(appName)", cause: error)
            }
        }
        log.info("Rebasing \(appName) on run image \(runName) (\(run.image.digest))")
        var config = inputs.keepRunImage ? app.image.config
            : try rebasedConfig(app: app.image, run: run.image, runName: runName, named: named, metadata: metadata, keptFrom: top + 1)
        let appLayers = Array(app.image.manifest.layers[(top + 1)...])
        var layers = (inputs.keepRunImage ? Array(app.image.manifest.layers[...top]) : run.image.manifest.layers) + appLayers

        let dest = try inputs.location.destination(for: inputs.images[0])
        let session = try writeSession(dest, for: "the rebased image")
        let image: StoredImage
        do {
            for d in layers[..<(layers.count - appLayers.count)] { try copyBlob(d.digest, from: run.store, to: session) }
            for d in appLayers { try copyBlob(d.digest, from: app.store, to: session) }
            if let patches { try LayerPatchApplier.apply(patches, layers: &layers, config: &config, into: session) }
            image = try session.commitManifest(config: config, layers: layers, reference: inputs.images[0], naming: inputs.location.namesAssembledImages)
        } catch let e as LifecycleError {
            throw e
        } catch {
            throw .imageIO(operation: "write", image: "the rebased image", cause: error)
        }
        for tag in inputs.images {
            try await inputs.location.publish(image, from: dest, as: tag)
            log.info("*** Image: \(tag)@\(image.digest)")
        }
        withExtendedLifetime(session) {}  // until it is named or pushed
        var report = ReportFile(image: .init(tags: inputs.images, digest: image.digest.description, manifestSize: image.descriptor.size))
        report.image.imageID = image.manifest.config.digest.description
        if let patches {
            for r in patches.replacements { log.info("Patched \(r.name): \(r.oldDiffID) -> \(r.newDiffID) from \(r.patchImage)") }
            for s in patches.skipped { log.info("Skipped \(s.patch): \(s.reason)") }
            report.layerPatches = patches.replacements
        }
        if let path = inputs.reportPath { try writeFile(report, path, owner: inputs.reportOwner) }
        return RebaseResult(image: image, runImage: runName, removedLayers: inputs.keepRunImage ? 0 : top + 1,
                            addedLayers: inputs.keepRunImage ? 0 : run.image.manifest.layers.count,
                            patches: patches)
    }

    /// A run image given by name (`-run-image`) is read while the app image is: in a registry,
    /// two round trips fewer. Its checks against the app image's metadata still come first.
    func prefetchRunImage() -> (String?, Task<Result<LocatedImage?, LifecycleError>, Never>?) {
        guard !inputs.keepRunImage, let given = inputs.runImage, !given.isEmpty else { return (nil, nil) }
        return (given, inputs.location.prefetch(given))
    }

    /// `io.buildpacks.rebasable=false` refuses the rebase unless forced, naming the extensions.
    func checkRebasable(_ app: LocatedImage, _ appName: String) throws(LifecycleError) {
        let labels = app.image.config.config?.labels ?? [:]
        if labels[CNBLabel.rebasable] == "false" && !inputs.force {
            // Which extensions: io.buildpacks.build.metadata names them.
            let build = labels[CNBLabel.buildMetadata].flatMap { try? JSONDecoder().decode(BuildMetadataLabel.self, from: Data($0.utf8)) }
            let names = (build?.extensions ?? []).map { "\($0.id)@\($0.version)" }
            let who = names.isEmpty ? "an image extension" : "image extension(s) " + names.joined(separator: ", ")
            throw .rebaseRefused("""
                app image \(appName) is not rebasable (\(CNBLabel.rebasable)=false): \(who) changed its run image with layers \
                not declared safe to rebase (a run.Dockerfile without LABEL \(CNBLabel.rebasable)=true); rebuild it, or force the rebase
                """)
        }
    }

    /// platform.md: at least one image, each a tag reference; in a registry, all on one registry.
    func checkTags() throws(LifecycleError) {
        guard !inputs.images.isEmpty else { throw .missingInput(what: "no image", hint: "at least one image to rebase must be given") }
        var registries: Set<String> = []
        for tag in inputs.images {
            let ref: ImageReference
            do { ref = try ImageReference(parsing: tag) } catch { throw .invalidReference(tag, cause: error) }
            guard ref.digest == nil else { throw .invalidArgument("image \"\(tag)\"", reason: "must be a tag reference, not a digest") }
            registries.insert(ref.registry)
        }
        if case .registry = inputs.location, registries.count > 1 {
            throw .invalidArgument("images", reason: "the images must be on one registry, got \(registries.sorted().joined(separator: ", "))")
        }
    }

    /// `-run-image`, which without `force` must be the metadata's image or one of its mirrors;
    /// else the metadata's image or mirror on the app image's registry (platform.md, Run Image
    /// Resolution).
    func chooseRunImage(named: (image: String, mirrors: [String])?) throws(LifecycleError) -> String {
        if let given = inputs.runImage, !given.isEmpty {
            if !inputs.force {
                guard let named else {
                    throw .rebaseRefused("the app image names no run image, so -run-image \(given) cannot be checked against it; use -force")
                }
                let candidates = [named.image] + named.mirrors
                guard candidates.contains(where: { ImageReference.sameImage($0, given) || Self.pins(given, $0) }) else {
                    throw .rebaseRefused("run image \(given) is not the app image's run image \(named.image) or one of its mirrors (\(named.mirrors.joined(separator: ", "))); use -force to rebase onto another image")
                }
            }
            return given
        }
        guard let named else {
            throw .missingInput(what: "no run image", hint: "the app image names none (runImage.image in \(CNBLabel.lifecycleMetadata)); pass -run-image")
        }
        return RunImageResolution.choose(image: named.image, mirrors: named.mirrors, forApp: inputs.images[0])
    }

    /// Whether `given` is a digest reference into the repository of `named`: one version of the
    /// app image's own run image, pinned (a fix campaign names the version its plan chose so).
    static func pins(_ given: String, _ named: String) -> Bool {
        guard let g = try? ImageReference(parsing: given), g.digest != nil, let n = try? ImageReference(parsing: named) else { return false }
        return g.registry == n.registry && g.repository == n.repository
    }

    /// The app image's config on the new base: layers and history swapped below the app's own,
    /// run image labels and (with force) target data from the new run image, metadata updated.
    func rebasedConfig(app: StoredImage, run: StoredImage, runName: String, named: (image: String, mirrors: [String])?,
                       metadata: LifecycleMetadataLabel, keptFrom: Int) throws(LifecycleError) -> ImageConfig {
        var config = app.config
        let runLabels = run.config.config?.labels ?? [:]
        var labels = config.config?.labels ?? [:]
        // The target data a rebase must keep unless forced: os, architecture, variant, distro (not the target ID).
        var oldTarget = targetData(of: app.config)
        var newTarget = targetData(of: run.config)
        oldTarget.id = nil
        newTarget.id = nil
        if oldTarget != newTarget {
            guard inputs.force else {
                throw .rebaseRefused("run image \(runName) is for \(Self.describe(newTarget)), the app image was built for \(Self.describe(oldTarget)); use -force to rebase anyway")
            }
            log.warn("rebasing from \(Self.describe(oldTarget)) to \(Self.describe(newTarget)) (forced)")
        }
        config.os = run.config.os
        config.architecture = run.config.architecture
        config.variant = run.config.variant
        config.osVersion = run.config.osVersion
        config.osFeatures = run.config.osFeatures

        for key in labels.keys where Self.isBaseLabel(key) { labels[key] = nil }
        for (key, value) in runLabels where Self.isBaseLabel(key) { labels[key] = value }
        var runImage = metadata.runImage ?? .init()
        runImage.topLayer = run.config.rootfs.diffIDs.last?.description
        runImage.reference = inputs.location.uniqueReference(runName, run)
        if inputs.force, let named, !([named.image] + named.mirrors).contains(where: { ImageReference.sameImage($0, runName) }) {
            runImage.image = runName
            runImage.mirrors = nil
        } else if runImage.image == nil {
            runImage.image = runName
        }
        do {
            // Keys this lifecycle does not model (another lifecycle's, older platforms') are kept.
            let raw = Data((labels[CNBLabel.lifecycleMetadata] ?? "{}").utf8)
            if case .table(var table)? = try? JSONDecoder().decode(AnyTOML.self, from: raw) {
                table["runImage"] = try JSONDecoder().decode(AnyTOML.self, from: try CanonicalJSON.encode(runImage))
                labels[CNBLabel.lifecycleMetadata] = try json(AnyTOML.table(table))
            } else {
                var updated = metadata
                updated.runImage = runImage
                labels[CNBLabel.lifecycleMetadata] = try json(updated)
            }
        } catch {
            throw .label(image: "the rebased image", label: CNBLabel.lifecycleMetadata, reason: "cannot be encoded", cause: error)
        }
        config.config?.labels = labels

        config.rootfs.diffIDs = run.config.rootfs.diffIDs + app.config.rootfs.diffIDs[keptFrom...]
        config.history = Self.history(run: run.config, app: app.config, keptLayers: app.config.rootfs.diffIDs.count - keptFrom)
        return config
    }

    /// The new run image's history, then the app image's entries for the layers kept (and the
    /// empty-layer entries among and after them). When the app image's history does not match its
    /// layers, history is left out rather than made wrong.
    static func history(run: ImageConfig, app: ImageConfig, keptLayers: Int) -> [History]? {
        guard let appHistory = app.history, appHistory.filter({ $0.emptyLayer != true }).count == app.rootfs.diffIDs.count else {
            return run.history
        }
        var index = appHistory.count
        var layers = 0
        while index > 0 && layers < keptLayers {
            index -= 1
            if appHistory[index].emptyLayer != true { layers += 1 }
        }
        return (run.history ?? []) + appHistory[index...]
    }

    /// `os/arch[/variant][ distro[ version]]`.
    static func describe(_ t: TargetData) -> String {
        var s = (t.os ?? "?") + "/" + (t.arch ?? "?") + (t.variant.map { "/" + $0 } ?? "")
        if let name = t.distro?.name { s += " " + name + (t.distro?.version.map { " " + $0 } ?? "") }
        return s
    }

    static func isBaseLabel(_ key: String) -> Bool {
        CNBLabel.runImageLabelPrefixes.contains { key.hasPrefix($0) }
    }
}

/// platform.md, Run Image Resolution: of an image and its mirrors, the one on the app image's
/// registry, else the image.
public enum RunImageResolution {
    public static func choose(image: String, mirrors: [String], forApp app: String) -> String {
        let registry = (try? ImageReference(parsing: app))?.registry
        for candidate in [image] + mirrors where (try? ImageReference(parsing: candidate))?.registry == registry {
            return candidate
        }
        return image
    }
}

import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// Which base image the Dockerfiles extend (platform.md, extender `-kind`).
public enum ExtendKind: String, Sendable {
    case build, run
}

/// The result of extending an image.
public struct ExtendedImage: Sendable {
    public var image: StoredImage
    /// The layers the Dockerfiles added, bottom first.
    public var newLayers: [LayerResult]
    /// For a run image: whether every applied run.Dockerfile set `io.buildpacks.rebasable=true`.
    public var rebasable: Bool
}

/// Applies extension Dockerfiles to an image without a daemon or a registry (image_extension.md,
/// Phase: Extension): each Dockerfile in order over the result of the one before, `RUN` in runc
/// over overlay layers of the unpacked base, each changed instruction one deterministic layer
/// (sorted entries, normalized times, owners as in the image, whiteouts from the overlay), config
/// changes applied, one history line per instruction. The new image is written to `store`.
public struct ImageExtender {
    public var store: ImageStore
    /// Work directory for overlay layers; removed when done.
    public var scratch: String
    /// Time and compression of the new layers (owners are kept as they are in the image).
    public var layerOptions: LayerWriteOptions
    public var log: (String) -> Void

    public init(store: ImageStore, scratch: String, layerOptions: LayerWriteOptions, log: @escaping (String) -> Void) {
        self.store = store
        self.scratch = scratch
        self.layerOptions = layerOptions
        self.log = log
    }

    /// Extends `base` (unpacked at `baseRoot`, which is only read) with `dockerfiles`, naming the
    /// result `reference` in the store. For `.run`, the final user must not be root and
    /// `io.buildpacks.rebasable` is set to whether every Dockerfile declared the layers rebasable.
    public func extend(base: StoredImage, baseRoot: String, baseName: String, dockerfiles: [ExtensionDockerfile], kind: ExtendKind,
                       reference: String) throws(ExtendError) -> ExtendedImage {
        let stack = try OverlayStack(base: baseRoot, scratch: scratch)
        defer { stack.remove() }
        let applied = try DockerfileSequence(workspace: stack, store: store, layerOptions: layerOptions, log: log)
            .apply(dockerfiles, config: base.config.config ?? ExecutionConfig(), baseName: baseName, kind: kind)
        do {
            let image = try store.writing { session in
                try session.commitImage(base: base, layers: applied.layers, history: applied.history, created: applied.created,
                                        reference: reference) { c in c.config = applied.config }
            }
            return ExtendedImage(image: image, newLayers: applied.layers, rebasable: applied.rebasable)
        } catch {
            throw .environment("cannot write the extended image: \(error)")
        }
    }
}

/// Dockerfiles applied one after the other over a workspace (image_extension.md, Phase:
/// Extension): `base_image`, a fresh `build_id`, and `user_id`/`group_id` of the image as the
/// previous Dockerfile left it; each layer written to `store` (a workspace that records no layers
/// needs none); one history line per instruction.
/// For a run image the final user must not be root, and `io.buildpacks.rebasable` is true only
/// when every Dockerfile declared it (platform.md, extender).
struct DockerfileSequence {
    let workspace: any ExtendWorkspace
    let store: ImageStore?
    let layerOptions: LayerWriteOptions
    let log: (String) -> Void

    struct Applied {
        var config: ExecutionConfig
        var layers: [LayerResult] = []
        var history: [History] = []
        var rebasable = true
        var created: String
    }

    func apply(_ dockerfiles: [ExtensionDockerfile], config initial: ExecutionConfig, baseName: String,
               kind: ExtendKind) throws(ExtendError) -> Applied {
        let created = layerOptions.mtime == LayerWriteOptions.normalizedTime ? normalizedCreated : rfc3339(layerOptions.mtime)
        var out = Applied(config: initial, created: created)
        for d in dockerfiles {
            log("Applying \(kind.rawValue).Dockerfile of extension \(d.extensionID)")
            let ids = try RootPath.ids(out.config.user, roots: workspace.lookupRoots)
            var args = d.args
            args["base_image"] = baseName
            args["build_id"] = UUID().uuidString.lowercased()
            args["user_id"] = String(ids.uid)
            args["group_id"] = String(ids.gid)
            // Each run.Dockerfile must declare its own layers rebasable.
            out.config.labels?[CNBLabel.rebasable] = nil
            var applier = DockerfileApplier(dockerfile: d, workspace: workspace, config: out.config, buildArgs: args)
            try applier.apply()
            out.config = applier.config
            if out.config.labels?[CNBLabel.rebasable] != "true" { out.rebasable = false }
            for step in applier.steps {
                var h = History(created: created, createdBy: "Layer: '\(step.createdBy)', Created by extension: \(d.extensionID)")
                if let source = step.layer, let store {
                    out.layers.append(try writeLayer(source, into: store, options: layerOptions, what: step.createdBy, log: log))
                } else {
                    h.emptyLayer = true
                }
                out.history.append(h)
            }
        }
        if kind == .run {
            let ids = try RootPath.ids(out.config.user, roots: workspace.lookupRoots)
            guard ids.uid != 0 else {
                throw .environment("the extended run image's user is root (USER \(out.config.user ?? "unset")); a run.Dockerfile must end as a non-root user (USER ${user_id}:${group_id})")
            }
            var labels = out.config.labels ?? [:]
            labels[CNBLabel.rebasable] = out.rebasable ? "true" : "false"
            out.config.labels = labels
        }
        return out
    }
}

/// What an instruction changed as a layer: owners as in the image, times normalized.
func writeLayer(_ source: LayerSource, into store: ImageStore, options: LayerWriteOptions, what: String,
                log: (String) -> Void) throws(ExtendError) -> LayerResult {
    var o = options
    o.owner = { _, uid, gid in (uid, gid) }
    do {
        let result: LayerResult
        let session = try store.beginWriteSession()
        switch source {
        case .overlayUpper(let upper):
            o.overlayUpper = true
            result = try session.writeLayer(directory: upper, options: o)
        case .changes(let root, let changed, let deleted):
            result = try ChangeLayer(root: root, changed: changed, deleted: deleted).write(into: session, options: o)
        }
        log("  \(what): layer \(result.diffID.short) (\(result.entries) entries)")
        return result
    } catch {
        throw .environment("cannot write the layer of \(what): \(error)")
    }
}

extension RootPath {
    /// The numeric ids of a config `User` (root when unset): numbers as they are, names from the
    /// first of `roots` that has an `/etc/passwd`.
    static func ids(_ user: String?, roots: [String]) throws(ExtendError) -> (uid: Int, gid: Int) {
        guard let user, !user.isEmpty else { return (0, 0) }
        let parts = user.split(separator: ":").map { Int($0) }
        if parts.count == 2, let uid = parts[0], let gid = parts[1] { return (uid, gid) }
        let root = roots.first { FileManager.default.fileExists(atPath: $0 + "/etc/passwd") } ?? roots.last ?? "/"
        return try RootPath(root: root).ids(user: user)
    }
}

import Buildpacks
import Foundation
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
        var config = base.config.config ?? ExecutionConfig()
        var history: [History] = []
        var layers: [LayerResult] = []
        var rebasable = true
        let created = layerOptions.mtime == LayerWriteOptions.normalizedTime ? normalizedCreated : rfc3339(layerOptions.mtime)
        for d in dockerfiles {
            log("Applying \(kind.rawValue).Dockerfile of extension \(d.extensionID)")
            let ids = try RootPath(root: baseRoot).idsOrRoot(config.user, stack: stack)
            var args = d.args
            args["base_image"] = baseName
            args["build_id"] = UUID().uuidString.lowercased()
            args["user_id"] = String(ids.uid)
            args["group_id"] = String(ids.gid)
            // Each run.Dockerfile must declare its own layers rebasable.
            config.labels?[CNBLabel.rebasable] = nil
            var applier = DockerfileApplier(dockerfile: d, stack: stack, config: config, buildArgs: args, log: log)
            try applier.apply()
            config = applier.config
            if config.labels?[CNBLabel.rebasable] != "true" { rebasable = false }
            for step in applier.steps {
                let what = "Layer: '\(step.createdBy)', Created by extension: \(d.extensionID)"
                if let upper = step.upper {
                    layers.append(try writeLayer(upper, what: step.createdBy))
                    history.append(History(created: created, createdBy: what))
                } else {
                    var h = History(created: created, createdBy: what)
                    h.emptyLayer = true
                    history.append(h)
                }
            }
        }
        if kind == .run {
            let ids = try RootPath(root: baseRoot).idsOrRoot(config.user, stack: stack)
            guard ids.uid != 0 else {
                throw .environment("the extended run image's user is root (USER \(config.user ?? "unset")); a run.Dockerfile must end as a non-root user (USER ${user_id}:${group_id})")
            }
            var labels = config.labels ?? [:]
            labels[CNBLabel.rebasable] = rebasable ? "true" : "false"
            config.labels = labels
        }
        let final = config
        do {
            let image = try store.commitImage(base: base, layers: layers, history: history, created: created, reference: reference) { c in
                c.config = final
            }
            return ExtendedImage(image: image, newLayers: layers, rebasable: rebasable)
        } catch {
            throw .environment("cannot write the extended image: \(error)")
        }
    }

    /// An overlay upper directory as a layer: owners as in the image, times normalized.
    func writeLayer(_ upper: String, what: String) throws(ExtendError) -> LayerResult {
        var o = layerOptions
        o.overlayUpper = true
        o.owner = { _, uid, gid in (uid, gid) }
        do {
            let result = try store.writeLayer(directory: upper, options: o)
            log("  \(what): layer \(result.diffID.short) (\(result.entries) entries)")
            return result
        } catch {
            throw .environment("cannot write the layer of \(what): \(error)")
        }
    }
}

extension RootPath {
    /// The numeric ids of a config `User` (root when unset), read from the image's files; with
    /// `stack`, from the top of the extended image (a RUN may have added the user).
    func idsOrRoot(_ user: String?, stack: OverlayStack? = nil) throws(ExtendError) -> (uid: Int, gid: Int) {
        guard let user, !user.isEmpty else { return (0, 0) }
        if let (uid, gid) = Self.numeric(user) { return (uid, gid) }
        if let stack {
            for upper in stack.uppers.reversed() where FileManager.default.fileExists(atPath: upper + "/etc/passwd") {
                return try RootPath(root: upper).ids(user: user)
            }
        }
        return try ids(user: user)
    }

    static func numeric(_ user: String) -> (Int, Int)? {
        let parts = user.split(separator: ":").map { Int($0) }
        guard let uid = parts.first ?? nil else { return nil }
        if parts.count == 1 { return nil }
        guard let gid = parts[1] else { return nil }
        return (uid, gid)
    }
}

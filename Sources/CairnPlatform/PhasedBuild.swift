import Buildpacks
import Extend
import Foundation
import Phases
import OCI
import Processes
import Sandbox

#if canImport(Glibc)
import Glibc
#endif

/// `cairn build` with a builder that has image extensions: the lifecycle's phases one by one,
/// each a fresh sandbox over the builder's root sharing only the volumes (as Tekton and kpack run
/// them), with the extension Dockerfiles applied by this platform between them, without a
/// daemon or a registry: build.Dockerfiles to the builder image before `builder` (the build runs
/// in the extended root), run.Dockerfiles to the run image before `exporter` (which bases the app
/// image on `<layers>/extended/run`). Extended images are kept in the store under a key of their
/// inputs, so a rebuild with unchanged extensions runs no RUN again.
extension BuildRunner {
    /// Whether the builder's order has image extensions (`/cnb/order.toml` `[[order-extensions]]`);
    /// an order given with `--buildpack` has none.
    func hasExtensions(_ context: BuildContext) throws -> Bool {
        guard !context.customOrder else { return false }
        let path = context.rootfs + CNBPath.order
        guard FileManager.default.fileExists(atPath: path) else { return false }
        return !(try TOMLFile.read(OrderFile.self, from: path).orderExtensions ?? []).isEmpty
    }

    func buildInPhases(_ context: BuildContext, released: inout Bool) async throws -> StoredImage {
        guard context.api.supports(PlatformFeature.imageExtensions) else {
            throw PlatformError.incompatibleLifecycle(builder: "the builder", reason: "speaks Platform API \(context.api), which has no image extensions (0.10 or newer); the builder has extensions")
        }
        let request = context.request
        let common = ["-log-level", request.quiet ? "warn" : "info"]
        let ids = ["-uid", "\(context.uid)", "-gid", "\(context.gid)"]
        let layout = ["-layout", "-layout-dir", "/layout"]
        let layers = context.work + "/layers"
        log("Builder has image extensions: running the lifecycle phase by phase")
        let previous = request.previousImage.map { ["-previous-image", $0] } ?? []
        lifecycleStarting?()
        try phase("analyzer", ["-layers", "/layers", "-run-image", context.runImage] + previous + layout + ids + common + [request.image], context)
        try phase("detector", ["-app", request.appDirectory, "-layers", "/layers", "-platform", "/platform"] + common, context, asUser: true)
        try phase("restorer", ["-layers", "/layers", "-cache-dir", "/cache"] + layout + ids + common, context)

        let analyzed = try TOMLFile.read(AnalyzedFile.self, from: layers + "/analyzed.toml")
        let group = try TOMLFile.read(GroupFile.self, from: layers + "/group.toml")
        var buildRoot = context.rootfs
        // platform.md: build-image.extend is true exactly when there are build.Dockerfiles. The
        // reference lifecycle (0.21.14) leaves it out of analyzed.toml, so the Dockerfiles decide.
        let buildDockerfiles = try generated(context, group: group, kind: .build)
        if analyzed.buildImage?.extend == true || !buildDockerfiles.isEmpty {
            let extended = try extendImage(context.builder, name: request.builder, buildDockerfiles, kind: .build)
            buildRoot = try RootfsCache(home: home).rootfs(of: extended, in: store, mountPoints: Self.mountPoints, log: log)
        }
        try phase("builder", ["-app", request.appDirectory, "-layers", "/layers", "-platform", "/platform"] + common, context, root: buildRoot, asUser: true)

        let runName = Self.runImageName(analyzed.runImage?.image, context)
        if runName != context.runImage {
            try await fetch(runName)
            try place(runName, in: context.layout, what: "run image \(runName), chosen by an image extension,")
            if geteuid() == 0 { try ChildProcess.tool("/bin/chown", ["-R", "\(context.uid):\(context.gid)", context.layout]) }
        }
        if analyzed.runImage?.extend == true {
            let runImage = try store.resolve(runName)
            let dockerfiles = try generated(context, group: group, kind: .run)
            let extended = try extendImage(runImage, name: runName, dockerfiles, kind: .run)
            try writeExtendedLayout(extended, base: runImage, name: runName, to: layers + "/extended/run",
                                    inSubdirectory: extendedRunInSubdirectory(context))
        }
        try phase("exporter", ["-app", request.appDirectory, "-layers", "/layers", "-cache-dir", "/cache"] + context.exportArguments + layout + ids + common
                  + [request.image], context)
        return try await importAndRelease(context, released: &released)
    }

    /// Runs one phase in a fresh sandbox over `root` (the builder's, or the extended build
    /// image's); as the build user where the spec says so (detector, builder).
    func phase(_ name: String, _ args: [String], _ context: BuildContext, root: String? = nil, asUser: Bool = false) throws {
        var sandbox = context.sandbox(root: root ?? context.rootfs)
        var command = ["/cnb/lifecycle/" + name] + args
        if asUser && geteuid() == 0 {
            // The sandbox starts as root (its mounts need it); Cairn's static lifecycle drops to the user.
            let lifecycle = try LifecycleBinaries.locate().lifecycle
            sandbox.mounts.append(Mount(URL(fileURLWithPath: lifecycle).deletingLastPathComponent().path, at: "/cairn/bin", writable: false))
            command = ["/cairn/bin/" + URL(fileURLWithPath: lifecycle).lastPathComponent, "cairn-run-as", "\(context.uid)", "\(context.gid)"] + command
        }
        try context.runLifecycle(sandbox, command, phase: name)
    }

    /// The Dockerfiles of `kind` the detector generated.
    func generated(_ context: BuildContext, group: GroupFile, kind: ExtendKind) throws -> [ExtensionDockerfile] {
        do {
            return try GeneratedDockerfiles.find(generatedDirectory: context.work + "/layers/generated", group: group, kind: kind,
                                                 appDirectory: context.workspace, platformAPI: context.api)
        } catch {
            throw PlatformError.extensionFailed(kind: kind.rawValue, cause: error)
        }
    }

    /// Whether the lifecycle reads the extended run image from a subdirectory of `<extended>/run`:
    /// the reference's extender writes `run/sha256:<hex>/` and its exporter reads only that;
    /// Cairn's exporter reads either, and Cairn lifecycles in builders made before it read only
    /// `run/` itself. Told by the lifecycle's lifecycle.toml (its version); a lifecycle without
    /// one is taken to be like the reference.
    func extendedRunInSubdirectory(_ context: BuildContext) -> Bool {
        guard let path = LifecycleDescriptor.path(of: context.lifecycleDirectory ?? context.rootfs + "/cnb/lifecycle"),
              let descriptor = try? TOMLFile.read(LifecycleDescriptor.self, from: path) else { return true }
        return descriptor.lifecycle.version != cairnVersion
    }

    /// The run image analyzed.toml names, as a reference. The reference lifecycle (0.21.14)
    /// exporting to a layout names the build's own run image by its path there
    /// (`/layout/index.docker.io/debian/run/latest`, perhaps with `@<digest>`).
    static func runImageName(_ analyzed: String?, _ context: BuildContext) -> String {
        guard let analyzed else { return context.runImage }
        let path = analyzed.split(separator: "@").first.map(String.init) ?? analyzed
        if path.hasPrefix("/layout/"), path == (try? ImageLocation.layoutPath(root: "/layout", reference: context.runImage)) { return context.runImage }
        return analyzed
    }

    /// `base` extended by `dockerfiles`, from the store when the same inputs were applied before.
    func extendImage(_ base: StoredImage, name: String, _ dockerfiles: [ExtensionDockerfile], kind: ExtendKind) throws -> StoredImage {
        let key = GeneratedDockerfiles.cacheKey(base: base.digest, dockerfiles)
        let reference = "cairn-extended/\(kind.rawValue):" + (key.map { String($0.prefix(40)) } ?? "latest")
        if key != nil, let cached = try? store.resolve(reference) {
            log("Reusing the extended \(kind.rawValue) image \(cached.digest.short): same base, Dockerfiles, args and context (no RUN)")
            return cached
        }
        do {
            return try DockerfileRunner(store: store, home: home, log: log)
                .extend(base, name: name, dockerfiles, kind: kind, compression: .gzip, reference: reference)
        } catch let e as PlatformError {
            if case .extensionFailed = e { throw e }
            throw PlatformError.extensionFailed(kind: kind.rawValue, cause: e)
        }
    }

    /// `<extended>/run` as platform.md's extender leaves it: an OCI layout with the extended run
    /// image's manifest, config and new layers (the base layers are the run image's), in a
    /// subdirectory named by its digest when `inSubdirectory`.
    func writeExtendedLayout(_ image: StoredImage, base: StoredImage, name: String, to directory: String, inSubdirectory: Bool) throws {
        try? FileManager.default.removeItem(atPath: directory)
        let layout = inSubdirectory ? directory + "/" + image.digest.description : directory
        try FileManager.default.createDirectory(atPath: layout, withIntermediateDirectories: true)
        let target = try ImageStore(root: layout).beginWriteSession()
        for d in [image.descriptor, image.manifest.config] + image.manifest.layers.dropFirst(base.manifest.layers.count) {
            try copyBlob(d.digest, from: store, to: target)
        }
        try target.setOnlyImage(image.descriptor, as: name)
    }
}

/// `cairn extend`: one Dockerfile of the image extension subset applied to an image in the store,
/// the way builds apply extensions (overlay layers, RUN in runc, deterministic layers).
public struct DockerfileRunner {
    public var store: ImageStore
    public var home: String
    public var log: (String) -> Void

    public init(store: ImageStore, home: String, log: @escaping (String) -> Void) {
        self.store = store
        self.home = home
        self.log = log
    }

    public func apply(base reference: String, dockerfile: String, context: String, args: [String: String], kind: ExtendKind,
                      compression: Compression, tag: String) throws -> StoredImage {
        let base: StoredImage
        do { base = try store.resolve(reference) } catch { throw PlatformError.notInStore(what: "base image", reference: reference, cause: error) }
        guard FileManager.default.fileExists(atPath: dockerfile) else { throw PlatformError.missingFile(what: "Dockerfile", path: dockerfile) }
        guard FS.isDirectory(context) else { throw PlatformError.notADirectory(what: "build context", path: context) }
        let d = ExtensionDockerfile(extensionID: "cairn extend", path: URL(fileURLWithPath: dockerfile).standardizedFileURL.path,
                                    contextDirectory: URL(fileURLWithPath: context).standardizedFileURL.path, args: args)
        return try extend(base, name: reference, [d], kind: kind, compression: compression, reference: tag)
    }

    /// `base` extended by `dockerfiles` over overlay layers of its unpacked root, named `reference`.
    func extend(_ base: StoredImage, name: String, _ dockerfiles: [ExtensionDockerfile], kind: ExtendKind, compression: Compression,
                reference: String) throws -> StoredImage {
        let baseRoot = try RootfsCache(home: home).rootfs(of: base, in: store, log: log)
        var options = try LayerWriteOptions.fromEnvironment(ProcessInfo.processInfo.environment)
        options.compression = compression
        let extender = ImageExtender(store: store, scratch: home + "/extend/" + UUID().uuidString.prefix(8), layerOptions: options, log: log)
        do {
            // A write session from the first layer to the name: prune does not take the new blobs.
            let session = try store.beginWriteSession()
            defer { withExtendedLifetime(session) {} }
            return try extender.extend(base: base, baseRoot: baseRoot, baseName: name, dockerfiles: dockerfiles, kind: kind,
                                       reference: reference).image
        } catch let e as ExtendError {
            throw PlatformError.extensionFailed(kind: kind.rawValue, cause: e)
        }
    }
}

import Buildpacks
import Foundation
import Phases
import OCI
import Processes
import Sandbox
import Trust

#if canImport(Glibc)
import Glibc
#endif

/// `cairn build`: runs the builder's lifecycle (or one given with `--lifecycle`) as `creator`
/// inside a bubblewrap sandbox rooted at the builder's unpacked filesystem, with `/workspace` (a
/// copy of the source), `/layers`, `/platform`, `/cache` (kept per image) and `/layout` mounted,
/// and only platform.md's flags: the run image and the previous image are placed in an OCI
/// layout at their mapped paths, the creator exports there (`-layout`), and the app image is
/// imported into the store. So a builder carrying the reference lifecycle works as Cairn's does.
public struct BuildRunner {
    public var store: ImageStore
    public var home: String
    public var log: (String) -> Void
    /// Brings an image the build needs and only learns of while it runs (a run image an image
    /// extension switches to) into the store, as the platform's pull policy says.
    public var fetch: (String) async throws -> Void = { _ in }
    /// Where the build's work directory goes when the build is done: removed in the background
    /// when set (the caller waits for it before it exits), else before `build` returns.
    public var removals: BackgroundRemovals?
    /// Artifacts made for the app image as it is imported (`cairn build --sign`: its signature
    /// and attestations), once its blobs are in the store and before its name is: the companion
    /// writes their blobs in `session` and returns their names, which go into the same index
    /// update as the image's own name.
    public var companion: ImportCompanion?
    /// Called once, as the lifecycle's first process starts: the platform's own preparation is
    /// done and this process waits for the lifecycle, so a companion's preparation started
    /// here does not compete with the build's (`cairn build --sign` starts its own then).
    public var lifecycleStarting: (@Sendable () -> Void)?
    public typealias ImportCompanion = @Sendable (_ image: StoredImage, _ session: WriteSession) async throws
        -> [(descriptor: Descriptor, reference: String)]

    public init(store: ImageStore, home: String, log: @escaping (String) -> Void) {
        self.store = store
        self.home = home
        self.log = log
    }

    func removeWorkDirectory(_ path: String) {
        if let removals { removals.remove(path) } else { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Mount points every builder root gets.
    static let mountPoints = ["/workspace", "/layers", "/platform", "/cache", "/layout", "/cairn/buildpacks", "/cairn/bin", "/cairn/ca"]

    /// Variables that point TLS clients (OpenSSL, pip, requests, curl, node, git) to a CA bundle.
    static let caVariables = ["SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO"]

    /// What one build works with, prepared once for the creator or the phases.
    struct BuildContext {
        var request: BuildRequest
        var builder: StoredImage
        var rootfs: String
        var lifecycleDirectory: String?
        var api: APIVersion
        var runImage: String
        var work: String
        var cacheDirectory: String
        var uid: Int
        var gid: Int
        var environment: [String: String]
        /// When `--timeout` runs out: set when the lifecycle first starts.
        var deadline: ContinuousClock.Instant?
        /// The app as the build sees it: the image name's kept workspace, or a fresh copy in
        /// `work` (BuildSource.swift, prepareWorkspace).
        var workspace = ""
        /// The kept workspace's lock, held until the build ends.
        var workspaceLock: Int32?
        var layout: String { work + "/layout" }
        var customOrder: Bool { !request.buildpacks.isEmpty || !request.preBuildpacks.isEmpty || !request.postBuildpacks.isEmpty }

        /// A fresh sandbox over `root` with the build's volumes and environment.
        func sandbox(root: String) -> Bubblewrap {
            var sandbox = Bubblewrap(rootfs: root)
            sandbox.mounts = [
                Mount(workspace, at: request.appDirectory), Mount(work + "/layers", at: "/layers"),
                Mount(work + "/platform", at: "/platform", writable: false), Mount(cacheDirectory, at: "/cache"),
                Mount(layout, at: "/layout"), Mount(work + "/buildpacks", at: "/cairn/buildpacks", writable: false),
                Mount(work + "/ca", at: "/cairn/ca", writable: false),
            ]
            if let lifecycleDirectory { sandbox.mounts.append(Mount(lifecycleDirectory, at: "/cnb/lifecycle", writable: false)) }
            sandbox.mounts += request.volumes
            sandbox.environment = environment
            sandbox.workingDirectory = request.appDirectory
            sandbox.network = request.network
            sandbox.maxProcesses = request.maxProcesses
            if geteuid() != 0 { sandbox.mapUser = (uid, gid) }
            return sandbox
        }

        /// Runs `command` (the creator, or one phase) in `sandbox` within what is left of
        /// `--timeout`: when it runs out the sandbox is killed, its whole PID namespace with it.
        /// - Throws: `PlatformError.timedOut`, or `.lifecycleFailed` for a non-zero exit.
        func runLifecycle(_ sandbox: Bubblewrap, _ command: [String], phase: String?) throws {
            var remaining: Duration?
            if let deadline { remaining = max(deadline - .now, .milliseconds(1)) }
            let result = try sandbox.run(command, timeout: remaining)
            if result.timedOut, let timeout = request.timeout {
                throw PlatformError.timedOut(what: phase.map { "the \($0) phase" } ?? "the build", option: "--timeout \(timeout.text)")
            }
            guard result.status == 0 else { throw PlatformError.lifecycleFailed(phase: phase, status: result.status) }
        }
    }

    /// Runs the build; returns the image on success. A builder with image extensions is driven
    /// phase by phase (the creator does not extend images); others through its creator.
    public func build(_ request: BuildRequest) async throws -> StoredImage {
        var context = try Trace.step("build: prepare") { try prepare(request) }
        context.deadline = request.timeout.map { .now + $0.limit }
        var released = false  // importing removes the work directory itself
        defer {
            if !released { removeWorkDirectory(context.work) }
            if let lock = context.workspaceLock { close(lock) }
        }
        if try hasExtensions(context) { return try await buildInPhases(context, released: &released) }
        var creatorArgs = ["/cnb/lifecycle/creator", "-layout", "-layout-dir", "/layout", "-app", request.appDirectory, "-layers", "/layers",
                           "-platform", "/platform", "-cache-dir", "/cache", "-log-level", request.quiet ? "warn" : "info",
                           "-run-image", context.runImage]
        if context.customOrder { creatorArgs += ["-buildpacks", "/cairn/buildpacks", "-order", "/cairn/buildpacks/order.toml"] }
        creatorArgs += context.exportArguments + (request.previousImage.map { ["-previous-image", $0] } ?? [])
        creatorArgs.append(request.image)
        lifecycleStarting?()
        try Trace.step("build: creator") { try context.runLifecycle(context.sandbox(root: context.rootfs), creatorArgs, phase: nil) }
        return try await importAndRelease(context, released: &released)
    }

    /// After the lifecycle: its SBOM files are copied or read, the layout is moved out of the
    /// work directory, and the rest of it goes (in the background when it can: the build's
    /// workspace copy and layers, the largest part of a warm build's cleanup) while the image is
    /// imported and signed; then the layout goes. `released`: set once the work directory is
    /// handed to removal.
    func importAndRelease(_ context: BuildContext, released: inout Bool) async throws -> StoredImage {
        try copySBOMs(context)
        let buildSBOM = try BuildTimeSBOM.files(layers: context.work + "/layers")
        let layout = context.work + ".layout"
        guard rename(context.layout, layout) == 0 else {
            throw PlatformError.io(operation: "move", path: context.layout, reason: String(cString: strerror(errno)))
        }
        removeWorkDirectory(context.work)
        released = true
        return try await Trace.step("build: import") { try await importExported(context.request.image, layout: layout, buildSBOM: buildSBOM) }
    }

    /// Checks the request, unpacks the builder, makes the work directories (workspace with a copy
    /// of the source, layers, platform env, layout with the run and previous images, cache).
    func prepare(_ request: BuildRequest) throws -> BuildContext {
        try checkSource(request)
        do { _ = try ImageStore.storedName(request.image) } catch { throw PlatformError.invalidArgument("image name \"\(request.image)\"", reason: "not a valid image name", cause: error) }
        _ = try Bubblewrap.locate()
        let builder: StoredImage
        do { builder = try store.resolve(request.builder) } catch {
            throw PlatformError.notInStore(what: "builder", reference: request.builder, hint: "create it with `cairn builder create` or pull it", cause: error)
        }
        guard builder.config.config?.labels?[CNBLabel.builderMetadata] != nil else {
            throw PlatformError.invalidLabel(image: request.builder, label: CNBLabel.builderMetadata, reason: "is missing: not a builder image")
        }
        let env = builder.config.config?.env ?? []
        func envValue(_ name: String) -> String? { env.first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) } }
        guard let uid = request.uid ?? envValue(CNBEnv.userID).flatMap(Int.init), let gid = request.gid ?? envValue(CNBEnv.groupID).flatMap(Int.init) else {
            throw PlatformError.image(reference: "builder \(request.builder)", reason: "does not set \(CNBEnv.userID) and \(CNBEnv.groupID) in its config")
        }
        let rootfs = try RootfsCache(home: home).rootfs(of: builder, in: store, mountPoints: Self.mountPoints, log: log)
        try checkMountTargets(request, rootfs: rootfs)
        let lifecycleDir = try request.lifecycle.map { try lifecycleDirectory($0) }
        let api = try platformAPI(lifecycleDirectory: lifecycleDir ?? rootfs + "/cnb/lifecycle", builder: request.builder)
        let runImage = try request.runImage ?? builderRunImage(rootfs: rootfs, builder: request.builder)
        var environment = EnvEntry.dictionary(env)
        environment[CNBEnv.platformAPI] = api.description
        // Export to an OCI layout is experimental in platform.md; this platform opts in.
        environment[CNBEnv.experimentalMode] = "silent"
        for name in ["SOURCE_DATE_EPOCH", "CAIRN_COMPRESSION_LEVEL", "CAIRN_LARGE_FILE_LAYER_MB", "CAIRN_TRACE"] {
            if let value = ProcessInfo.processInfo.environment[name] { environment[name] = value }
        }
        if let level = request.compressionLevel { environment["CAIRN_COMPRESSION_LEVEL"] = String(level) }
        if let time = request.creationTime { environment["SOURCE_DATE_EPOCH"] = String(time) }
        environment[CNBEnv.userID] = String(uid)
        environment[CNBEnv.groupID] = String(gid)
        let cacheDir = home + "/cache/" + HomePrune.cacheName(request.image)
        let context = BuildContext(request: request, builder: builder, rootfs: rootfs, lifecycleDirectory: lifecycleDir, api: api,
                                   runImage: runImage, work: home + "/builds/" + UUID().uuidString, cacheDirectory: cacheDir,
                                   uid: uid, gid: gid, environment: environment)
        var prepared = context
        do {
            try makeWorkDirectories(&prepared)
        } catch {
            try? FileManager.default.removeItem(atPath: context.work)
            if let lock = prepared.workspaceLock { close(lock) }
            throw error
        }
        return prepared
    }

    func makeWorkDirectories(_ context: inout BuildContext) throws {
        let fm = FileManager.default
        let request = context.request
        try fm.createDirectory(atPath: home + "/builds", withIntermediateDirectories: true)
        FS.spreadSubdirectories(home + "/builds")
        for d in ["layers", "platform/env", "buildpacks", "layout", "ca"] {
            try fm.createDirectory(atPath: context.work + "/" + d, withIntermediateDirectories: true)
        }
        if request.clearCache { try? fm.removeItem(atPath: context.cacheDirectory) }
        try fm.createDirectory(atPath: context.cacheDirectory, withIntermediateDirectories: true)
        try Trace.step("build: workspace") { try prepareWorkspace(&context) }
        for kv in request.env {
            guard let (name, value) = EnvEntry.split(kv) else { throw PlatformError.invalidArgument("--env \(kv)", reason: "expected NAME=VALUE") }
            try value.write(toFile: context.work + "/platform/env/" + name, atomically: true, encoding: .utf8)
        }
        if let bundle = request.caCertificates {
            try fm.copyItem(atPath: bundle, toPath: context.work + "/ca/ca-certificates.crt")
            for name in Self.caVariables {
                try "/cairn/ca/ca-certificates.crt".write(toFile: context.work + "/platform/env/" + name, atomically: true, encoding: .utf8)
            }
        }
        // The images the lifecycle reads, at their mapped paths in the layout (hard links).
        try place(context.runImage, in: context.layout, what: "run image")
        if let previous = request.previousImage {
            try place(previous, in: context.layout, what: "previous image (--previous-image)")
        } else if (try? store.resolve(request.image)) != nil {
            try place(request.image, in: context.layout, what: "previous image")
        }
        if context.customOrder { try prepareBuildpacks(request, rootfs: context.rootfs, work: context.work) }
        if geteuid() == 0 {
            // The CNB user owns what buildpacks write; the lifecycle runs as root and drops to it.
            for d in [context.work + "/layers", context.layout, context.cacheDirectory] {
                try ChildProcess.tool("/bin/chown", ["-R", "\(context.uid):\(context.gid)", d])
            }
        }
    }

    /// Puts `reference` from the store into `layout` at the path platform.md maps it to.
    func place(_ reference: String, in layout: String, what: String) throws {
        let image: StoredImage
        do { image = try store.resolve(reference) } catch {
            throw PlatformError.notInStore(what: what, reference: reference, hint: "pull it first (`cairn pull \(reference)`)")
        }
        let target = try ImageStore(root: try ImageLocation.layoutPath(root: layout, reference: reference)).beginWriteSession()
        try copyImage(image, from: store, to: target)
        try target.setOnlyImage(image.descriptor, as: reference)
    }

    /// Brings the image the exporter wrote to `layout` (moved out of the work directory) into
    /// the store under `reference`, with its build-time SBOM and the companion's artifacts beside
    /// it, all their names in one index update. The layout goes as soon as the image's blobs
    /// are linked into the store, while the companion works.
    func importExported(_ reference: String, layout: String, buildSBOM: [(path: String, data: Data)]) async throws -> StoredImage {
        var layoutRemoved = false
        defer { if !layoutRemoved { removeWorkDirectory(layout) } }
        // Where the lifecycle wrote it (Docker Hub names: index.docker.io as the reference
        // does, or docker.io as Cairn's lifecycle did before).
        let path = try ImageLocation.existingLayoutPath(root: layout, reference: reference)
            ?? ImageLocation.layoutPath(root: layout, reference: reference)
        let exported = try ImageStore(root: path)
        guard let descriptor = try exported.index().manifests.first else {
            throw PlatformError.lifecycleOutputMissing(path: path)
        }
        let image = try exported.load(descriptor, name: reference)
        // A write session from the first blob to the name: prune does not run in between.
        let session = try store.beginWriteSession()
        try copyImage(image, from: exported, to: session)
        removeWorkDirectory(layout)
        layoutRemoved = true
        let kept = try buildSBOMNames(buildSBOM, image, reference: reference, session)
        let made = try await companion?(image, session) ?? []
        // One index update; the store cairn opens retires the old image's artifact names with it.
        try session.tag([(image.descriptor, reference)] + kept.names + made)
        if kept.files > 0 { log("Kept \(kept.files) build-time SBOM file(s) beside the image (\(BuildSBOM.tag(for: image.digest)))") }
        return try store.resolve(reference)
    }

    /// `--lifecycle DIR|REF`: a `/cnb/lifecycle`-style directory, or an image (in the store) laid
    /// out like buildpacksio/lifecycle, whose `/cnb/lifecycle` is used.
    func lifecycleDirectory(_ spec: String) throws -> String {
        if FS.isDirectory(spec) {
            guard FileManager.default.fileExists(atPath: spec + "/creator") else {
                throw PlatformError.invalidArgument("--lifecycle \(spec)", reason: "no creator in this directory (expected a /cnb/lifecycle-style directory)")
            }
            return URL(fileURLWithPath: spec).standardizedFileURL.path
        }
        let image: StoredImage
        do { image = try store.resolve(spec) } catch {
            throw PlatformError.invalidArgument("--lifecycle \(spec)", reason: "neither a directory nor an image in the store", cause: error)
        }
        let root = try RootfsCache(home: home).rootfs(of: image, in: store, log: log)
        guard FileManager.default.fileExists(atPath: root + "/cnb/lifecycle/creator") else {
            throw PlatformError.invalidArgument("--lifecycle \(spec)", reason: "the image has no /cnb/lifecycle/creator")
        }
        return root + "/cnb/lifecycle"
    }

    /// The highest Platform API both this platform and the lifecycle support (its lifecycle.toml).
    func platformAPI(lifecycleDirectory dir: String, builder: String) throws -> APIVersion {
        guard FileManager.default.fileExists(atPath: dir + "/lifecycle.toml") else {
            log("No lifecycle.toml in the lifecycle of \(builder); assuming Platform API \(SupportedAPIs.defaultPlatform)")
            return SupportedAPIs.defaultPlatform
        }
        let descriptor: LifecycleDescriptor
        do { descriptor = try TOMLFile.read(LifecycleDescriptor.self, from: dir + "/lifecycle.toml") } catch {
            throw PlatformError.incompatibleLifecycle(builder: builder, reason: "its lifecycle.toml cannot be read: \(error)")
        }
        let common = descriptor.apis.platform.supported.filter { SupportedAPIs.isSupported(platform: $0) }
        guard let best = common.max(), best.supports(PlatformFeature.layoutExport) else {
            throw PlatformError.incompatibleLifecycle(builder: builder, reason: """
                supports Platform API \(SupportedAPIs.list(descriptor.apis.platform.supported)); \
                cairn build needs one of \(SupportedAPIs.list(SupportedAPIs.platform.filter { $0.supports(PlatformFeature.layoutExport) })) \
                (export to an OCI layout); use a newer builder or --lifecycle
                """)
        }
        return best
    }

    /// The builder's run image: the first of its run.toml (else stack.toml, older builders).
    func builderRunImage(rootfs: String, builder: String) throws -> String {
        func read<T: Decodable>(_ type: T.Type, _ path: String) throws -> T? {
            guard FileManager.default.fileExists(atPath: rootfs + path) else { return nil }
            do { return try TOMLFile.read(type, from: rootfs + path) } catch {
                throw PlatformError.image(reference: "builder \(builder)", reason: "its \(path) cannot be read: \(error)")
            }
        }
        if let run = try read(RunFile.self, CNBPath.run), let first = run.images.first { return first.image }
        if let stack = try read(StackFile.self, CNBPath.stack), let image = stack.runImage?.image { return image }
        throw PlatformError.image(reference: "builder \(builder)", reason: "names no run image (no \(CNBPath.run) or \(CNBPath.stack)); pass --run-image")
    }
}

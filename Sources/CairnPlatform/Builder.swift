import Buildpacks
import Foundation
import OCI
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// The static `lifecycle` and `launcher` executables this Cairn puts into builders and app
/// images. Found in `$CAIRN_LIFECYCLE_BIN`, else in `static-bin/` beside the build directory of
/// the running `cairn` (`.build/static-bin`, written by `scripts/build-static`).
public struct LifecycleBinaries: Sendable {
    public var lifecycle: String
    public var launcher: String

    public static func locate(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> LifecycleBinaries {
        var candidates: [String] = []
        if let dir = environment["CAIRN_LIFECYCLE_BIN"], !dir.isEmpty { candidates.append(dir) }
        // .build/debug/cairn (a link to .build/<triple>/debug) → .build/static-bin
        let invoked = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let resolved = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        candidates.append(invoked.deletingLastPathComponent().appendingPathComponent("static-bin").path)
        candidates.append(resolved.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("static-bin").path)
        // An installed cairn: PREFIX/bin/cairn → PREFIX/lib/cairn (README, Install).
        candidates.append(resolved.deletingLastPathComponent().appendingPathComponent("lib/cairn").path)
        for dir in candidates {
            let l = dir + "/lifecycle"
            let r = dir + "/launcher"
            if access(l, X_OK) == 0 && access(r, X_OK) == 0 { return LifecycleBinaries(lifecycle: l, launcher: r) }
        }
        throw PlatformError.lifecycleBinariesMissing(searched: candidates)
    }

    /// This lifecycle as an image laid out like buildpacksio/lifecycle: one layer holding
    /// `/cnb/lifecycle` (phases, launcher, lifecycle.toml), `io.buildpacks.lifecycle.version` and
    /// `io.buildpacks.lifecycle.apis` labels, the phases' user root as in the reference image.
    public func image(in store: ImageStore, reference: String) throws -> StoredImage {
        let scratch = FileManager.default.temporaryDirectory.path + "/cairn-lifecycle-image-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try install(into: scratch + "/cnb/lifecycle")
        var options = try LayerWriteOptions.fromEnvironment(ProcessInfo.processInfo.environment)
        options.uid = 0
        options.gid = 0
        let created = options.mtime == LayerWriteOptions.normalizedTime ? normalizedCreated : rfc3339(options.mtime)
        let session = try store.beginWriteSession()
        let layer = try session.writeLayer(directory: scratch, options: options)
        let labels = [
            CNBLabel.lifecycleVersion: cairnVersion,
            CNBLabel.lifecycleAPIs: try jsonLabel(Self.descriptor.apis),
        ]
        return try session.commitImage(base: nil, layers: [layer],
                                     history: [History(created: created, createdBy: "cairn lifecycle image: lifecycle \(cairnVersion)")],
                                     created: created, reference: reference) { c in
            c.config = ExecutionConfig(user: "root", env: ["PATH=/cnb/lifecycle"], workingDir: "/layers", labels: labels)
        }
    }

    /// lifecycle.toml of this Cairn's lifecycle.
    public static let descriptor = LifecycleDescriptor(
        apis: .init(buildpack: .init(deprecated: SupportedAPIs.deprecatedBuildpack, supported: SupportedAPIs.buildpack),
                    platform: .init(deprecated: SupportedAPIs.deprecatedPlatform, supported: SupportedAPIs.platform)),
        lifecycle: .init(version: cairnVersion))

    /// The phase links of a `/cnb/lifecycle` directory.
    public static let phases = LifecyclePhase.allCases.map(\.rawValue)

    /// Writes a `/cnb/lifecycle`-style directory: the lifecycle, the launcher, one link per
    /// phase and lifecycle.toml with the supported API versions.
    public func install(into dir: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (source, name) in [(lifecycle, "lifecycle"), (launcher, "launcher")] {
            try? fm.removeItem(atPath: dir + "/" + name)
            try fm.copyItem(atPath: source, toPath: dir + "/" + name)
            chmod(dir + "/" + name, 0o755)
        }
        for phase in Self.phases {
            try? fm.removeItem(atPath: dir + "/" + phase)
            try fm.createSymbolicLink(atPath: dir + "/" + phase, withDestinationPath: "lifecycle")
        }
        try TOMLFile.write(Self.descriptor, to: dir + "/lifecycle.toml")
    }
}

/// pack's builder.toml (the parts Cairn reads).
public struct BuilderConfig: Decodable, Sendable {
    public var description: String?
    public var buildpacks: [ModuleEntry]
    public var extensions: [ModuleEntry]
    public var stack: Stack?
    public var build: Build?
    public var run: Run?

    public struct ModuleEntry: Decodable, Sendable {
        public var id: String?
        public var version: String?
        public var uri: String?
    }
    public struct Stack: Decodable, Sendable {
        public var id: String?
        public var buildImage: String?
        public var runImage: String?
        public var runImageMirrors: [String]?
        enum CodingKeys: String, CodingKey {
            case id
            case buildImage = "build-image"
            case runImage = "run-image"
            case runImageMirrors = "run-image-mirrors"
        }
    }
    public struct Build: Decodable, Sendable {
        public var image: String?
        public var env: [EnvEntry]?
    }
    public struct EnvEntry: Decodable, Sendable {
        public var name: String
        public var value: String
        public var suffix: String?
    }
    public struct Run: Decodable, Sendable {
        public var images: [RunFile.Image]?
    }

    enum CodingKeys: String, CodingKey { case description, buildpacks, extensions, stack, build, run }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        buildpacks = try c.decodeIfPresent([ModuleEntry].self, forKey: .buildpacks) ?? []
        extensions = try c.decodeIfPresent([ModuleEntry].self, forKey: .extensions) ?? []
        stack = try c.decodeIfPresent(Stack.self, forKey: .stack)
        build = try c.decodeIfPresent(Build.self, forKey: .build)
        run = try c.decodeIfPresent(Run.self, forKey: .run)
    }

    public var buildImage: String? { build?.image ?? stack?.buildImage }
    public var runImages: [RunFile.Image] {
        if let images = run?.images, !images.isEmpty { return images }
        if let r = stack?.runImage { return [RunFile.Image(image: r, mirrors: stack?.runImageMirrors)] }
        return []
    }
}

/// `cairn builder create`: build image + buildpacks + extensions + order + run.toml + this
/// Cairn's lifecycle, with the labels pack writes.
public struct BuilderCreator {
    public var store: ImageStore
    public var binaries: LifecycleBinaries
    public var log: (String) -> Void
    /// `--lifecycle DIR`: another lifecycle for `/cnb/lifecycle` (the reference's `lifecycle/`
    /// directory of a release tarball, whose lifecycle.toml may sit beside it) instead of Cairn's.
    public var lifecycleDirectory: String?

    public init(store: ImageStore, binaries: LifecycleBinaries, log: @escaping (String) -> Void) {
        self.store = store
        self.binaries = binaries
        self.log = log
    }

    @discardableResult
    public func create(name: String, configPath: String) throws -> StoredImage {
        guard FileManager.default.fileExists(atPath: configPath) else { throw PlatformError.missingFile(what: "builder config", path: configPath) }
        let config = try TOMLFile.read(BuilderConfig.self, from: configPath)
        let order = try TOMLFile.read(OrderFile.self, from: configPath)
        guard let buildImageRef = config.buildImage else {
            throw PlatformError.invalidFile(path: configPath, reason: "no build image ([build] image = \"…\" or [stack] build-image)")
        }
        guard !config.runImages.isEmpty else {
            throw PlatformError.invalidFile(path: configPath, reason: "no run image ([[run.images]] image = \"…\" or [stack] run-image)")
        }
        let buildImage: StoredImage
        do { buildImage = try store.resolve(buildImageRef) } catch {
            throw PlatformError.inFile(path: configPath, .notInStore(what: "build image", reference: buildImageRef, hint: "create it with `cairn stack create` or `cairn pull`", cause: error))
        }

        var options = try LayerWriteOptions.fromEnvironment(ProcessInfo.processInfo.environment)
        options.uid = 0
        options.gid = 0
        let created = options.mtime == LayerWriteOptions.normalizedTime ? normalizedCreated : rfc3339(options.mtime)
        let scratch = FileManager.default.temporaryDirectory.path + "/cairn-builder-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        let modules = try assemble(config, configPath: configPath, scratch: scratch)
        try check(order, against: modules, configPath: configPath)
        var layers: [LayerResult] = []
        var history: [History] = []
        for m in modules.buildpacks + modules.extensions {
            layers.append(m.layer)
            history.append(History(created: created, createdBy: "cairn builder create: \(m.id)@\(m.version)"))
        }
        let lifecycle = try installLifecycle(into: scratch + "/lifecycle/cnb/lifecycle")
        let session = try store.beginWriteSession()
        layers.append(try session.writeLayer(directory: scratch + "/lifecycle", options: options))
        history.append(History(created: created, createdBy: "cairn builder create: lifecycle \(lifecycle.lifecycle.version)"))
        try writeConfigFiles(config, order: order, into: scratch + "/config/cnb")
        layers.append(try session.writeLayer(directory: scratch + "/config", options: options))
        history.append(History(created: created, createdBy: "cairn builder create: order.toml, run.toml, build config"))

        let labels = try Self.labels(config, order: order, modules: modules, lifecycle: lifecycle)
        return try session.commitImage(base: buildImage, layers: layers, history: history, created: created, reference: name) { c in
            var exec = c.config ?? ExecutionConfig()
            exec.labels = (exec.labels ?? [:]).merging(labels) { _, new in new }
            c.config = exec
        }
    }

    /// Writes `/cnb/lifecycle`: Cairn's, or the `--lifecycle` directory's files (its
    /// lifecycle.toml, or the one beside it, included); returns its descriptor.
    func installLifecycle(into dir: String) throws -> LifecycleDescriptor {
        guard let source = lifecycleDirectory else {
            try binaries.install(into: dir)
            return LifecycleBinaries.descriptor
        }
        let descriptorPath = LifecycleDescriptor.path(of: source)
        guard FS.isDirectory(source), FileManager.default.isExecutableFile(atPath: source + "/lifecycle"),
              FileManager.default.isExecutableFile(atPath: source + "/launcher"), let descriptorPath else {
            throw PlatformError.invalidArgument("--lifecycle \(source)",
                reason: "expected a lifecycle directory: executable lifecycle and launcher, and lifecycle.toml in it or beside it", cause: nil)
        }
        let descriptor: LifecycleDescriptor
        do { descriptor = try TOMLFile.read(LifecycleDescriptor.self, from: descriptorPath) } catch {
            throw PlatformError.invalidFile(path: descriptorPath, reason: "not a lifecycle descriptor: \(error)")
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try ChildProcess.tool("/bin/cp", ["-a", source + "/.", dir])
        if !FileManager.default.fileExists(atPath: dir + "/lifecycle.toml") {
            try FileManager.default.copyItem(atPath: descriptorPath, toPath: dir + "/lifecycle.toml")
        }
        log("Lifecycle \(descriptor.lifecycle.version) from \(source)")
        return descriptor
    }

    /// The builder's buildpacks and extensions, each once (by id and version).
    struct Modules {
        var buildpacks: [ModuleLayer] = []
        var extensions: [ModuleLayer] = []
    }

    /// Buildpacks and extensions from directories or buildpackages (an image, docker://, a .cnb
    /// file), checked against the ids and versions the entries state.
    func assemble(_ config: BuilderConfig, configPath: String, scratch: String) throws -> Modules {
        let base = URL(fileURLWithPath: configPath).deletingLastPathComponent().path
        let assembler = ModuleAssembler(store: store, log: log, scratch: scratch)
        var modules = Modules()
        for (entries, isExtension) in [(config.buildpacks, false), (config.extensions, true)] {
            for entry in entries {
                guard let uri = entry.uri else {
                    throw PlatformError.invalidFile(path: configPath, reason: "a [[\(isExtension ? "extensions" : "buildpacks")]] entry (\(entry.id ?? "?")) has no uri")
                }
                let found: [ModuleLayer]
                do { found = try assembler.module(uri, base: base, isExtension: isExtension) } catch let e as PlatformError {
                    throw PlatformError.inFile(path: configPath, e)
                }
                if !Buildpackage.isPackageReference(uri), let m = found.first {
                    if let id = entry.id, id != m.id { throw PlatformError.invalidFile(path: configPath, reason: "entry says id \(id) but \(uri) holds \(m.id)") }
                    if let v = entry.version, v != m.version {
                        throw PlatformError.invalidFile(path: configPath, reason: "entry says \(m.id) version \(v) but \(uri) holds \(m.version)")
                    }
                }
                for m in found {
                    let list = isExtension ? modules.extensions : modules.buildpacks
                    guard !list.contains(where: { $0.id == m.id && $0.version == m.version }) else { continue }
                    if isExtension { modules.extensions.append(m) } else { modules.buildpacks.append(m) }
                }
            }
        }
        return modules
    }

    /// Every group entry must be something the builder contains.
    func check(_ order: OrderFile, against modules: Modules, configPath: String) throws {
        for (groups, list) in [(order.order, modules.buildpacks), (order.orderExtensions ?? [], modules.extensions)] {
            for group in groups {
                for ref in group.group where !list.contains(where: { $0.id == ref.id.description && (ref.version == nil || ref.version == $0.version) }) {
                    throw PlatformError.invalidFile(path: configPath, reason: "order names \(ref.id)\(ref.version.map { "@" + $0 } ?? ""), which is not among [[buildpacks]]/[[extensions]]")
                }
            }
        }
    }

    /// `/cnb/order.toml`, `/cnb/run.toml`, `/cnb/stack.toml` (for lifecycles driven at Platform
    /// API < 0.12, which read it; pack writes both) and `/cnb/build-config/env/`.
    func writeConfigFiles(_ config: BuilderConfig, order: OrderFile, into cfg: String) throws {
        try FileManager.default.createDirectory(atPath: cfg + "/build-config/env", withIntermediateDirectories: true)
        try TOMLFile.write(order, to: cfg + "/order.toml")
        try TOMLFile.write(RunFile(images: config.runImages), to: cfg + "/run.toml")
        try TOMLFile.write(StackFile(runImage: config.runImages[0]), to: cfg + "/stack.toml")
        for e in config.build?.env ?? [] {
            let file = e.name + (e.suffix.map { "." + $0 } ?? "")
            try e.value.write(toFile: cfg + "/build-config/env/" + file, atomically: true, encoding: .utf8)
        }
    }

    /// Every label pack writes: platforms decide from the extension labels whether to run the
    /// extender, so they are present (`{}`, `[]`) when there are no extensions.
    static func labels(_ config: BuilderConfig, order: OrderFile, modules: Modules,
                       lifecycle: LifecycleDescriptor = LifecycleBinaries.descriptor) throws -> [String: String] {
        let runImages = config.runImages.map { BuilderMetadataLabel.RunImage(image: $0.image, mirrors: $0.mirrors ?? []) }
        let metadata = BuilderMetadataLabel(
            description: config.description ?? "",
            buildpacks: modules.buildpacks.map { .init(id: $0.id, version: $0.version, homepage: $0.info.homepage) },
            extensions: modules.extensions.map { .init(id: $0.id, version: $0.version) },
            stack: .init(runImage: runImages[0]), images: runImages,
            lifecycle: .init(version: lifecycle.lifecycle.version, apis: lifecycle.apis),
            createdBy: .init(name: "Cairn", version: cairnVersion))
        var layerLabel: ModuleLayersLabel = [:]
        var extensionLayerLabel: ModuleLayersLabel = [:]
        for m in modules.buildpacks { layerLabel[m.id, default: [:]][m.version] = m.info }
        for m in modules.extensions { extensionLayerLabel[m.id, default: [:]][m.version] = m.info }
        return [
            CNBLabel.builderMetadata: try jsonLabel(metadata),
            CNBLabel.buildpackLayers: try jsonLabel(layerLabel),
            CNBLabel.buildpackOrder: try jsonLabel(order.order.map(OrderLabelGroup.init)),
            CNBLabel.extensionLayers: try jsonLabel(extensionLayerLabel),
            CNBLabel.orderExtensions: try jsonLabel((order.orderExtensions ?? []).map(OrderLabelGroup.init)),
        ]
    }

    /// A builder's run image from its `io.buildpacks.builder.metadata` label, as pack writes it
    /// (`images`, else the older `stack.runImage`).
    public static func runImage(of builder: StoredImage) throws -> String? {
        guard let raw = builder.config.config?.labels?[CNBLabel.builderMetadata] else { return nil }
        guard let m = try? JSONDecoder().decode(BuilderMetadataLabel.self, from: Data(raw.utf8)) else {
            throw PlatformError.invalidLabel(image: "builder \(builder.name ?? builder.digest.description)", label: CNBLabel.builderMetadata, reason: "is not valid JSON")
        }
        return m.runImage
    }
}

extension LifecycleDescriptor {
    /// A lifecycle directory's lifecycle.toml: in it, or beside it (as the reference's release
    /// tarball has it); nil when neither exists.
    static func path(of directory: String) -> String? {
        [directory + "/lifecycle.toml", directory + "/../lifecycle.toml"].first { FileManager.default.fileExists(atPath: $0) }
    }
}

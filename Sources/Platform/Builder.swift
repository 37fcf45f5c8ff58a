import Buildpacks
import Foundation
import OCI

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
        for dir in candidates {
            let l = dir + "/lifecycle"
            let r = dir + "/launcher"
            if access(l, X_OK) == 0 && access(r, X_OK) == 0 { return LifecycleBinaries(lifecycle: l, launcher: r) }
        }
        throw PlatformError("no static lifecycle/launcher found (looked in \(candidates.joined(separator: ", "))); run scripts/build-static or set CAIRN_LIFECYCLE_BIN")
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
        let layer = try store.writeLayer(directory: scratch, options: options)
        let labels = [
            CNBLabel.lifecycleVersion: cairnLifecycleVersion,
            CNBLabel.lifecycleAPIs: try jsonLabel(Self.descriptor.apis),
        ]
        return try store.commitImage(base: nil, layers: [layer],
                                     history: [History(created: created, createdBy: "cairn lifecycle image: lifecycle \(cairnLifecycleVersion)")],
                                     created: created, reference: reference) { c in
            c.config = ExecutionConfig(user: "root", env: ["PATH=/cnb/lifecycle"], workingDir: "/layers", labels: labels)
        }
    }

    /// lifecycle.toml of this Cairn's lifecycle.
    public static let descriptor = LifecycleDescriptor(
        apis: .init(buildpack: .init(deprecated: SupportedAPIs.deprecatedBuildpack, supported: SupportedAPIs.buildpack),
                    platform: .init(deprecated: SupportedAPIs.deprecatedPlatform, supported: SupportedAPIs.platform)),
        lifecycle: .init(version: cairnLifecycleVersion))

    /// The phase links of a `/cnb/lifecycle` directory.
    public static let phases = ["analyzer", "detector", "restorer", "builder", "exporter", "creator", "rebaser"]

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

public let cairnLifecycleVersion = "0.1.0"

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

    public init(store: ImageStore, binaries: LifecycleBinaries, log: @escaping (String) -> Void) {
        self.store = store
        self.binaries = binaries
        self.log = log
    }

    @discardableResult
    public func create(name: String, configPath: String) throws -> StoredImage {
        guard FileManager.default.fileExists(atPath: configPath) else { throw PlatformError("builder config \(configPath) does not exist") }
        let config = try TOMLFile.read(BuilderConfig.self, from: configPath)
        let order = try TOMLFile.read(OrderFile.self, from: configPath)
        let base = URL(fileURLWithPath: configPath).deletingLastPathComponent().path
        guard let buildImageRef = config.buildImage else {
            throw PlatformError("\(configPath): no build image ([build] image = \"…\" or [stack] build-image)")
        }
        guard !config.runImages.isEmpty else {
            throw PlatformError("\(configPath): no run image ([[run.images]] image = \"…\" or [stack] run-image)")
        }
        let buildImage: StoredImage
        do { buildImage = try store.resolve(buildImageRef) } catch {
            throw PlatformError("\(configPath): build image \(buildImageRef) is not in the store (\(error)); create it with `cairn stack create` or `cairn pull`")
        }

        var options = try LayerWriteOptions.fromEnvironment(ProcessInfo.processInfo.environment)
        options.uid = 0
        options.gid = 0
        let created = options.mtime == LayerWriteOptions.normalizedTime ? normalizedCreated : rfc3339(options.mtime)
        let scratch = FileManager.default.temporaryDirectory.path + "/cairn-builder-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        // Buildpacks from directories or buildpackages (an image, docker://, a .cnb file), and extensions.
        let assembler = ModuleAssembler(store: store, log: log, scratch: scratch)
        var buildpacks: [ModuleLayer] = []
        var extensions: [ModuleLayer] = []
        for (entries, isExtension) in [(config.buildpacks, false), (config.extensions, true)] {
            for entry in entries {
                guard let uri = entry.uri else {
                    throw PlatformError("\(configPath): a [[\(isExtension ? "extensions" : "buildpacks")]] entry (\(entry.id ?? "?")) has no uri")
                }
                let found: [ModuleLayer]
                do { found = try assembler.module(uri, base: base, isExtension: isExtension) } catch let e as PlatformError {
                    throw PlatformError("\(configPath): \(e.description)")
                }
                if !Buildpackage.isPackageReference(uri), let m = found.first {
                    if let id = entry.id, id != m.id { throw PlatformError("\(configPath): entry says id \(id) but \(uri) holds \(m.id)") }
                    if let v = entry.version, v != m.version {
                        throw PlatformError("\(configPath): entry says \(m.id) version \(v) but \(uri) holds \(m.version)")
                    }
                }
                for m in found {
                    var list = isExtension ? extensions : buildpacks
                    guard !list.contains(where: { $0.id == m.id && $0.version == m.version }) else { continue }
                    list.append(m)
                    if isExtension { extensions = list } else { buildpacks = list }
                }
            }
        }
        // Every group entry must be something the builder contains.
        for (groups, modules) in [(order.order, buildpacks), (order.orderExtensions ?? [], extensions)] {
            for group in groups {
                for ref in group.group where !modules.contains(where: { $0.id == ref.id.description && (ref.version == nil || ref.version == $0.version) }) {
                    throw PlatformError("\(configPath): order names \(ref.id)\(ref.version.map { "@" + $0 } ?? ""), which is not among [[buildpacks]]/[[extensions]]")
                }
            }
        }

        var layers: [LayerResult] = []
        var history: [History] = []
        var layerLabel: ModuleLayersLabel = [:]
        var extensionLayerLabel: ModuleLayersLabel = [:]
        for m in buildpacks + extensions {
            layers.append(m.layer)
            history.append(History(created: created, createdBy: "cairn builder create: \(m.id)@\(m.version)"))
        }
        for m in buildpacks { layerLabel[m.id, default: [:]][m.version] = m.info }
        for m in extensions { extensionLayerLabel[m.id, default: [:]][m.version] = m.info }

        try binaries.install(into: scratch + "/lifecycle/cnb/lifecycle")
        layers.append(try store.writeLayer(directory: scratch + "/lifecycle", options: options))
        history.append(History(created: created, createdBy: "cairn builder create: lifecycle \(cairnLifecycleVersion)"))

        let cfg = scratch + "/config/cnb"
        try FileManager.default.createDirectory(atPath: cfg + "/build-config/env", withIntermediateDirectories: true)
        try TOMLFile.write(order, to: cfg + "/order.toml")
        try TOMLFile.write(RunFile(images: config.runImages), to: cfg + "/run.toml")
        // For lifecycles driven at Platform API < 0.12, which read stack.toml (pack writes both).
        try TOMLFile.write(StackFile(runImage: config.runImages[0]), to: cfg + "/stack.toml")
        for e in config.build?.env ?? [] {
            let file = e.name + (e.suffix.map { "." + $0 } ?? "")
            try e.value.write(toFile: cfg + "/build-config/env/" + file, atomically: true, encoding: .utf8)
        }
        layers.append(try store.writeLayer(directory: scratch + "/config", options: options))
        history.append(History(created: created, createdBy: "cairn builder create: order.toml, run.toml, build config"))

        let metadata: [String: Any] = [
            "description": config.description ?? "",
            "buildpacks": buildpacks.map { m -> [String: Any] in
                var d: [String: Any] = ["id": m.id, "version": m.version]
                if let h = m.info.homepage { d["homepage"] = h }
                return d
            },
            "extensions": extensions.map { ["id": $0.id, "version": $0.version] },
            "stack": ["runImage": ["image": config.runImages[0].image, "mirrors": config.runImages[0].mirrors ?? []]],
            "images": config.runImages.map { ["image": $0.image, "mirrors": $0.mirrors ?? []] as [String: Any] },
            "lifecycle": [
                "version": cairnLifecycleVersion,
                "apis": [
                    "buildpack": ["deprecated": SupportedAPIs.deprecatedBuildpack.map(\.description), "supported": SupportedAPIs.buildpack.map(\.description)],
                    "platform": ["deprecated": SupportedAPIs.deprecatedPlatform.map(\.description), "supported": SupportedAPIs.platform.map(\.description)],
                ],
            ] as [String: Any],
            "createdBy": ["name": "Cairn", "version": cairnLifecycleVersion],
        ]
        func orderLabel(_ groups: [OrderGroup]) -> [[String: Any]] {
            groups.map { g in
                ["group": g.group.map { r -> [String: Any] in
                    var d: [String: Any] = ["id": r.id.description]
                    if let v = r.version { d["version"] = v }
                    if r.optional { d["optional"] = true }
                    return d
                }]
            }
        }
        // Every label pack writes: platforms decide from the extension labels whether to run
        // the extender, so they are present (`{}`, `[]`) when there are no extensions.
        let labels = [
            CNBLabel.builderMetadata: try jsonString(metadata),
            CNBLabel.buildpackLayers: try jsonLabel(layerLabel),
            CNBLabel.buildpackOrder: try jsonString(orderLabel(order.order)),
            CNBLabel.extensionLayers: try jsonLabel(extensionLayerLabel),
            CNBLabel.orderExtensions: try jsonString(orderLabel(order.orderExtensions ?? [])),
        ]
        let image = try store.commitImage(base: buildImage, layers: layers, history: history, created: created, reference: name) { c in
            var exec = c.config ?? ExecutionConfig()
            var merged = exec.labels ?? [:]
            merged.merge(labels) { _, new in new }
            exec.labels = merged
            c.config = exec
        }
        return image
    }

    /// A builder's run image from its `io.buildpacks.builder.metadata` label, as pack writes it
    /// (`images`, else the older `stack.runImage`).
    public static func runImage(of builder: StoredImage) throws -> String? {
        guard let raw = builder.config.config?.labels?[CNBLabel.builderMetadata] else { return nil }
        struct Metadata: Decodable {
            struct Image: Decodable { var image: String? }
            struct Stack: Decodable { var runImage: Image? }
            var images: [Image]?
            var stack: Stack?
        }
        guard let m = try? JSONDecoder().decode(Metadata.self, from: Data(raw.utf8)) else {
            throw PlatformError("builder \(builder.name ?? builder.digest.description): its \(CNBLabel.builderMetadata) label is not valid JSON")
        }
        return m.images?.first?.image ?? m.stack?.runImage?.image
    }
}

func jsonString(_ object: Any) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
}

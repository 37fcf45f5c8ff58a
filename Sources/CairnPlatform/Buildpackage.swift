import Buildpacks
import Foundation
import Phases
import OCI
import Processes
import Sandbox

#if canImport(Glibc)
import Glibc
#endif

/// A buildpack layer: `/cnb/buildpacks/<id>/<version>/` in a layer of a builder or buildpackage.
public struct ModuleLayer: Sendable {
    public var id: String
    public var version: String
    public var info: ModuleLayerInfo
    public var layer: LayerResult
}

/// A buildpackage (distribution.md, Buildpackage): an image whose layers each hold one buildpack
/// at `/cnb/buildpacks/<id>/<version>/`, labelled `io.buildpacks.buildpackage.metadata` (the
/// entrypoint buildpack) and `io.buildpacks.buildpack.layers`, in a registry, a store or a
/// `.cnb` file (an uncompressed tar of an OCI layout).
public struct Buildpackage: Sendable {
    /// Where its blobs are.
    public var store: ImageStore
    public var image: StoredImage
    public var metadata: BuildpackageMetadataLabel
    public var layers: ModuleLayersLabel

    /// Whether `spec` names a buildpackage rather than a directory: `docker://REF`, a `.cnb` file,
    /// or a reference that is not an existing path.
    public static func isPackageReference(_ spec: String) -> Bool {
        if spec.hasPrefix("docker://") || spec.hasSuffix(".cnb") { return true }
        if spec.hasPrefix("file://") || spec.hasPrefix("/") || spec.hasPrefix(".") || FileManager.default.fileExists(atPath: spec) { return false }
        return (try? ImageReference(parsing: spec)) != nil
    }

    /// Whether `spec` surely names an image in a registry (`docker://REF`, or a first component
    /// that is a host): `examples/procfile` is a buildpack id as much as a Docker Hub name.
    public static func namesRegistryImage(_ spec: String) -> Bool {
        if spec.hasPrefix("docker://") { return true }
        guard !spec.hasSuffix(".cnb"), let slash = spec.firstIndex(of: "/") else { return false }
        let first = spec[..<slash]
        guard first != ".", first != ".." else { return false }  // ./dir, ../dir: a directory, even a missing one
        return first.contains(".") || first.contains(":") || first == "localhost"
    }

    /// The image reference of `docker://REF` or `REF`.
    public static func imageReference(_ spec: String) -> String {
        spec.hasPrefix("docker://") ? String(spec.dropFirst("docker://".count)) : spec
    }

    /// Opens a `.cnb` file (unpacked under `scratch`) or an image of `store`.
    public static func open(_ spec: String, store: ImageStore, scratch: String) throws -> Buildpackage {
        if spec.hasSuffix(".cnb") && !spec.hasPrefix("docker://") {
            guard FileManager.default.fileExists(atPath: spec) else { throw PlatformError.missingFile(what: "buildpackage file", path: spec) }
            let dir = scratch + "/cnb-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            do {
                // Our extractor: entries that would land outside the directory are refused.
                _ = try LayerExtractor.apply(blobPath: spec, to: dir, layerName: spec)
            } catch {
                throw PlatformError.invalidFile(path: spec, reason: "not a buildpackage file (an uncompressed tar of an OCI layout)", cause: error)
            }
            guard FileManager.default.fileExists(atPath: dir + "/index.json") else {
                throw PlatformError.invalidFile(path: spec, reason: "not a buildpackage file: it has no index.json (an OCI layout is expected)")
            }
            let layout = try ImageStore(root: dir)
            guard let first = try layout.index().manifests.first else { throw PlatformError.invalidFile(path: spec, reason: "its index.json names no image") }
            return try Buildpackage(store: layout, image: try layout.load(first, name: nil), what: spec)
        }
        let reference = imageReference(spec)
        let image: StoredImage
        do { image = try store.resolve(reference) } catch {
            throw PlatformError.notInStore(what: "buildpackage", reference: reference, hint: "pull it first (`cairn pull \(reference)`)")
        }
        return try Buildpackage(store: store, image: image, what: reference)
    }

    init(store: ImageStore, image: StoredImage, what: String) throws {
        self.store = store
        self.image = image
        let labels = image.config.config?.labels ?? [:]
        guard let raw = labels[CNBLabel.buildpackageMetadata] else {
            throw PlatformError.invalidLabel(image: what, label: CNBLabel.buildpackageMetadata, reason: "is missing: not a buildpackage")
        }
        do {
            metadata = try JSONDecoder().decode(BuildpackageMetadataLabel.self, from: Data(raw.utf8))
        } catch {
            throw PlatformError.invalidLabel(image: what, label: CNBLabel.buildpackageMetadata, reason: "is not valid", cause: error)
        }
        do {
            layers = try JSONDecoder().decode(ModuleLayersLabel.self, from: Data((labels[CNBLabel.buildpackLayers] ?? "{}").utf8))
        } catch {
            throw PlatformError.invalidLabel(image: what, label: CNBLabel.buildpackLayers, reason: "is not valid", cause: error)
        }
        guard layers[metadata.id]?[metadata.version] != nil else {
            throw PlatformError.invalidLabel(image: what, label: CNBLabel.buildpackLayers, reason: "does not list the entrypoint buildpack \(metadata.id)@\(metadata.version)")
        }
    }

    /// Each buildpack it holds with its layer, sorted by id and version.
    public func modules() throws -> [ModuleLayer] {
        var out: [ModuleLayer] = []
        for id in layers.keys.sorted() {
            for version in layers[id]!.keys.sorted() {
                let info = layers[id]![version]!
                guard let diffID = Digest(info.layerDiffID), let found = image.layer(diffID: diffID) else {
                    throw PlatformError.module(reference: "buildpackage \(metadata.id)", reason: "layer \(info.layerDiffID) of \(id)@\(version) is not in the image")
                }
                let d = found.descriptor
                out.append(ModuleLayer(id: id, version: version, info: info,
                                       layer: LayerResult(diffID: diffID, digest: d.digest, size: d.size, uncompressedSize: 0,
                                                          mediaType: d.mediaType, entries: 0)))
            }
        }
        return out
    }
}

/// pack's package.toml: the buildpack and, for a composite, its dependencies.
public struct PackageConfig: Decodable, Sendable {
    public var buildpack: Entry
    public var dependencies: [Entry]
    public var platform: PlatformInfo?

    public struct Entry: Decodable, Sendable {
        public var uri: String
    }
    public struct PlatformInfo: Decodable, Sendable {
        public var os: String?
    }

    enum CodingKeys: String, CodingKey { case buildpack, dependencies, platform }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        buildpack = try c.decode(Entry.self, forKey: .buildpack)
        dependencies = try c.decodeIfPresent([Entry].self, forKey: .dependencies) ?? []
        platform = try c.decodeIfPresent(PlatformInfo.self, forKey: .platform)
    }
}

/// `cairn buildpack package`: a buildpackage as pack makes one — one layer per buildpack, the
/// two labels — in the store, or written to a `.cnb` file.
public struct BuildpackPackager {
    public var store: ImageStore
    public var log: (String) -> Void

    public init(store: ImageStore, log: @escaping (String) -> Void) {
        self.store = store
        self.log = log
    }

    /// Packages the buildpack of `configPath` (or of the directory `directory` when no config is
    /// given) and names it `reference` in the store.
    @discardableResult
    public func package(configPath: String?, directory: String, reference: String) throws -> StoredImage {
        let config: PackageConfig
        let base: String
        if let configPath {
            guard FileManager.default.fileExists(atPath: configPath) else { throw PlatformError.missingFile(what: "package config", path: configPath) }
            config = try TOMLFile.read(PackageConfig.self, from: configPath)
            base = URL(fileURLWithPath: configPath).deletingLastPathComponent().path
        } else {
            config = try TOMLFile.decode(PackageConfig.self, from: "[buildpack]\nuri = \".\"\n", file: "package.toml")
            base = directory
        }
        if let os = config.platform?.os, os != "linux" {
            throw PlatformError.invalidFile(path: configPath ?? "package.toml", reason: "[platform] os = \"\(os)\": only linux buildpackages are made")
        }
        let scratch = FileManager.default.temporaryDirectory.path + "/cairn-package-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let entry = try ModuleAssembler(store: store, log: log, scratch: scratch).module(config.buildpack.uri, base: base)
        guard entry.count == 1, let main = entry.first else {
            throw PlatformError.invalidFile(path: configPath ?? "package.toml", reason: "[buildpack] uri \(config.buildpack.uri) must name one buildpack (a directory), not a buildpackage")
        }
        var modules = entry
        for dependency in config.dependencies {
            modules += try ModuleAssembler(store: store, log: log, scratch: scratch).module(dependency.uri, base: base)
        }
        var label: ModuleLayersLabel = [:]
        var unique: [ModuleLayer] = []
        for m in modules where label[m.id]?[m.version] == nil {
            label[m.id, default: [:]][m.version] = m.info
            unique.append(m)
        }
        // Every buildpack a composite's order names must be in the package.
        for m in unique {
            for group in m.info.order ?? [] {
                for ref in group.group where !unique.contains(where: { $0.id == ref.id.description && (ref.version == nil || $0.version == ref.version) }) {
                    throw PlatformError.invalidFile(path: configPath ?? "package.toml", reason: "\(m.id)@\(m.version) orders \(ref.id)\(ref.version.map { "@" + $0 } ?? ""), which is not among the [[dependencies]]")
                }
            }
        }
        let metadata = BuildpackageMetadataLabel(id: main.id, version: main.version, homepage: main.info.homepage, name: main.info.name,
                                                 stacks: main.info.stacks ?? [.init(id: "*")], targets: main.info.targets)
        let labels = [
            CNBLabel.buildpackageMetadata: try jsonLabel(metadata),
            CNBLabel.buildpackLayers: try jsonLabel(label),
        ]
        let options = try LayerWriteOptions.fromEnvironment(ProcessInfo.processInfo.environment)
        let created = options.mtime == LayerWriteOptions.normalizedTime ? normalizedCreated : rfc3339(options.mtime)
        return try store.beginWriteSession().commitImage(base: nil, layers: unique.map(\.layer),
                                     history: unique.map { History(created: created, createdBy: "cairn buildpack package: \($0.id)@\($0.version)") },
                                     created: created, reference: reference) { c in
            var exec = c.config ?? ExecutionConfig()
            exec.labels = labels
            c.config = exec
        }
    }

    /// Writes `image` as a `.cnb` file: an uncompressed tar of an OCI layout holding only it,
    /// with sorted entries, zero owners and a fixed time (the same package gives the same bytes).
    public func writeFile(_ image: StoredImage, to path: String) throws {
        let scratch = FileManager.default.temporaryDirectory.path + "/cairn-cnb-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let layout = try ImageStore(root: scratch + "/layout").beginWriteSession()
        try copyImage(image, from: store, to: layout)
        try layout.setOnlyImage(image.descriptor, as: image.name ?? "buildpackage")
        try? FileManager.default.removeItem(atPath: scratch + "/layout/.cairn")
        guard let tar = findExecutable("tar") else { throw SandboxError.toolMissing(tool: "tar", package: "tar", purpose: "write a .cnb file") }
        let temp = path + ".tmp-" + UUID().uuidString
        do {
            try ChildProcess.tool(tar, ["--create", "--file", temp, "--sort=name", "--owner=0", "--group=0", "--numeric-owner",
                              "--mtime=@315532801", "--format=pax", "--pax-option=delete=atime,delete=ctime", "-C", scratch + "/layout",
                              "index.json", "oci-layout", "blobs"], what: "tar of the buildpackage")
            guard rename(temp, path) == 0 else { throw PlatformError.io(operation: "write", path: path, reason: String(cString: strerror(errno))) }
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw error
        }
    }
}

/// Turns a builder.toml or package.toml `uri` into buildpack layers in a store: a directory
/// becomes one layer (`/cnb/buildpacks/<id>/<version>/`, deterministic); a buildpackage (an
/// image reference, `docker://REF`, a `.cnb` file) gives its layers as they are.
struct ModuleAssembler {
    var store: ImageStore
    var log: (String) -> Void
    var scratch: String

    func module(_ uri: String, base: String, isExtension: Bool = false) throws -> [ModuleLayer] {
        var path = uri
        if path.hasPrefix("file://") { path = String(path.dropFirst("file://".count)) }
        let local = path.hasPrefix("/") ? path : base + "/" + path
        let isLocal = !uri.hasPrefix("docker://") && FileManager.default.fileExists(atPath: local)
        if !isExtension && ((isLocal && local.hasSuffix(".cnb")) || (!isLocal && Buildpackage.isPackageReference(uri))) {
            if !isLocal && !uri.hasPrefix("docker://") && (try? store.resolve(uri)) == nil {
                throw PlatformError.module(reference: uri, reason: "neither a buildpack directory (no \(local)/buildpack.toml) nor a buildpackage in the store (pull it, or write docker://\(uri))")
            }
            let package = try Buildpackage.open(isLocal ? local : uri, store: store, scratch: scratch)
            log("Adding buildpackage \(package.metadata.id)@\(package.metadata.version) from \(uri)")
            let modules = try package.modules()
            if package.store.root != store.root {
                let session = try store.beginWriteSession()
                for m in modules { try copyBlob(m.layer.digest, from: package.store, to: session) }
            }
            return modules
        }
        var dir = local
        if !isExtension, let unpacked = try ClassicBuildpack.unpackIfArchive(local, into: scratch + "/classic-archive-" + UUID().uuidString.prefix(8)) {
            dir = unpacked
        }
        if !isExtension && ClassicBuildpack.isClassic(dir) {
            let wrapped = scratch + "/classic-" + UUID().uuidString.prefix(8)
            _ = try ClassicBuildpack.wrap(dir, into: wrapped, log: log)
            dir = wrapped
        }
        let descriptorPath = dir + (isExtension ? "/extension.toml" : "/buildpack.toml")
        guard FileManager.default.fileExists(atPath: descriptorPath) else {
            throw PlatformError.module(reference: uri, reason: "no \(isExtension ? "extension.toml" : "buildpack.toml") (looked for \(descriptorPath))")
        }
        let id: BuildpackID, version: String, info: ModuleLayerInfo
        if isExtension {
            let d = try TOMLFile.read(ExtensionDescriptor.self, from: descriptorPath)
            (id, version) = (d.extension.id, d.extension.version)
            info = ModuleLayerInfo(api: d.api, layerDiffID: "", homepage: d.extension.homepage, name: d.extension.name,
                                   targets: d.targets.isEmpty ? nil : d.targets)
        } else {
            let d = try TOMLFile.read(BuildpackDescriptor.self, from: descriptorPath)
            (id, version) = (d.buildpack.id, d.buildpack.version)
            info = ModuleLayerInfo(api: d.api, layerDiffID: "", homepage: d.buildpack.homepage, name: d.buildpack.name, stacks: d.stacks,
                                   targets: d.targets.isEmpty ? nil : d.targets, order: d.order)
        }
        var o = try LayerWriteOptions.fromEnvironment(ProcessInfo.processInfo.environment)
        o.uid = 0
        o.gid = 0
        o.prefix = (isExtension ? "cnb/extensions/" : "cnb/buildpacks/") + id.escaped + "/" + version
        log("Adding \(isExtension ? "extension" : "buildpack") \(id)@\(version) from \(dir)")
        let layer = try store.beginWriteSession().writeLayer(directory: dir, options: o)
        var withDiffID = info
        withDiffID.layerDiffID = layer.diffID.description
        return [ModuleLayer(id: id.description, version: version, info: withDiffID, layer: layer)]
    }
}

/// A label value: compact JSON with sorted keys (labels are part of the config digest).
func jsonLabel<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

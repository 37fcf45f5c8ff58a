import Buildpacks
import FoundationEssentials
import Synchronization
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// A buildpack or extension found on disk.
public struct ModuleDescriptor: Sendable, Hashable {
    public enum Kind: String, Sendable { case buildpack, `extension` }
    public var kind: Kind
    public var id: BuildpackID
    public var version: String
    public var api: APIVersion
    public var homepage: String?
    public var directory: String
    public var clearEnv: Bool
    public var order: [OrderGroup]?
    public var targets: [Target]?
    public var execEnvironments: [String]
    /// `sbom-formats`: the SBOM media types the buildpack writes.
    public var sbomFormats: [String] = []

    public var key: String { "\(id)@\(version)" }
    public var isComposite: Bool { order != nil }

    /// The group.toml element for this module.
    public var element: GroupElement {
        var e = GroupElement(id: id, version: version, api: api, homepage: homepage)
        if kind == .extension { e.isExtension = true }
        return e
    }

    /// Whether this module runs in execution environment `env` (buildpack.md, Execution Environments).
    public func supports(execEnv env: String) -> Bool {
        execEnvironments.isEmpty || execEnvironments.contains(env) || execEnvironments.contains(ExecEnv.any)
    }
}

/// Finds buildpacks under `<buildpacks>/<id>/<version>/` (id with `/` as `_`) and extensions
/// under `<extensions>/...` (platform.md, Buildpacks Directory Layout), reading each descriptor once.
public final class BuildpackStore: Sendable {
    public let buildpacksDirectory: String
    public let extensionsDirectory: String?
    private let cache = Mutex<[String: ModuleDescriptor]>([:])

    public init(buildpacksDirectory: String, extensionsDirectory: String?) {
        self.buildpacksDirectory = buildpacksDirectory
        self.extensionsDirectory = extensionsDirectory
    }

    /// Looks up a module; a missing version resolves to the only installed one.
    /// - Throws: `LifecycleError.buildpackNotFound`, `.unsupportedBuildpackAPI`, `.file`.
    public func lookup(_ id: BuildpackID, version: String?, kind: ModuleDescriptor.Kind = .buildpack) throws -> ModuleDescriptor {
        let root = kind == .buildpack ? buildpacksDirectory : (extensionsDirectory ?? "")
        let idDir = root + "/" + id.escaped
        var version = version
        if version == nil || version?.isEmpty == true {
            let versions = (try? FileManager.default.contentsOfDirectory(atPath: idDir))?.filter { !$0.hasPrefix(".") } ?? []
            guard versions.count == 1 else {
                throw versions.isEmpty
                    ? LifecycleError.buildpackNotFound(id: id.description, version: nil, directory: root)
                    : LifecycleError.invalidArgument("buildpack \(id)", reason: "no version in the order and \(versions.count) versions are installed (\(versions.sorted().joined(separator: ", ")))")
            }
            version = versions[0]
        }
        let key = "\(kind.rawValue):\(id)@\(version!)"
        if let hit = cache.withLock({ $0[key] }) { return hit }
        let dir = idDir + "/" + version!
        let descriptor = try load(directory: dir, kind: kind, id: id, version: version!)
        cache.withLock { $0[key] = descriptor }
        return descriptor
    }

    /// Reads a module's descriptor from its directory.
    public func load(directory dir: String, kind: ModuleDescriptor.Kind, id: BuildpackID, version: String) throws -> ModuleDescriptor {
        let file = dir + "/" + (kind == .buildpack ? "buildpack.toml" : "extension.toml")
        guard FileManager.default.fileExists(atPath: file) else {
            throw LifecycleError.buildpackNotFound(id: id.value, version: version, directory: kind == .buildpack ? buildpacksDirectory : (extensionsDirectory ?? ""))
        }
        let m: ModuleDescriptor
        if kind == .buildpack {
            let d = try readFile(BuildpackDescriptor.self, file)
            let hasBuild = FileManager.default.fileExists(atPath: dir + "/bin/build")
            m = ModuleDescriptor(kind: .buildpack, id: d.buildpack.id, version: d.buildpack.version, api: d.api,
                                 homepage: d.buildpack.homepage, directory: dir, clearEnv: d.buildpack.clearEnv, order: d.order,
                                 targets: d.effectiveTargets(hasBuildExecutable: hasBuild),
                                 execEnvironments: d.buildpack.execEnv?.map(\.name) ?? [], sbomFormats: d.buildpack.sbomFormats ?? [])
        } else {
            let d = try readFile(ExtensionDescriptor.self, file)
            m = ModuleDescriptor(kind: .extension, id: d.extension.id, version: d.extension.version, api: d.api,
                                 homepage: d.extension.homepage, directory: dir, clearEnv: false, order: nil,
                                 targets: d.targets.isEmpty ? nil : d.targets, execEnvironments: [])
        }
        guard m.id == id, m.version == version else {
            throw LifecycleError.invalidArgument(file, reason: "declares \(m.id)@\(m.version), but is installed as \(id)@\(version)")
        }
        guard SupportedAPIs.isSupported(buildpack: m.api) else {
            throw LifecycleError.unsupportedBuildpackAPI(id: m.id.value, version: m.version, api: m.api.description)
        }
        return m
    }
}

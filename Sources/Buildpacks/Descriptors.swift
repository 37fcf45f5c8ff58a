import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// A target: os/arch/variant and distributions (buildpack.md, buildpack.toml > Targets).
/// Missing fields match anything.
public struct Target: Codable, Hashable, Sendable {
    public var os: String?
    public var arch: String?
    public var variant: String?
    public var distros: [Distro]?

    public struct Distro: Codable, Hashable, Sendable {
        public var name: String?
        public var version: String?
        public init(name: String? = nil, version: String? = nil) {
            self.name = name
            self.version = version
        }
    }

    public init(os: String? = nil, arch: String? = nil, variant: String? = nil, distros: [Distro]? = nil) {
        self.os = os
        self.arch = arch
        self.variant = variant
        self.distros = distros
    }

    /// Whether this (buildpack) target is satisfied by a base image's target: os, arch and variant
    /// match where both are given, and some distro matches when distros are given.
    public func matches(_ base: TargetData) -> Bool {
        func same(_ a: String?, _ b: String?) -> Bool {
            guard let a, !a.isEmpty, let b, !b.isEmpty else { return true }
            return a == b
        }
        guard same(os, base.os), same(arch, base.arch), same(variant, base.variant) else { return false }
        guard let distros, !distros.isEmpty, let baseDistro = base.distro else { return true }
        return distros.contains { same($0.name, baseDistro.name) && same($0.version, baseDistro.version) }
    }
}

/// A base image's target data (platform.md, analyzed.toml `run-image.target`).
public struct TargetData: Codable, Hashable, Sendable {
    public var os: String?
    public var arch: String?
    public var variant: String?
    public var distro: Distro?
    /// Run image target ID (`io.buildpacks.base.id`).
    public var id: String?

    public struct Distro: Codable, Hashable, Sendable {
        public var name: String?
        public var version: String?
        public init(name: String? = nil, version: String? = nil) {
            self.name = name
            self.version = version
        }
    }

    /// `id` as the reference lifecycle writes analyzed.toml's `[run-image.target]`; `target-id`
    /// (what Cairn wrote before) is read too.
    enum CodingKeys: String, CodingKey {
        case os, arch, variant, distro, id
        case legacyID = "target-id"
    }

    public init(os: String? = nil, arch: String? = nil, variant: String? = nil, distro: Distro? = nil) {
        self.os = os
        self.arch = arch
        self.variant = variant
        self.distro = distro
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        os = try c.decodeIfPresent(String.self, forKey: .os)
        arch = try c.decodeIfPresent(String.self, forKey: .arch)
        variant = try c.decodeIfPresent(String.self, forKey: .variant)
        distro = try c.decodeIfPresent(Distro.self, forKey: .distro)
        id = try c.decodeIfPresent(String.self, forKey: .id) ?? c.decodeIfPresent(String.self, forKey: .legacyID)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(os, forKey: .os)
        try c.encodeIfPresent(arch, forKey: .arch)
        try c.encodeIfPresent(variant, forKey: .variant)
        try c.encodeIfPresent(distro, forKey: .distro)
        try c.encodeIfPresent(id, forKey: .id)
    }
}

/// A license entry of buildpack.toml / extension.toml.
public struct License: Codable, Hashable, Sendable {
    public var type: String?
    public var uri: String?
}

/// One element of an order group (buildpack.toml `[[order.group]]`, order.toml, system.toml).
public struct GroupReference: Codable, Hashable, Sendable {
    public var id: BuildpackID
    /// Required by the spec; when absent, the only installed version is used.
    public var version: String?
    public var optional: Bool
    public var execEnv: [String]?

    enum CodingKeys: String, CodingKey {
        case id, version, optional
        case execEnv = "exec-env"
    }

    public init(id: BuildpackID, version: String?, optional: Bool = false, execEnv: [String]? = nil) {
        self.id = id
        self.version = version
        self.optional = optional
        self.execEnv = execEnv
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(BuildpackID.self, forKey: .id)
        version = try c.decodeIfPresent(String.self, forKey: .version)
        optional = try c.decodeIfPresent(Bool.self, forKey: .optional) ?? false
        execEnv = try c.decodeIfPresent([String].self, forKey: .execEnv)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encodeIfPresent(version, forKey: .version)
        if optional { try c.encode(optional, forKey: .optional) }
        try c.encodeIfPresent(execEnv, forKey: .execEnv)
    }
}

/// A list of groups: `[[order]]` with `[[order.group]]`.
public struct OrderGroup: Codable, Hashable, Sendable {
    public var group: [GroupReference]
    public init(group: [GroupReference]) { self.group = group }
}

/// buildpack.toml (buildpack.md, Data Format > buildpack.toml); also used for extension.toml
/// through `ExtensionDescriptor`.
public struct BuildpackDescriptor: Codable, Hashable, Sendable {
    public var api: APIVersion
    public var buildpack: Info
    public var order: [OrderGroup]?
    public var targets: [Target]
    /// Deprecated in Buildpack API 0.10; translated into targets.
    public var stacks: [Stack]?
    public var metadata: AnyTOML?

    public struct Info: Codable, Hashable, Sendable {
        public var id: BuildpackID
        public var name: String?
        public var version: String
        public var homepage: String?
        public var clearEnv: Bool
        public var description: String?
        public var keywords: [String]?
        public var sbomFormats: [String]?
        public var licenses: [License]?
        public var execEnv: [ExecEnvEntry]?

        enum CodingKeys: String, CodingKey {
            case id, name, version, homepage, description, keywords, licenses
            case clearEnv = "clear-env"
            case sbomFormats = "sbom-formats"
            case execEnv = "exec-env"
        }

        public init(id: BuildpackID, version: String, name: String? = nil) {
            self.id = id
            self.version = version
            self.name = name
            self.clearEnv = false
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(BuildpackID.self, forKey: .id)
            name = try c.decodeIfPresent(String.self, forKey: .name)
            version = try c.decode(String.self, forKey: .version)
            guard !version.isEmpty else { throw decoder.invalid("version must not be empty") }
            homepage = try c.decodeIfPresent(String.self, forKey: .homepage)
            clearEnv = try c.decodeIfPresent(Bool.self, forKey: .clearEnv) ?? false
            description = try c.decodeIfPresent(String.self, forKey: .description)
            keywords = try c.decodeIfPresent([String].self, forKey: .keywords)
            sbomFormats = try c.decodeIfPresent([String].self, forKey: .sbomFormats)
            licenses = try c.decodeIfPresent([License].self, forKey: .licenses)
            execEnv = try c.decodeIfPresent([ExecEnvEntry].self, forKey: .execEnv)
            for format in sbomFormats ?? [] where !SBOMFormat.mediaTypes.contains(format) {
                throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [CodingKeys.sbomFormats],
                    debugDescription: "\"\(format)\" is not a supported SBOM media type (\(SBOMFormat.mediaTypes.sorted().joined(separator: ", ")))"))
            }
        }
    }

    public struct ExecEnvEntry: Codable, Hashable, Sendable {
        public var name: String
    }

    public struct Stack: Codable, Hashable, Sendable {
        public var id: String
        public var mixins: [String]?
        public init(id: String, mixins: [String]? = nil) {
            self.id = id
            self.mixins = mixins
        }
    }

    enum CodingKeys: String, CodingKey {
        case api, buildpack, order, targets, stacks, metadata
    }

    public init(api: APIVersion, buildpack: Info, order: [OrderGroup]? = nil, targets: [Target] = []) {
        self.api = api
        self.buildpack = buildpack
        self.order = order
        self.targets = targets
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        api = try c.decode(APIVersion.self, forKey: .api)
        buildpack = try c.decode(Info.self, forKey: .buildpack)
        order = try c.decodeIfPresent([OrderGroup].self, forKey: .order)
        targets = try c.decodeIfPresent([Target].self, forKey: .targets) ?? []
        stacks = try c.decodeIfPresent([Stack].self, forKey: .stacks)
        metadata = try c.decodeIfPresent(AnyTOML.self, forKey: .metadata)
        if order != nil && !(stacks ?? []).isEmpty {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.stacks],
                debugDescription: "a composite buildpack (with [[order]]) must not declare [[stacks]]"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(api, forKey: .api)
        try c.encode(buildpack, forKey: .buildpack)
        try c.encodeIfPresent(order, forKey: .order)
        if !targets.isEmpty { try c.encode(targets, forKey: .targets) }
        try c.encodeIfPresent(stacks, forKey: .stacks)
        try c.encodeIfPresent(metadata, forKey: .metadata)
    }

    /// Whether this is a composite buildpack (an order, no executables).
    public var isComposite: Bool { order != nil }

    /// The targets this buildpack declares, with legacy stacks translated and, when none are
    /// declared, the inferred one (buildpack.md, Targets). `nil` means "matches any target".
    /// - Parameter hasBuildExecutable: whether `bin/build` exists (infers `os = "linux"`).
    public func effectiveTargets(hasBuildExecutable: Bool) -> [Target]? {
        if !targets.isEmpty { return targets }
        if let stacks, !stacks.isEmpty {
            if stacks.contains(where: { $0.id == StackID.any }) { return nil }
            var out: [Target] = []
            for s in stacks where s.id == StackID.bionic {
                out.append(Target(os: "linux", arch: "amd64", distros: [Target.Distro(name: "ubuntu", version: "18.04")]))
            }
            // Other stack IDs carry no target information: treat as Linux, any arch.
            return out.isEmpty ? [Target(os: "linux")] : out
        }
        return hasBuildExecutable ? [Target(os: "linux")] : nil
    }
}

/// extension.toml (image_extension.md, Data Format).
public struct ExtensionDescriptor: Codable, Hashable, Sendable {
    public var api: APIVersion
    public var `extension`: Info
    public var targets: [Target]
    public var metadata: AnyTOML?

    public struct Info: Codable, Hashable, Sendable {
        public var id: BuildpackID
        public var name: String?
        public var version: String
        public var homepage: String?
        public var description: String?
        public var keywords: [String]?
        public var licenses: [License]?
    }

    enum CodingKeys: String, CodingKey {
        case api, `extension`, targets, metadata, order
    }

    public init(api: APIVersion, extension info: Info) {
        self.api = api
        self.extension = info
        self.targets = []
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        api = try c.decode(APIVersion.self, forKey: .api)
        self.extension = try c.decode(Info.self, forKey: .extension)
        targets = try c.decodeIfPresent([Target].self, forKey: .targets) ?? []
        metadata = try c.decodeIfPresent(AnyTOML.self, forKey: .metadata)
        if c.contains(.order) {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.order],
                debugDescription: "an image extension cannot have an order"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(api, forKey: .api)
        try c.encode(self.extension, forKey: .extension)
        if !targets.isEmpty { try c.encode(targets, forKey: .targets) }
        try c.encodeIfPresent(metadata, forKey: .metadata)
    }
}

/// SBOM media types and file extensions (buildpack.md, Software-Bill-of-Materials).
public enum SBOMFormat {
    public static let extensions: [String: String] = [
        "application/vnd.cyclonedx+json": "cdx.json",
        "application/spdx+json": "spdx.json",
        "application/vnd.syft+json": "syft.json",
    ]
    public static var mediaTypes: Set<String> { Set(extensions.keys) }
    public static var fileExtensions: Set<String> { Set(extensions.values) }
}

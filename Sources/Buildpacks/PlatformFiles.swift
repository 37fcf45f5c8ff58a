/// order.toml (platform.md, Data Format > order.toml).
public struct OrderFile: Codable, Hashable, Sendable {
    public var order: [OrderGroup]
    public var orderExtensions: [OrderGroup]?

    enum CodingKeys: String, CodingKey {
        case order
        case orderExtensions = "order-extensions"
    }

    public init(order: [OrderGroup], orderExtensions: [OrderGroup]? = nil) {
        self.order = order
        self.orderExtensions = orderExtensions
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        order = try c.decodeIfPresent([OrderGroup].self, forKey: .order) ?? []
        orderExtensions = try c.decodeIfPresent([OrderGroup].self, forKey: .orderExtensions)
    }
}

/// One buildpack or extension of a detected group (group.toml, metadata.toml).
public struct GroupElement: Codable, Hashable, Sendable {
    public var id: BuildpackID
    public var version: String
    public var api: APIVersion
    public var homepage: String?
    /// Recorded in metadata.toml only.
    public var optional: Bool?
    /// Whether this is an image extension (plan.toml providers).
    public var isExtension: Bool?

    enum CodingKeys: String, CodingKey {
        case id, version, api, homepage, optional
        case isExtension = "extension"
    }

    public init(id: BuildpackID, version: String, api: APIVersion, homepage: String? = nil) {
        self.id = id
        self.version = version
        self.api = api
        self.homepage = homepage
    }
}

/// group.toml (platform.md, Data Format > group.toml).
public struct GroupFile: Codable, Hashable, Sendable {
    public var group: [GroupElement]
    public var groupExtensions: [GroupElement]?

    enum CodingKeys: String, CodingKey {
        case group
        case groupExtensions = "group-extensions"
    }

    public init(group: [GroupElement], groupExtensions: [GroupElement]? = nil) {
        self.group = group
        self.groupExtensions = groupExtensions
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        group = try c.decodeIfPresent([GroupElement].self, forKey: .group) ?? []
        groupExtensions = try c.decodeIfPresent([GroupElement].self, forKey: .groupExtensions)
    }
}

/// A required dependency (Build Plan `requires`, plan.toml `entries.requires`).
public struct Require: Codable, Hashable, Sendable {
    public var name: String
    public var metadata: [String: AnyTOML]?

    public init(name: String, metadata: [String: AnyTOML]? = nil) {
        self.name = name
        self.metadata = metadata
    }

    enum CodingKeys: String, CodingKey {
        case name, metadata, version
    }

    /// A top-level `version` is an error (the reference lifecycle's "top level version" check):
    /// a version belongs in `metadata.version`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if c.contains(.version) {
            throw decoder.invalid("a top-level \"version\" in [[requires]] is not allowed: put it in [requires.metadata] as version")
        }
        name = try c.decode(String.self, forKey: .name)
        metadata = try c.decodeIfPresent([String: AnyTOML].self, forKey: .metadata)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(metadata, forKey: .metadata)
    }
}

/// A provided dependency (Build Plan `provides`).
public struct Provide: Codable, Hashable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

/// The Build Plan a `bin/detect` writes (buildpack.md, Data Format > Build Plan).
public struct BuildPlan: Codable, Hashable, Sendable {
    public var provides: [Provide]
    public var requires: [Require]
    public var or: [Alternative]

    public struct Alternative: Codable, Hashable, Sendable {
        public var provides: [Provide]
        public var requires: [Require]

        public init(provides: [Provide] = [], requires: [Require] = []) {
            self.provides = provides
            self.requires = requires
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            provides = try c.decodeIfPresent([Provide].self, forKey: .provides) ?? []
            requires = try c.decodeIfPresent([Require].self, forKey: .requires) ?? []
        }
    }

    public init(provides: [Provide] = [], requires: [Require] = [], or: [Alternative] = []) {
        self.provides = provides
        self.requires = requires
        self.or = or
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        provides = try c.decodeIfPresent([Provide].self, forKey: .provides) ?? []
        requires = try c.decodeIfPresent([Require].self, forKey: .requires) ?? []
        or = try c.decodeIfPresent([Alternative].self, forKey: .or) ?? []
    }

    /// The potential build plans: the top-level pair, then each `or` pair.
    public var alternatives: [Alternative] {
        [Alternative(provides: provides, requires: requires)] + or
    }
}

/// The Buildpack Plan given to `bin/build` (buildpack.md, Data Format > Buildpack Plan).
public struct BuildpackPlan: Codable, Hashable, Sendable {
    public var entries: [Require]
    public init(entries: [Require]) { self.entries = entries }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        entries = try c.decodeIfPresent([Require].self, forKey: .entries) ?? []
    }

    enum CodingKeys: String, CodingKey { case entries }

    /// No `entries` key when there are none, as the reference writes it.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if !entries.isEmpty { try c.encode(entries, forKey: .entries) }
    }
}

/// plan.toml: the resolved build plan (platform.md, Data Format > plan.toml).
public struct PlanFile: Codable, Hashable, Sendable {
    public var entries: [Entry]

    public struct Entry: Codable, Hashable, Sendable {
        public var providers: [Provider]
        public var requires: [Require]
        public init(providers: [Provider], requires: [Require]) {
            self.providers = providers
            self.requires = requires
        }
    }

    /// A provider of an entry: `id`, `version`, and `extension` (true for an image extension,
    /// false when absent). Nothing else: platform.md gives a provider no `api`.
    public struct Provider: Codable, Hashable, Sendable {
        public var id: BuildpackID
        public var version: String
        public var isExtension: Bool

        enum CodingKeys: String, CodingKey {
            case id, version
            case isExtension = "extension"
        }

        public init(id: BuildpackID, version: String, isExtension: Bool = false) {
            self.id = id
            self.version = version
            self.isExtension = isExtension
        }

        public init(_ element: GroupElement) {
            self.init(id: element.id, version: element.version, isExtension: element.isExtension ?? false)
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(BuildpackID.self, forKey: .id)
            version = try c.decodeIfPresent(String.self, forKey: .version) ?? ""
            isExtension = try c.decodeIfPresent(Bool.self, forKey: .isExtension) ?? false
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(version, forKey: .version)
            if isExtension { try c.encode(true, forKey: .isExtension) }
        }
    }

    public init(entries: [Entry]) { self.entries = entries }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        entries = try c.decodeIfPresent([Entry].self, forKey: .entries) ?? []
    }

    enum CodingKeys: String, CodingKey { case entries }

    /// No `entries` key when there are none, as the reference writes it.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if !entries.isEmpty { try c.encode(entries, forKey: .entries) }
    }
}

/// analyzed.toml (platform.md, Data Format > analyzed.toml).
public struct AnalyzedFile: Codable, Hashable, Sendable {
    public var image: ImageIdentifier?
    public var metadata: AnyTOML?
    public var runImage: RunImage?
    public var buildImage: BuildImage?

    public struct ImageIdentifier: Codable, Hashable, Sendable {
        public var reference: String
        public init(reference: String) { self.reference = reference }
    }

    /// `[build-image]`: the build image's digest reference (restorer `-build-image`) and whether
    /// image extensions extend it (detector).
    public struct BuildImage: Codable, Hashable, Sendable {
        public var reference: String?
        public var extend: Bool?
        public init(reference: String? = nil, extend: Bool? = nil) {
            self.reference = reference
            self.extend = extend
        }
    }

    public struct RunImage: Codable, Hashable, Sendable {
        public var image: String?
        public var reference: String?
        public var extend: Bool?
        public var target: TargetData?
        public init(image: String? = nil, reference: String? = nil, extend: Bool? = nil, target: TargetData? = nil) {
            self.image = image
            self.reference = reference
            self.extend = extend
            self.target = target
        }
    }

    enum CodingKeys: String, CodingKey {
        case image, metadata
        case runImage = "run-image"
        case buildImage = "build-image"
    }

    public init(runImage: RunImage? = nil) { self.runImage = runImage }
}

/// run.toml (platform.md, Data Format > run.toml).
public struct RunFile: Codable, Hashable, Sendable {
    public var images: [Image]

    public struct Image: Codable, Hashable, Sendable {
        public var image: String
        public var mirrors: [String]?
        public init(image: String, mirrors: [String]? = nil) {
            self.image = image
            self.mirrors = mirrors
        }
    }

    public init(images: [Image]) { self.images = images }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        images = try c.decodeIfPresent([Image].self, forKey: .images) ?? []
    }
}

/// stack.toml, which Platform API < 0.12 uses where later versions use run.toml:
/// `[run-image] image`, `mirrors`.
public struct StackFile: Codable, Hashable, Sendable {
    public var runImage: RunFile.Image?

    enum CodingKeys: String, CodingKey {
        case runImage = "run-image"
    }

    public init(runImage: RunFile.Image? = nil) { self.runImage = runImage }

    /// The same run image as run.toml would list it.
    public var asRunFile: RunFile { RunFile(images: runImage.map { [$0] } ?? []) }
}

/// system.toml (platform.md, Data Format > system.toml).
public struct SystemFile: Codable, Hashable, Sendable {
    public var system: System

    public struct System: Codable, Hashable, Sendable {
        public var pre: Buildpacks?
        public var post: Buildpacks?
        public init(pre: Buildpacks? = nil, post: Buildpacks? = nil) {
            self.pre = pre
            self.post = post
        }
    }

    public struct Buildpacks: Codable, Hashable, Sendable {
        public var buildpacks: [GroupReference]
        public init(buildpacks: [GroupReference]) { self.buildpacks = buildpacks }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            buildpacks = try c.decodeIfPresent([GroupReference].self, forKey: .buildpacks) ?? []
        }
    }

    public init(system: System) { self.system = system }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        system = try c.decodeIfPresent(System.self, forKey: .system) ?? System()
    }

    public var pre: [GroupReference] { system.pre?.buildpacks ?? [] }
    public var post: [GroupReference] { system.post?.buildpacks ?? [] }
}

/// report.toml (platform.md, Data Format > report.toml).
public struct ReportFile: Codable, Hashable, Sendable {
    public var image: Image

    public struct Image: Codable, Hashable, Sendable {
        public var tags: [String]
        public var digest: String?
        public var imageID: String?
        public var manifestSize: Int64?

        enum CodingKeys: String, CodingKey {
            case tags, digest
            case imageID = "image-id"
            case manifestSize = "manifest-size"
        }

        public init(tags: [String], digest: String? = nil, manifestSize: Int64? = nil) {
            self.tags = tags
            self.digest = digest
            self.manifestSize = manifestSize
        }
    }

    /// The rebaser's layer patches: each layer replaced (old -> new diffID, patch image).
    public var layerPatches: [LayerReplacement]?

    enum CodingKeys: String, CodingKey {
        case image
        case layerPatches = "layer-patches"
    }

    public init(image: Image) { self.image = image }
}

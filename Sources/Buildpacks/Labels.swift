/// `io.buildpacks.lifecycle.metadata` (platform.md, Labels): which layer of an app image is
/// which, so later builds can reuse layers and rebase can find the run image's top layer.
public struct LifecycleMetadataLabel: Codable, Hashable, Sendable {
    public var app: [LayerSHA]
    public var sbom: LayerSHA?
    public var config: LayerSHA?
    public var launcher: LayerSHA?
    public var execEnv: String?
    public var buildpacks: [BuildpackLayers]
    public var runImage: RunImage?
    /// Deprecated in Platform API 0.12 and still written, as the reference does, for platforms
    /// that read it: `stack.runImage` holds the same image and mirrors as `runImage`.
    public var stack: Stack?

    public struct Stack: Codable, Hashable, Sendable {
        public var runImage: RunImageMirrors?
        public init(runImage: RunImageMirrors?) { self.runImage = runImage }
    }

    public struct RunImageMirrors: Codable, Hashable, Sendable {
        public var image: String
        public var mirrors: [String]?
        public init(image: String, mirrors: [String]?) {
            self.image = image
            self.mirrors = mirrors
        }
    }

    public struct LayerSHA: Codable, Hashable, Sendable {
        public var sha: String
        public init(sha: String) { self.sha = sha }
    }

    /// One buildpack's launch (or, in the cache, cached) layers and its store.toml.
    public struct BuildpackLayers: Codable, Hashable, Sendable {
        public var key: String
        public var version: String
        public var layers: [String: Layer]
        public var store: StoreFile?
        public init(key: String, version: String, layers: [String: Layer] = [:], store: StoreFile? = nil) {
            self.key = key
            self.version = version
            self.layers = layers
            self.store = store
        }
    }

    /// A layer's `<layer>.toml` in JSON form plus the diffID of its contents.
    public struct Layer: Codable, Hashable, Sendable {
        public var sha: String
        public var data: [String: AnyTOML]?
        public var build: Bool
        public var launch: Bool
        public var cache: Bool
        public init(sha: String, data: [String: AnyTOML]?, build: Bool, launch: Bool, cache: Bool) {
            self.sha = sha
            self.data = data
            self.build = build
            self.launch = launch
            self.cache = cache
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            sha = try c.decodeIfPresent(String.self, forKey: .sha) ?? ""
            data = try c.decodeIfPresent([String: AnyTOML].self, forKey: .data)
            build = try c.decodeIfPresent(Bool.self, forKey: .build) ?? false
            launch = try c.decodeIfPresent(Bool.self, forKey: .launch) ?? false
            cache = try c.decodeIfPresent(Bool.self, forKey: .cache) ?? false
        }
        /// The `<layer>.toml` this entry was made from.
        /// The layer's `<layer>.toml` as the restorer writes it back: its metadata, without the
        /// `[types]` table (buildpack.md, Layer Types: "excluding the `[types]` table"), so a
        /// buildpack that appends `[types]` to reuse the layer writes valid TOML.
        public var restoredLayerFile: LayerMetadataFile {
            LayerMetadataFile(types: nil, metadata: data)
        }
    }

    public struct RunImage: Codable, Hashable, Sendable {
        public var topLayer: String?
        public var reference: String?
        public var image: String?
        public var mirrors: [String]?
        public init(topLayer: String? = nil, reference: String? = nil, image: String? = nil, mirrors: [String]? = nil) {
            self.topLayer = topLayer
            self.reference = reference
            self.image = image
            self.mirrors = mirrors
        }
    }

    enum CodingKeys: String, CodingKey {
        case app, sbom, config, launcher, buildpacks, runImage, stack
        case execEnv = "exec-env"
    }

    public init(app: [LayerSHA] = [], sbom: LayerSHA? = nil, config: LayerSHA? = nil, launcher: LayerSHA? = nil,
                execEnv: String? = nil, buildpacks: [BuildpackLayers] = [], runImage: RunImage? = nil) {
        self.app = app
        self.sbom = sbom
        self.config = config
        self.launcher = launcher
        self.execEnv = execEnv
        self.buildpacks = buildpacks
        self.runImage = runImage
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        app = try c.decodeIfPresent([LayerSHA].self, forKey: .app) ?? []
        sbom = try c.decodeIfPresent(LayerSHA.self, forKey: .sbom)
        config = try c.decodeIfPresent(LayerSHA.self, forKey: .config)
        launcher = try c.decodeIfPresent(LayerSHA.self, forKey: .launcher)
        execEnv = try c.decodeIfPresent(String.self, forKey: .execEnv)
        buildpacks = try c.decodeIfPresent([BuildpackLayers].self, forKey: .buildpacks) ?? []
        runImage = try c.decodeIfPresent(RunImage.self, forKey: .runImage)
        stack = try c.decodeIfPresent(Stack.self, forKey: .stack)
    }

    public func buildpack(_ id: String) -> BuildpackLayers? { buildpacks.first { $0.key == id } }
}

/// `io.buildpacks.build.metadata` (platform.md, Labels).
public struct BuildMetadataLabel: Codable, Hashable, Sendable {
    public var processes: [Process]
    public var buildpacks: [Module]
    public var extensions: [Module]?
    public var launcher: Launcher?
    public var bom: [AnyTOML]?

    public struct Process: Codable, Hashable, Sendable {
        public var type: String
        public var command: [String]
        public var args: [String]
        public var direct: Bool
        public var workingDir: String?
        public var buildpackID: String
        public var execEnv: [String]?
        enum CodingKeys: String, CodingKey {
            case type, command, args, direct, buildpackID
            case workingDir = "working-dir"
            case execEnv = "exec-env"
        }
        public init(_ p: BuildMetadataFile.Process) {
            type = p.type.description
            command = p.command
            args = p.args
            direct = p.direct
            workingDir = p.workingDirectory
            buildpackID = p.buildpackID.description
            execEnv = p.execEnv
        }
    }

    public struct Module: Codable, Hashable, Sendable {
        public var id: String
        public var version: String
        public var homepage: String?
        public var api: String?
        public init(_ g: GroupElement) {
            id = g.id.description
            version = g.version
            homepage = g.homepage
            api = g.api.description
        }
    }

    public struct Launcher: Codable, Hashable, Sendable {
        public var version: String
        public var source: Source?
        public struct Source: Codable, Hashable, Sendable {
            public var git: Git?
            public struct Git: Codable, Hashable, Sendable {
                public var repository: String
                public var commit: String
            }
        }
        public init(version: String) { self.version = version }
    }

    public init(processes: [Process], buildpacks: [Module], extensions: [Module]?, launcher: Launcher?) {
        self.processes = processes
        self.buildpacks = buildpacks
        self.extensions = extensions
        self.launcher = launcher
    }
}

/// One buildpack (or extension) in `io.buildpacks.buildpack.layers` / `io.buildpacks.extension.layers`
/// of a builder or buildpackage (platform.md, distribution.md; the keys pack writes): the layer
/// holding `/cnb/buildpacks/<id>/<version>/` and what a platform needs without reading it.
public struct ModuleLayerInfo: Codable, Hashable, Sendable {
    public var api: APIVersion
    public var layerDiffID: String
    public var homepage: String?
    public var name: String?
    public var stacks: [BuildpackDescriptor.Stack]?
    public var targets: [Target]?
    /// A composite buildpack's order.
    public var order: [OrderGroup]?

    public init(api: APIVersion, layerDiffID: String, homepage: String? = nil, name: String? = nil,
                stacks: [BuildpackDescriptor.Stack]? = nil, targets: [Target]? = nil, order: [OrderGroup]? = nil) {
        self.api = api
        self.layerDiffID = layerDiffID
        self.homepage = homepage
        self.name = name
        self.stacks = stacks
        self.targets = targets
        self.order = order
    }
}

/// `io.buildpacks.buildpack.layers`: id → version → layer.
public typealias ModuleLayersLabel = [String: [String: ModuleLayerInfo]]

/// `io.buildpacks.buildpackage.metadata` (distribution.md, Buildpackage): the entrypoint buildpack.
public struct BuildpackageMetadataLabel: Codable, Hashable, Sendable {
    public var id: String
    public var version: String
    public var homepage: String?
    public var name: String?
    public var stacks: [BuildpackDescriptor.Stack]?
    public var targets: [Target]?

    public init(id: String, version: String, homepage: String? = nil, name: String? = nil,
                stacks: [BuildpackDescriptor.Stack]? = nil, targets: [Target]? = nil) {
        self.id = id
        self.version = version
        self.homepage = homepage
        self.name = name
        self.stacks = stacks
        self.targets = targets
    }
}

/// `io.buildpacks.builder.metadata` (distribution.md, Builder), with the keys pack writes.
public struct BuilderMetadataLabel: Codable, Hashable, Sendable {
    public var description: String
    public var buildpacks: [Module]
    public var extensions: [Module]?
    /// The deprecated form of the run image (platforms before `images`).
    public var stack: Stack?
    public var images: [RunImage]?
    public var lifecycle: Lifecycle?
    public var createdBy: CreatedBy?

    public struct Module: Codable, Hashable, Sendable {
        public var id: String
        public var version: String
        public var homepage: String?
        public init(id: String, version: String, homepage: String? = nil) {
            self.id = id
            self.version = version
            self.homepage = homepage
        }
    }
    public struct RunImage: Codable, Hashable, Sendable {
        public var image: String?
        public var mirrors: [String]?
        public init(image: String?, mirrors: [String]?) {
            self.image = image
            self.mirrors = mirrors
        }
    }
    public struct Stack: Codable, Hashable, Sendable {
        public var runImage: RunImage?
        public init(runImage: RunImage?) { self.runImage = runImage }
    }
    public struct Lifecycle: Codable, Hashable, Sendable {
        public var version: String
        public var apis: LifecycleDescriptor.APIs?
        public init(version: String, apis: LifecycleDescriptor.APIs?) {
            self.version = version
            self.apis = apis
        }
    }
    public struct CreatedBy: Codable, Hashable, Sendable {
        public var name: String
        public var version: String
        public init(name: String, version: String) {
            self.name = name
            self.version = version
        }
    }

    public init(description: String, buildpacks: [Module], extensions: [Module]?, stack: Stack?, images: [RunImage]?,
                lifecycle: Lifecycle?, createdBy: CreatedBy?) {
        self.description = description
        self.buildpacks = buildpacks
        self.extensions = extensions
        self.stack = stack
        self.images = images
        self.lifecycle = lifecycle
        self.createdBy = createdBy
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        description = try c.decodeIfPresent(String.self, forKey: .description) ?? ""
        buildpacks = try c.decodeIfPresent([Module].self, forKey: .buildpacks) ?? []
        extensions = try c.decodeIfPresent([Module].self, forKey: .extensions)
        stack = try c.decodeIfPresent(Stack.self, forKey: .stack)
        images = try c.decodeIfPresent([RunImage].self, forKey: .images)
        lifecycle = try c.decodeIfPresent(Lifecycle.self, forKey: .lifecycle)
        createdBy = try c.decodeIfPresent(CreatedBy.self, forKey: .createdBy)
    }

    /// The run image: `images`, else the older `stack.runImage`.
    public var runImage: String? { images?.first?.image ?? stack?.runImage?.image }
}

/// `io.buildpacks.buildpack.order` and `io.buildpacks.buildpack.order-extensions`: the order,
/// with `optional` written only when true (as pack writes it).
public struct OrderLabelGroup: Codable, Hashable, Sendable {
    public var group: [Entry]

    public struct Entry: Codable, Hashable, Sendable {
        public var id: String
        public var version: String?
        public var optional: Bool?
    }

    public init(_ group: OrderGroup) {
        self.group = group.group.map { Entry(id: $0.id.description, version: $0.version, optional: $0.optional ? true : nil) }
    }
}

/// An image configuration. https://github.com/opencontainers/image-spec/blob/main/config.md
///
/// Fields the spec defines are typed; Docker's extra top-level fields (`container_config`,
/// `docker_version`, ...) are not carried over when Cairn writes a derived config.
public struct ImageConfig: Codable, Hashable, Sendable {
    public var created: String?
    public var author: String?
    public var architecture: String
    public var os: String
    public var osVersion: String?
    public var osFeatures: [String]?
    public var variant: String?
    public var config: ExecutionConfig?
    public var rootfs: RootFS
    public var history: [History]?

    enum CodingKeys: String, CodingKey {
        case created, author, architecture, os, variant, config, rootfs, history
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public init(created: String? = nil, architecture: String, os: String, variant: String? = nil,
                config: ExecutionConfig? = nil, rootfs: RootFS = RootFS(), history: [History]? = nil) {
        self.created = created
        self.architecture = architecture
        self.os = os
        self.variant = variant
        self.config = config
        self.rootfs = rootfs
        self.history = history
    }

    /// The platform this config declares.
    public var platform: Platform {
        var p = Platform(architecture: architecture, os: os, variant: variant)
        p.osVersion = osVersion
        p.osFeatures = osFeatures
        return p
    }
}

/// The `config` object: how a container of the image runs.
public struct ExecutionConfig: Codable, Hashable, Sendable {
    public var user: String?
    public var exposedPorts: [String: EmptyObject]?
    public var env: [String]?
    public var entrypoint: [String]?
    public var cmd: [String]?
    public var volumes: [String: EmptyObject]?
    public var workingDir: String?
    public var labels: [String: String]?
    public var stopSignal: String?
    public var argsEscaped: Bool?

    enum CodingKeys: String, CodingKey {
        case user = "User"
        case exposedPorts = "ExposedPorts"
        case env = "Env"
        case entrypoint = "Entrypoint"
        case cmd = "Cmd"
        case volumes = "Volumes"
        case workingDir = "WorkingDir"
        case labels = "Labels"
        case stopSignal = "StopSignal"
        case argsEscaped = "ArgsEscaped"
    }

    public init(user: String? = nil, exposedPorts: [String: EmptyObject]? = nil, env: [String]? = nil,
                entrypoint: [String]? = nil, cmd: [String]? = nil, workingDir: String? = nil,
                labels: [String: String]? = nil) {
        self.user = user
        self.exposedPorts = exposedPorts
        self.env = env
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.workingDir = workingDir
        self.labels = labels
    }
}

/// `rootfs`: the layer diffIDs in order.
public struct RootFS: Codable, Hashable, Sendable {
    public var type: String = "layers"
    public var diffIDs: [Digest]

    enum CodingKeys: String, CodingKey {
        case type
        case diffIDs = "diff_ids"
    }

    public init(diffIDs: [Digest] = []) {
        self.diffIDs = diffIDs
    }
}

/// One `history` entry.
public struct History: Codable, Hashable, Sendable {
    public var created: String?
    public var author: String?
    public var createdBy: String?
    public var comment: String?
    public var emptyLayer: Bool?

    enum CodingKeys: String, CodingKey {
        case created, author, comment
        case createdBy = "created_by"
        case emptyLayer = "empty_layer"
    }

    public init(created: String? = nil, createdBy: String? = nil, comment: String? = nil, emptyLayer: Bool? = nil) {
        self.created = created
        self.createdBy = createdBy
        self.comment = comment
        self.emptyLayer = emptyLayer
    }
}

/// `{}`: the value type of `ExposedPorts` and `Volumes` maps.
public struct EmptyObject: Codable, Hashable, Sendable {
    public init() {}
    public init(from decoder: any Decoder) throws {
        _ = try decoder.container(keyedBy: AnyKey.self)
    }
    public func encode(to encoder: any Encoder) throws {
        _ = encoder.container(keyedBy: AnyKey.self)
    }
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

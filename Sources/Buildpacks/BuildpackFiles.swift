/// launch.toml (buildpack.md, Data Format > launch.toml).
public struct LaunchFile: Codable, Hashable, Sendable {
    public var labels: [Label]
    public var processes: [Process]
    public var slices: [Slice]
    /// The `[[bom]]` array, deprecated in Buildpack API 0.7 (so in every supported API): read
    /// only so the builder can warn that it is ignored.
    public var bom: [AnyTOML]?

    public struct Label: Codable, Hashable, Sendable {
        public var key: String
        public var value: String
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// A process as a buildpack declares it. Before Buildpack API 0.9 `command` was one string and
    /// `direct` chose exec vs shell; both spellings are read.
    public struct Process: Codable, Hashable, Sendable {
        public var type: ProcessType
        public var command: [String]
        public var args: [String]
        public var direct: Bool?
        public var isDefault: Bool
        public var workingDirectory: String?
        public var execEnv: [String]?
        /// Whether `command` was written as one string (Buildpack API < 0.9 only); not encoded.
        public var commandIsString = false

        enum CodingKeys: String, CodingKey {
            case type, command, args, direct
            case isDefault = "default"
            case workingDirectory = "working-dir"
            case execEnv = "exec-env"
        }

        public init(type: ProcessType, command: [String], args: [String] = [], isDefault: Bool = false,
                    workingDirectory: String? = nil, execEnv: [String]? = nil) {
            self.type = type
            self.command = command
            self.args = args
            self.isDefault = isDefault
            self.workingDirectory = workingDirectory
            self.execEnv = execEnv
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(ProcessType.self, forKey: .type)
            if let list = try? c.decode([String].self, forKey: .command) {
                command = list
            } else {
                command = [try c.decode(String.self, forKey: .command)]
                commandIsString = true
            }
            guard let first = command.first, !first.isEmpty else {
                throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [CodingKeys.command],
                                                        debugDescription: "command must not be empty"))
            }
            args = try c.decodeIfPresent([String].self, forKey: .args) ?? []
            direct = try c.decodeIfPresent(Bool.self, forKey: .direct)
            isDefault = try c.decodeIfPresent(Bool.self, forKey: .isDefault) ?? false
            workingDirectory = try c.decodeIfPresent(String.self, forKey: .workingDirectory)
            execEnv = try c.decodeIfPresent([String].self, forKey: .execEnv)
        }
    }

    public struct Slice: Codable, Hashable, Sendable {
        public var paths: [String]
        public init(paths: [String]) { self.paths = paths }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            paths = try c.decodeIfPresent([String].self, forKey: .paths) ?? []
        }
    }

    public init(labels: [Label] = [], processes: [Process] = [], slices: [Slice] = []) {
        self.labels = labels
        self.processes = processes
        self.slices = slices
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        labels = try c.decodeIfPresent([Label].self, forKey: .labels) ?? []
        processes = try c.decodeIfPresent([Process].self, forKey: .processes) ?? []
        slices = try c.decodeIfPresent([Slice].self, forKey: .slices) ?? []
        bom = try c.decodeIfPresent([AnyTOML].self, forKey: .bom)
        var seen = Set<ProcessType>()
        for (i, p) in processes.enumerated() where !seen.insert(p.type).inserted {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.processes, IndexKey(i), Process.CodingKeys.type],
                                                    debugDescription: "process type \"\(p.type)\" is declared twice"))
        }
        if processes.filter(\.isDefault).count > 1 {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.processes],
                                                    debugDescription: "only one process may have default = true"))
        }
        var keys = Set<String>()
        for l in labels where !keys.insert(l.key).inserted {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.labels],
                                                    debugDescription: "label \"\(l.key)\" is declared twice"))
        }
    }
}

struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(_ i: Int) { intValue = i }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

/// build.toml (buildpack.md, Data Format > build.toml).
public struct BuildFile: Codable, Hashable, Sendable {
    public var unmet: [Unmet]
    /// The deprecated `[[bom]]` array (see `LaunchFile.bom`).
    public var bom: [AnyTOML]?
    public struct Unmet: Codable, Hashable, Sendable {
        public var name: String
        public init(name: String) { self.name = name }
    }
    public init(unmet: [Unmet] = []) { self.unmet = unmet }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        unmet = try c.decodeIfPresent([Unmet].self, forKey: .unmet) ?? []
        bom = try c.decodeIfPresent([AnyTOML].self, forKey: .bom)
    }
}

/// store.toml (buildpack.md, Data Format > store.toml).
public struct StoreFile: Codable, Hashable, Sendable {
    public var metadata: [String: AnyTOML]?
    public init(metadata: [String: AnyTOML]? = nil) { self.metadata = metadata }
}

/// `<layers>/<layer>.toml` (buildpack.md, Layer Content Metadata).
public struct LayerMetadataFile: Codable, Hashable, Sendable {
    public var types: Types?
    public var metadata: [String: AnyTOML]?

    public struct Types: Codable, Hashable, Sendable {
        public var launch: Bool
        public var build: Bool
        public var cache: Bool
        public init(launch: Bool = false, build: Bool = false, cache: Bool = false) {
            self.launch = launch
            self.build = build
            self.cache = cache
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            launch = try c.decodeIfPresent(Bool.self, forKey: .launch) ?? false
            build = try c.decodeIfPresent(Bool.self, forKey: .build) ?? false
            cache = try c.decodeIfPresent(Bool.self, forKey: .cache) ?? false
        }
    }

    public init(types: Types? = nil, metadata: [String: AnyTOML]? = nil) {
        self.types = types
        self.metadata = metadata
    }

    enum CodingKeys: String, CodingKey {
        case types, metadata
        case launch, build, cache
    }

    /// `launch`, `build` and `cache` at the top level (Buildpack API < 0.6) are an error: they
    /// belong in `[types]`, and silently ignoring them would drop the layer.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        for key in [CodingKeys.launch, .build, .cache] where c.contains(key) {
            throw decoder.invalid("key \"\(key.stringValue)\" must be in the [types] table (as [types] \(key.stringValue) = true)")
        }
        types = try c.decodeIfPresent(Types.self, forKey: .types)
        metadata = try c.decodeIfPresent([String: AnyTOML].self, forKey: .metadata)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(types, forKey: .types)
        try c.encodeIfPresent(metadata, forKey: .metadata)
    }

    /// Unset types mean launch = build = cache = false.
    public var effectiveTypes: Types { types ?? Types() }

    /// The `exec-env` restriction in `[metadata]` (Buildpack API 0.12); nil means all.
    public var execEnv: [String]? {
        guard case .array(let items)? = metadata?["exec-env"] else { return nil }
        return items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }
}

/// `<layers>/config/metadata.toml` (platform.md, Data Format > metadata.toml).
public struct BuildMetadataFile: Codable, Hashable, Sendable {
    public var buildpackDefaultProcessType: String?
    public var buildpacks: [GroupElement]
    public var extensions: [GroupElement]?
    public var labels: [LaunchFile.Label]?
    public var processes: [Process]
    public var slices: [LaunchFile.Slice]
    /// Write each process's `command` as one string (Platform API < 0.10); not a key of the file.
    public var commandString = false

    /// A process as the platform sees it: `direct` resolved, owner recorded.
    public struct Process: Codable, Hashable, Sendable {
        public var type: ProcessType
        public var command: [String]
        public var args: [String]
        public var direct: Bool
        public var workingDirectory: String?
        public var buildpackID: BuildpackID
        public var execEnv: [String]

        enum CodingKeys: String, CodingKey {
            case type, command, args, direct
            case workingDirectory = "working-dir"
            case buildpackID = "buildpack-id"
            case execEnv = "exec-env"
        }

        public init(type: ProcessType, command: [String], args: [String], direct: Bool, workingDirectory: String?,
                    buildpackID: BuildpackID, execEnv: [String]) {
            self.type = type
            self.command = command
            self.args = args
            self.direct = direct
            self.workingDirectory = workingDirectory
            self.buildpackID = buildpackID
            self.execEnv = execEnv
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(ProcessType.self, forKey: .type)
            // Platform API < 0.10 writes `command` as one string (the reference lifecycle too).
            if let one = try? c.decode(String.self, forKey: .command) {
                command = [one]
            } else {
                command = try c.decode([String].self, forKey: .command)
            }
            args = try c.decodeIfPresent([String].self, forKey: .args) ?? []
            direct = try c.decodeIfPresent(Bool.self, forKey: .direct) ?? false
            workingDirectory = try c.decodeIfPresent(String.self, forKey: .workingDirectory)
            buildpackID = try c.decode(BuildpackID.self, forKey: .buildpackID)
            execEnv = try c.decodeIfPresent([String].self, forKey: .execEnv) ?? [ExecEnv.any]
        }

        public func encode(to encoder: any Encoder) throws { try encode(to: encoder, commandString: false) }

        /// As the reference writes it, no empty `args` (but with a command string); `exec-env` always (platform.md: it "MUST be
        /// set to `["*"]` if the process applies to all execution environments", which the
        /// reference leaves out). With `commandString` (Platform API < 0.10), `command` is its
        /// first word and the other words lead `args`.
        func encode(to encoder: any Encoder, commandString: Bool) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(type, forKey: .type)
            let allArgs = commandString ? Array(command.dropFirst()) + args : args
            if commandString { try c.encode(command.first ?? "", forKey: .command) } else { try c.encode(command, forKey: .command) }
            if !allArgs.isEmpty || commandString { try c.encode(allArgs, forKey: .args) }
            try c.encode(direct, forKey: .direct)
            try c.encodeIfPresent(workingDirectory, forKey: .workingDirectory)
            try c.encode(buildpackID, forKey: .buildpackID)
            try c.encode(execEnv, forKey: .execEnv)
        }
    }

    /// One process encoded with a command string (Platform API < 0.10).
    struct LegacyProcess: Encodable {
        let process: Process
        func encode(to encoder: any Encoder) throws { try process.encode(to: encoder, commandString: true) }
    }

    enum CodingKeys: String, CodingKey {
        case buildpacks, extensions, labels, processes, slices
        case buildpackDefaultProcessType = "buildpack-default-process-type"
    }

    public init(buildpackDefaultProcessType: String? = nil, buildpacks: [GroupElement] = [], extensions: [GroupElement]? = nil,
                labels: [LaunchFile.Label]? = nil, processes: [Process] = [], slices: [LaunchFile.Slice] = []) {
        self.buildpackDefaultProcessType = buildpackDefaultProcessType
        self.buildpacks = buildpacks
        self.extensions = extensions
        self.labels = labels
        self.processes = processes
        self.slices = slices
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        buildpackDefaultProcessType = try c.decodeIfPresent(String.self, forKey: .buildpackDefaultProcessType)
        buildpacks = try c.decodeIfPresent([GroupElement].self, forKey: .buildpacks) ?? []
        extensions = try c.decodeIfPresent([GroupElement].self, forKey: .extensions)
        labels = try c.decodeIfPresent([LaunchFile.Label].self, forKey: .labels)
        processes = try c.decodeIfPresent([Process].self, forKey: .processes) ?? []
        slices = try c.decodeIfPresent([LaunchFile.Slice].self, forKey: .slices) ?? []
    }

    /// Empty `slices` are left out, as the reference writes the file.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(buildpackDefaultProcessType, forKey: .buildpackDefaultProcessType)
        try c.encode(buildpacks, forKey: .buildpacks)
        try c.encodeIfPresent(extensions, forKey: .extensions)
        try c.encodeIfPresent(labels, forKey: .labels)
        if commandString {
            try c.encode(processes.map(LegacyProcess.init), forKey: .processes)
        } else {
            try c.encode(processes, forKey: .processes)
        }
        if !slices.isEmpty { try c.encode(slices, forKey: .slices) }
    }
}

/// Exec.d output: top-level `NAME = "value"` pairs (buildpack.md, Exec.d Output).
public struct ExecDOutput: Decodable, Hashable, Sendable {
    public var variables: [String: String]

    public init(from decoder: any Decoder) throws {
        let table = try decoder.singleValueContainer().decode([String: AnyTOML].self)
        var vars: [String: String] = [:]
        for (k, v) in table {
            guard case .string(let s) = v else { throw decoder.invalid("\(k) must be a string") }
            vars[k] = s
        }
        variables = vars
    }
}

/// project.toml, schema 0.2 (extensions/project-descriptor.md). The `[io.buildpacks]` table is
/// the nested `io` → `buildpacks` table in TOML terms.
public struct ProjectDescriptor: Codable, Hashable, Sendable {
    public var project: Project?
    public var io: IO?
    /// The legacy form (schema 0.1, pack's `[project]` + `[build]`): its `[build]` table.
    public var legacyBuild: LegacyBuild?

    /// `[build]` of a schema 0.1 descriptor: include/exclude, builder, `[[build.buildpacks]]`
    /// and `[[build.env]]`, with the meanings 0.2 gives them under `[io.buildpacks]`.
    public struct LegacyBuild: Codable, Hashable, Sendable {
        public var include: [String]?
        public var exclude: [String]?
        public var builder: String?
        public var buildpacks: [Buildpacks.Entry]?
        public var env: [Buildpacks.EnvVar]?
    }

    public struct Project: Codable, Hashable, Sendable {
        public var schemaVersion: APIVersion
        public var id: String?
        public var name: String?
        public var version: String?
        public var authors: [String]?
        public var documentationURL: String?
        public var sourceURL: String?
        public var licenses: [License]?
        public var metadata: [String: AnyTOML]?

        enum CodingKeys: String, CodingKey {
            case id, name, version, authors, licenses, metadata
            case schemaVersion = "schema-version"
            case documentationURL = "documentation-url"
            case sourceURL = "source-url"
        }
    }

    public struct IO: Codable, Hashable, Sendable {
        public var buildpacks: Buildpacks?
    }

    /// `[io.buildpacks]`.
    public struct Buildpacks: Codable, Hashable, Sendable {
        public var builder: String?
        public var include: [String]?
        public var exclude: [String]?
        public var group: [Entry]?
        public var pre: Group?
        public var post: Group?
        public var build: Build?

        public struct Group: Codable, Hashable, Sendable {
            public var group: [Entry]
        }

        public struct Build: Codable, Hashable, Sendable {
            public var env: [EnvVar]?
        }

        public struct EnvVar: Codable, Hashable, Sendable {
            public var name: String
            public var value: String
        }

        /// A buildpack reference: by id (+ version), by uri, or an inline script — exactly one kind.
        public struct Entry: Codable, Hashable, Sendable {
            public var id: String?
            public var version: String?
            public var uri: String?
            public var script: Script?

            public struct Script: Codable, Hashable, Sendable {
                public var api: APIVersion
                public var shell: String
                public var inline: String

                enum CodingKeys: String, CodingKey { case api, shell, inline }

                public init(from decoder: any Decoder) throws {
                    let c = try decoder.container(keyedBy: CodingKeys.self)
                    api = try c.decode(APIVersion.self, forKey: .api)
                    shell = try c.decodeIfPresent(String.self, forKey: .shell) ?? "/bin/sh"
                    inline = try c.decode(String.self, forKey: .inline)
                }
            }

            enum CodingKeys: String, CodingKey { case id, version, uri, script }

            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                id = try c.decodeIfPresent(String.self, forKey: .id)
                version = try c.decodeIfPresent(String.self, forKey: .version)
                uri = try c.decodeIfPresent(String.self, forKey: .uri)
                script = try c.decodeIfPresent(Script.self, forKey: .script)
                let kinds = [version != nil, uri != nil, script != nil].filter { $0 }.count
                if kinds > 1 {
                    throw decoder.invalid("give one of version, uri or script, not several")
                }
                if id == nil && uri == nil {
                    throw decoder.invalid("an entry needs an id or a uri")
                }
            }
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            builder = try c.decodeIfPresent(String.self, forKey: .builder)
            include = try c.decodeIfPresent([String].self, forKey: .include)
            exclude = try c.decodeIfPresent([String].self, forKey: .exclude)
            group = try c.decodeIfPresent([Entry].self, forKey: .group)
            pre = try c.decodeIfPresent(Group.self, forKey: .pre)
            post = try c.decodeIfPresent(Group.self, forKey: .post)
            build = try c.decodeIfPresent(Build.self, forKey: .build)
            if include != nil && exclude != nil {
                throw decoder.invalid("include and exclude are mutually exclusive")
            }
        }

        enum CodingKeys: String, CodingKey { case builder, include, exclude, group, pre, post, build }

        /// The 0.2 meaning of a legacy `[build]` table.
        init(legacy: LegacyBuild) throws {
            if legacy.include != nil && legacy.exclude != nil {
                throw ProjectDescriptorError.legacyIncludeAndExclude
            }
            builder = legacy.builder
            include = legacy.include
            exclude = legacy.exclude
            group = legacy.buildpacks
            build = legacy.env.map { Build(env: $0) }
        }
    }

    enum CodingKeys: String, CodingKey {
        case project = "_"
        case io
        case legacyBuild = "build"
    }

    /// The `[io.buildpacks]` table, if any.
    public var buildpacks: Buildpacks? { io?.buildpacks }

    /// The `[io.buildpacks]` table, else a legacy `[build]` table read the same way.
    public func buildpacksSettings() throws -> Buildpacks? {
        if let io = io?.buildpacks { return io }
        return try legacyBuild.map(Buildpacks.init(legacy:))
    }
}

public enum ProjectDescriptorError: Error, CustomStringConvertible, Equatable {
    case legacyIncludeAndExclude
    public var description: String { "[build]: include and exclude are mutually exclusive" }
}

/// `/cnb/lifecycle/lifecycle.toml`, the lifecycle descriptor (RFC 0049, as the reference and pack
/// write and read it): the Buildpack and Platform API versions it supports, and its version.
public struct LifecycleDescriptor: Codable, Hashable, Sendable {
    public var apis: APIs
    public var lifecycle: Lifecycle

    public struct APIs: Codable, Hashable, Sendable {
        public var buildpack: APISet
        public var platform: APISet
        public init(buildpack: APISet, platform: APISet) {
            self.buildpack = buildpack
            self.platform = platform
        }
    }

    public struct APISet: Codable, Hashable, Sendable {
        public var deprecated: [APIVersion]
        public var supported: [APIVersion]
        public init(deprecated: [APIVersion], supported: [APIVersion]) {
            self.deprecated = deprecated
            self.supported = supported
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            deprecated = try c.decodeIfPresent([APIVersion].self, forKey: .deprecated) ?? []
            supported = try c.decodeIfPresent([APIVersion].self, forKey: .supported) ?? []
        }
    }

    public struct Lifecycle: Codable, Hashable, Sendable {
        public var version: String
        public init(version: String) { self.version = version }
    }

    public init(apis: APIs, lifecycle: Lifecycle) {
        self.apis = apis
        self.lifecycle = lifecycle
    }
}

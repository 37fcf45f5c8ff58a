/// A content descriptor. https://github.com/opencontainers/image-spec/blob/main/descriptor.md
public struct Descriptor: Codable, Hashable, Sendable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var urls: [String]?
    public var annotations: [String: String]?
    public var data: String?
    public var artifactType: String?
    /// Only meaningful in an image index's `manifests`.
    public var platform: Platform?

    public init(mediaType: String, digest: Digest, size: Int64, annotations: [String: String]? = nil,
                platform: Platform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.platform = platform
    }
}

/// The platform of an image. https://github.com/opencontainers/image-spec/blob/main/image-index.md
public struct Platform: Codable, Hashable, Sendable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var osVersion: String?
    public var osFeatures: [String]?
    public var variant: String?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public init(architecture: String, os: String, variant: String? = nil) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
    }

    /// The platform this process runs on, in GOARCH/GOOS spelling.
    public static var host: Platform {
        #if arch(x86_64)
        return Platform(architecture: "amd64", os: "linux")
        #elseif arch(arm64)
        return Platform(architecture: "arm64", os: "linux", variant: "v8")
        #else
        return Platform(architecture: "unknown", os: "linux")
        #endif
    }

    public var description: String {
        [os, architecture, variant].compactMap { $0 }.joined(separator: "/")
    }
}

/// An image manifest, OCI or Docker schema 2 (same shape).
/// https://github.com/opencontainers/image-spec/blob/main/manifest.md
public struct Manifest: Codable, Hashable, Sendable {
    public var schemaVersion: Int = 2
    public var mediaType: String?
    public var artifactType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(mediaType: String? = MediaType.ociManifest, config: Descriptor, layers: [Descriptor],
                annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
        self.annotations = annotations
    }
}

/// An image index or Docker manifest list. https://github.com/opencontainers/image-spec/blob/main/image-index.md
public struct ImageIndex: Codable, Hashable, Sendable {
    public var schemaVersion: Int = 2
    public var mediaType: String?
    public var artifactType: String?
    public var manifests: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(mediaType: String? = MediaType.ociIndex, manifests: [Descriptor] = [],
                annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.manifests = manifests
        self.annotations = annotations
    }
}

/// The `oci-layout` file. https://github.com/opencontainers/image-spec/blob/main/image-layout.md
public struct ImageLayoutHeader: Codable, Hashable, Sendable {
    public var imageLayoutVersion: String = "1.0.0"
    public init() {}
}

extension Descriptor {
    /// This layer as an OCI manifest names it: Docker's gzip layer type is the same bytes as OCI's.
    public var asOCILayer: Descriptor {
        var d = self
        if d.mediaType == MediaType.dockerLayerGzip { d.mediaType = MediaType.ociLayerGzip }
        return d
    }
}

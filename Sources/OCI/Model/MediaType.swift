/// Media types of the OCI image spec and of Docker's schema 2, which Cairn reads as well.
/// https://github.com/opencontainers/image-spec/blob/main/media-types.md
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayout = "application/vnd.oci.layout.header.v1+json"
    public static let ociLayerTar = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let ociEmpty = "application/vnd.oci.empty.v1+json"

    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    /// Media types whose document is an image manifest.
    public static let manifests: Set<String> = [ociManifest, dockerManifest]
    /// Media types whose document is an index of manifests.
    public static let indexes: Set<String> = [ociIndex, dockerManifestList]

    /// The compression a layer media type implies, or nil for an unknown layer type.
    public static func layerCompression(_ mediaType: String) -> Compression? {
        switch mediaType {
        case ociLayerTar, "application/vnd.oci.image.layer.nondistributable.v1.tar": return Compression.none
        case ociLayerGzip, dockerLayerGzip, dockerForeignLayerGzip,
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":
            return .gzip
        case ociLayerZstd, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": return .zstd
        default: return nil
        }
    }
}

/// Layer compression.
public enum Compression: String, Sendable, CaseIterable, Codable {
    case gzip, zstd, none

    /// The OCI layer media type for this compression.
    public var layerMediaType: String {
        switch self {
        case .gzip: return MediaType.ociLayerGzip
        case .zstd: return MediaType.ociLayerZstd
        case .none: return MediaType.ociLayerTar
        }
    }
}

/// Well-known annotation keys. https://github.com/opencontainers/image-spec/blob/main/annotations.md
public enum Annotation {
    public static let refName = "org.opencontainers.image.ref.name"
    public static let created = "org.opencontainers.image.created"
}

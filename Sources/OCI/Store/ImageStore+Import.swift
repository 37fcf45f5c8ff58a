import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// The fixed creation time of reproducible images: 1980-01-01T00:00:01Z.
public let normalizedCreated = "1980-01-01T00:00:01Z"

/// RFC 3339 UTC time for seconds since the epoch (`2006-01-02T15:04:05Z`), as Foundation's ISO
/// 8601 format style writes it. Written out by hand for years 0-9999: that style's first use in
/// a process (its calendar and time zone) cost about 0.25 ms, paid by every signed build's
/// provenance and every export with SOURCE_DATE_EPOCH.
public func rfc3339(_ seconds: Int64) -> String {
    var time = time_t(seconds)
    var parts = tm()
    guard gmtime_r(&time, &parts) != nil, (0...9999).contains(Int(parts.tm_year) + 1900) else {
        return Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(.iso8601)
    }
    func digits(_ value: Int32, _ width: Int) -> String {
        let s = String(value)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    return digits(parts.tm_year + 1900, 4) + "-" + digits(parts.tm_mon + 1, 2) + "-" + digits(parts.tm_mday, 2) + "T"
        + digits(parts.tm_hour, 2) + ":" + digits(parts.tm_min, 2) + ":" + digits(parts.tm_sec, 2) + "Z"
}

extension ImageStore {
    /// Makes a new image from `base` (or from nothing) plus `layers`, writes config and manifest,
    /// and records it under `reference`. Config `created` and history times are `created`
    /// (reproducible: SOURCE_DATE_EPOCH or the fixed time).
    /// - Returns: the new image.
    func commitImage(base: StoredImage?, layers: [LayerResult], history: [History], created: String,
                     reference: String, configure: (inout ImageConfig) -> Void = { _ in }) throws -> StoredImage {
        do {
            var config: ImageConfig
            if let base {
                config = base.config
            } else {
                let p = Platform.host
                config = ImageConfig(architecture: p.architecture, os: p.os, variant: p.variant,
                                     config: ExecutionConfig(), rootfs: RootFS())
            }
            config.created = created
            config.rootfs.diffIDs += layers.map(\.diffID)
            config.history = (config.history ?? []) + history
            configure(&config)
            return try commitManifest(config: config, layers: (base?.manifest.layers ?? []) + layers.map(\.descriptor), reference: reference)
        }
    }

    /// Writes `config` and a manifest of `layers` (blobs already in the store), and records it
    /// under `reference`, all as one write: `prune` cannot take the new blobs before they are named.
    func commitManifest(config: ImageConfig, layers: [Descriptor], reference: String, naming: Bool = true) throws -> StoredImage {
        do {
            let configDescriptor = try writeBlobs([(try CanonicalJSON.encode(config), MediaType.ociConfig)])[0]
            let manifest = Manifest(config: configDescriptor, layers: layers.map(\.asOCILayer))
            let manifestDescriptor = try writeBlobs([(try CanonicalJSON.encode(manifest), MediaType.ociManifest)])[0]
            if naming { try tag([(manifestDescriptor, reference)]) }
            return try load(manifestDescriptor, name: try Self.storedName(reference))
        }
    }
}

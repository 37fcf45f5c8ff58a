/// A Buildpack or Platform API version: `<major>.<minor>`, or `<major>` meaning `<major>.0`.
public struct APIVersion: Hashable, Comparable, Sendable, LosslessStringConvertible {
    public let major: UInt64
    public let minor: UInt64

    public init(_ major: UInt64, _ minor: UInt64) {
        self.major = major
        self.minor = minor
    }

    /// Parses `major[.minor]`.
    public init?(_ description: String) {
        let parts = description.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count),
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let major = UInt64(parts[0]), let minor = parts.count == 2 ? UInt64(parts[1]) : 0
        else { return nil }
        self.init(major, minor)
    }

    public var description: String { "\(major).\(minor)" }

    public static func < (l: APIVersion, r: APIVersion) -> Bool { (l.major, l.minor) < (r.major, r.minor) }

    /// Whether this version has `feature` (introduced at or before this version).
    public func supports(_ feature: BuildpackFeature) -> Bool { self >= feature.since }
    public func supports(_ feature: PlatformFeature) -> Bool { self >= feature.since }
}

#if !hasFeature(Embedded)
// The launcher's Embedded Swift build has no Codable (its existential coders); the lifecycle's
// TOML and JSON files decode API versions through this.
extension APIVersion: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let v = APIVersion(s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "\"\(s)\" is not an API version (expected <major>.<minor>)")
        }
        self = v
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
#endif

/// Which API versions this lifecycle implements — declared once.
public enum SupportedAPIs {
    public static let buildpack: [APIVersion] = (7...12).map { APIVersion(0, $0) }
    public static let platform: [APIVersion] = (7...15).map { APIVersion(0, $0) }
    /// Supported but deprecated (a warning is printed).
    public static let deprecatedBuildpack: [APIVersion] = []
    public static let deprecatedPlatform: [APIVersion] = []

    /// The Platform API `cairn` drives a lifecycle at when its lifecycle.toml does not say (the
    /// lifecycle itself refuses to run without `CNB_PLATFORM_API`).
    public static let defaultPlatform = APIVersion(0, 15)

    public static func isSupported(buildpack v: APIVersion) -> Bool { buildpack.contains(v) }
    public static func isSupported(platform v: APIVersion) -> Bool { platform.contains(v) }

    /// "0.7, 0.8, ... 0.12" for error messages.
    public static func list(_ versions: [APIVersion]) -> String {
        versions.map { $0.description }.joined(separator: ", ")
    }
}

/// Buildpack API behaviour that changed between versions, each with the version that introduced it.
public enum BuildpackFeature: Sendable, CaseIterable {
    /// `[[targets]]` in buildpack.toml and `CNB_TARGET_*` (0.10).
    case targets
    /// `exec-env` and `CNB_EXEC_ENV` (0.12).
    case execEnv
    /// SBOM files `<layer>.sbom.<ext>` (0.7).
    case sbomFiles
    /// launch.toml `command` is an array and `direct` is gone (0.9).
    case commandArray
    /// `CNB_PLATFORM_DIR`, `CNB_BUILD_PLAN_PATH` (detect), `CNB_LAYERS_DIR`, `CNB_BP_PLAN_PATH`
    /// (build) besides the positional arguments (0.8).
    case pathVariables

    public var since: APIVersion {
        switch self {
        case .sbomFiles: return APIVersion(0, 7)
        case .commandArray: return APIVersion(0, 9)
        case .pathVariables: return APIVersion(0, 8)
        case .targets: return APIVersion(0, 10)
        case .execEnv: return APIVersion(0, 12)
        }
    }
}

/// Platform API behaviour that changed between versions.
public enum PlatformFeature: Sendable, CaseIterable {
    /// `run.toml` and `-run` (0.12); before, the run image and its mirrors come from
    /// `stack.toml` (`-stack`, `CNB_STACK_PATH`, `/cnb/stack.toml`) and the exporter takes `-run-image`.
    case runTOML
    /// `CNB_EXEC_ENV` (0.15).
    case execEnv
    /// System buildpacks, `system.toml` (0.15).
    case systemBuildpacks
    /// The restorer records `-build-image` in analyzed.toml `[build-image]` (0.13).
    case buildImageRecord
    /// Image extensions: `[[order-extensions]]`, `bin/generate`, `-generated` (0.10).
    case imageExtensions
    /// Export to an OCI layout, `-layout` (0.12, experimental).
    case layoutExport
    /// metadata.toml `command` is an array (0.10); before, a string with the rest in `args`.
    case metadataCommandArray
    /// The builder copies SBOM files to `<layers>/sbom/{launch,build}` (0.8).
    case sbomDirectory

    public var since: APIVersion {
        switch self {
        case .runTOML, .layoutExport: return APIVersion(0, 12)
        case .sbomDirectory: return APIVersion(0, 8)
        case .buildImageRecord: return APIVersion(0, 13)
        case .imageExtensions, .metadataCommandArray: return APIVersion(0, 10)
        case .execEnv, .systemBuildpacks: return APIVersion(0, 15)
        }
    }
}

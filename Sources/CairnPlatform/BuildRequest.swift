import Foundation
import OCI
import Sandbox

/// What `cairn build` was asked to do.
public struct BuildRequest: Sendable {
    public var image: String
    /// The app's source: a directory, or a zip (or jar) file whose entries are the app.
    public var appPath: String
    public var builder: String
    public var buildpacks: [String] = []
    /// project.toml's `[[io.buildpacks.pre.group]]`/`post`: put before/after every group.
    public var preBuildpacks: [String] = []
    public var postBuildpacks: [String] = []
    public var env: [String] = []
    public var runImage: String?
    /// project.toml's `include`/`exclude`, applied to the workspace copy of the app.
    public var sourceFilter: SourceFilter?
    /// `--lifecycle DIR|REF`: run this lifecycle instead of the builder's.
    public var lifecycle: String?
    public var clearCache = false
    /// `--ca-certs FILE`: a CA bundle buildpacks and extension RUNs trust (mounted at
    /// `/cairn/ca/ca-certificates.crt`, named by the usual variables in the platform env).
    public var caCertificates: String?
    /// `--compression-level`: the gzip level of the app image's new layers (Cairn's lifecycle
    /// reads `CAIRN_COMPRESSION_LEVEL`; other lifecycles ignore it).
    public var compressionLevel: Int32?
    public var network = true
    public var quiet = false
    /// `--timeout`: how long the lifecycle may run (and the text the user gave, for errors).
    public var timeout: (limit: Duration, text: String)?
    /// `--max-processes`: processes the build user may have at once (a fork bomb stops there).
    public var maxProcesses = BuildRequest.defaultMaxProcesses
    public static let defaultMaxProcesses = 4096
    /// `--default-process` (pack's `-D`): the exporter's `-process-type`.
    public var defaultProcess: String?
    /// `--previous-image`: the image whose layers the build reuses, instead of `image`'s.
    public var previousImage: String?
    /// `--uid`/`--gid`: the build user instead of the builder's CNB_USER_ID/CNB_GROUP_ID.
    public var uid: Int?
    public var gid: Int?
    /// `--workspace`: where the app is in the build container (default /workspace).
    public var workspace: String?
    /// `--volume`: host paths bound into the build container (read-only unless asked).
    public var volumes: [Mount] = []
    /// `--creation-time`: the app image's `created` time (SOURCE_DATE_EPOCH, seconds).
    public var creationTime: Int?
    /// `--sbom-output-dir`: where the build's SBOM files (`<layers>/sbom`) are copied.
    public var sbomOutputDirectory: String?

    public init(image: String, appPath: String, builder: String) {
        self.image = image
        self.appPath = appPath
        self.builder = builder
    }

    /// The app directory inside the build container.
    public var appDirectory: String { workspace ?? "/workspace" }

    /// Paths of the build container a `--volume` or `--workspace` may not take: the lifecycle's
    /// and this platform's own (pack refuses /cnb and /layers the same way).
    static let reservedPaths = ["/cnb", "/layers", "/platform", "/cache", "/layout", "/cairn", "/proc", "/dev", "/tmp"]

    /// A container path that is absolute, normalized, not `/` and outside the reserved paths.
    /// - Throws: `PlatformError.invalidArgument` naming `option` and what was expected.
    public static func checkContainerPath(_ path: String, option: String) throws {
        let clean = URL(fileURLWithPath: path).standardizedFileURL.path
        guard path.hasPrefix("/"), clean != "/", !path.contains("/../") else {
            throw PlatformError.invalidArgument(option, reason: "expected an absolute path in the build container other than /")
        }
        if let taken = reservedPaths.first(where: { clean == $0 || clean.hasPrefix($0 + "/") }) {
            throw PlatformError.invalidArgument(option, reason: "\(taken) belongs to the lifecycle; choose another path")
        }
    }

    /// `HOST:TARGET[:ro|rw]` as pack's and docker's `--volume` take it (read-only by default).
    /// - Throws: `PlatformError.invalidArgument` naming the volume and what was expected.
    public static func volume(_ spec: String) throws -> Mount {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let option = "--volume \(spec)"
        guard (2...3).contains(parts.count), !parts[0].isEmpty, !parts[1].isEmpty else {
            throw PlatformError.invalidArgument(option, reason: "expected HOST-PATH:TARGET-PATH[:ro|rw]")
        }
        var writable = false
        if parts.count == 3 {
            guard ["ro", "rw"].contains(parts[2]) else { throw PlatformError.invalidArgument(option, reason: "the mode must be ro or rw, not \(parts[2])") }
            writable = parts[2] == "rw"
        }
        let host = URL(fileURLWithPath: parts[0]).standardizedFileURL.path
        guard FileManager.default.fileExists(atPath: host) else { throw PlatformError.invalidArgument(option, reason: "\(host) does not exist on this host") }
        try checkContainerPath(parts[1], option: option)
        if parts[1] == "/workspace" || parts[1].hasPrefix("/workspace/") {
            throw PlatformError.invalidArgument(option, reason: "/workspace holds the app; choose another path")
        }
        return Mount(host, at: URL(fileURLWithPath: parts[1]).standardizedFileURL.path, writable: writable)
    }

    /// `--creation-time now|SECONDS` as pack takes it.
    public static func creationTime(_ text: String, now: Date = Date()) throws -> Int {
        if text == "now" { return Int(now.timeIntervalSince1970) }
        guard let seconds = Int(text), seconds >= 0 else {
            throw PlatformError.invalidArgument("--creation-time \(text)", reason: "expected now or a Unix time in seconds, e.g. 1641013200")
        }
        return seconds
    }
}

import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// An environment under construction, with the spec's modification rules
/// (buildpack.md, Environment Variable Modification Rules).
public struct BuildEnvironment: Sendable, Equatable {
    public private(set) var variables: [String: String]

    /// POSIX path variables and the layer subdirectory that feeds them during build
    /// (buildpack.md, Layer Paths).
    public static let buildRootDirs: [(variable: String, subdirectory: String)] = [
        ("PATH", "bin"), ("LD_LIBRARY_PATH", "lib"), ("LIBRARY_PATH", "lib"), ("CPATH", "include"),
        ("PKG_CONFIG_PATH", "pkgconfig"),
    ]
    public static let pathVariables: Set<String> = Set(buildRootDirs.map(\.variable))

    /// Variables of the lifecycle's own environment passed on to buildpacks; the platform spec
    /// says buildpacks must not assume others are inherited.
    public static let inherited: Set<String> = pathVariables.union([
        "HOME", "HOSTNAME", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
        "LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR",
    ])

    public init(variables: [String: String]) {
        self.variables = variables
    }

    /// The inherited part of the lifecycle's environment.
    public static func base(from environment: [String: String]) -> BuildEnvironment {
        BuildEnvironment(variables: environment.filter { inherited.contains($0.key) })
    }

    public subscript(name: String) -> String? {
        get { variables[name] }
        set { variables[name] = newValue }
    }

    /// The modification a file's suffix asks for.
    public typealias Action = EnvFiles.Action

    /// Prepends `value` to a path-list variable (no dangling separator when it was empty).
    public mutating func prependPath(_ name: String, _ value: String) {
        variables[name] = EnvFiles.prependingPath(value, to: variables[name])
    }

    /// Applies one env directory (`env/`, `env.build/`, `env.launch/<process>/`, `<platform>/env`
    /// with its own default action), by the rules the launcher shares (`EnvFiles`).
    /// - Throws: `LifecycleError.io` when a file cannot be read.
    public mutating func apply(envDirectory dir: String, defaultAction: Action = .override) throws {
        try EnvFiles.apply(names: Self.files(in: dir).map(\.name), read: { try Self.read(dir + "/" + $0) },
                           to: &variables, defaultAction: defaultAction)
    }

    /// User-provided variables from `<platform>/env/`: path variables are prepended, others override
    /// (buildpack.md, Provided by the Platform).
    public mutating func applyPlatform(envDirectory dir: String) throws {
        for (name, path) in Self.files(in: dir) {
            let value = try Self.read(path)
            if Self.pathVariables.contains(name) {
                prependPath(name, value)
            } else {
                variables[name] = value
            }
        }
    }

    /// The regular files of an env directory, in byte order of names (none if it does not exist).
    static func files(in dir: String) -> [(name: String, path: String)] {
        let names = EnvFiles.sorted((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
        return names.map { ($0, dir + "/" + $0) }.filter { entry in
            FS.exists(entry.path) && !FS.isDirectory(entry.path)
        }
    }

    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LifecycleError.io(operation: "read", path: path, reason: "unreadable")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

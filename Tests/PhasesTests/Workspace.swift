import Buildpacks
import Foundation
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

let lifecycleBinary = ProcessInfo.processInfo.environment["LIFECYCLE_BIN"] ?? packageRoot + "/.build/debug/lifecycle"
let genericBin = fixturesRoot + "/lifecycle/generic/bin"
/// Buildpacks run as this user when the tests run as root.
let cnbUser = 1000

/// A lifecycle workspace in a temp dir: app, layers, platform, buildpacks, out (what fixture
/// buildpacks record), build-config.
final class Workspace {
    let tmp = TempDir("lifecycle")
    var root: String { tmp.path }
    let app: String, layers: String, platform: String, buildpacks: String, extensions: String, out: String, buildConfig: String

    init() throws {
        app = tmp.sub("app")
        layers = tmp.sub("layers")
        platform = tmp.sub("platform")
        buildpacks = tmp.sub("buildpacks")
        extensions = tmp.sub("extensions")
        out = tmp.sub("out")
        buildConfig = tmp.sub("build-config")
        chmod(root, 0o755)
        for d in [app, out, layers] {
            chmod(d, 0o777)
            if geteuid() == 0 { chown(d, uid_t(cnbUser), gid_t(cnbUser)) }
        }
    }

    /// A component buildpack using the generic fixture scripts.
    func buildpack(_ id: String, _ version: String = "1.0.0", api: String = "0.12", extra: String = "") throws {
        let dir = "\(buildpacks)/\(id.replacingOccurrences(of: "/", with: "_"))/\(version)"
        try writeFile(dir + "/buildpack.toml", """
            api = "\(api)"
            [buildpack]
            id = "\(id)"
            version = "\(version)"
            \(extra)
            """)
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        for f in ["detect", "build"] {
            try? FileManager.default.removeItem(atPath: dir + "/bin/" + f)
            try FileManager.default.copyItem(atPath: genericBin + "/" + f, toPath: dir + "/bin/" + f)
        }
    }

    /// A composite buildpack with `order` (TOML of its [[order]] tables).
    func composite(_ id: String, _ version: String = "1.0.0", order: String) throws {
        let dir = "\(buildpacks)/\(id)/\(version)"
        try writeFile(dir + "/buildpack.toml", "api = \"0.12\"\n[buildpack]\nid = \"\(id)\"\nversion = \"\(version)\"\n\(order)\n")
    }

    /// An image extension; with `detect = false` it has no bin/detect and passes with `plan`; with
    /// `generate` it has the generic bin/generate.
    @discardableResult
    func imageExtension(_ id: String, _ version: String = "1.0.0", plan: String? = nil, detect: Bool = true,
                        generate: Bool = false) throws -> String {
        let dir = "\(extensions)/\(id)/\(version)"
        try writeFile(dir + "/extension.toml", "api = \"0.12\"\n[extension]\nid = \"\(id)\"\nversion = \"\(version)\"\n")
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        if detect {
            try FileManager.default.copyItem(atPath: genericBin + "/detect", toPath: dir + "/bin/detect")
        } else if let plan {
            try writeFile(dir + "/detect/plan.toml", plan)
        }
        if generate { try FileManager.default.copyItem(atPath: genericBin + "/generate", toPath: dir + "/bin/generate") }
        return dir
    }

    /// Writes order.toml from a compact form: [["a@1.0.0", "b@1.0.0?"]] (`?` = optional).
    func order(_ groups: [[String]], extensions: [[String]]? = nil) throws {
        func tables(_ key: String, _ groups: [[String]]) -> String {
            groups.map { g in
                "[[\(key)]]\n" + g.map { e in
                    let optional = e.hasSuffix("?")
                    let parts = (optional ? String(e.dropLast()) : e).split(separator: "@")
                    return "[[\(key).group]]\nid = \"\(parts[0])\"\nversion = \"\(parts.count > 1 ? String(parts[1]) : "1.0.0")\"\n" + (optional ? "optional = true\n" : "")
                }.joined()
            }.joined(separator: "\n")
        }
        try writeFile(root + "/order.toml", tables("order", groups) + "\n" + (extensions.map { tables("order-extensions", $0) } ?? ""))
    }

    func appFile(_ name: String, _ content: String) throws {
        try writeFile(app + "/" + name, content, mode: 0o755)
    }

    func platformEnv(_ name: String, _ value: String) throws {
        try writeFile(platform + "/env/" + name, value)
    }

    /// Runs a phase of the real lifecycle binary with CNB_* pointing into this workspace.
    func run(_ phase: String, _ args: [String] = [], env extra: [String: String] = [:]) throws -> RunResult {
        var env: [String: String] = [
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": root,
            CNBEnv.platformAPI: "0.15",
            CNBEnv.appDir: app,
            CNBEnv.layersDir: layers,
            CNBEnv.platformDir: platform,
            CNBEnv.buildpacksDir: buildpacks,
            CNBEnv.extensionsDir: extensions,
            CNBEnv.buildConfigDir: buildConfig,
            CNBEnv.orderPath: root + "/order.toml",
            CNBEnv.systemPath: root + "/system.toml",
        ]
        if geteuid() == 0 {
            env[CNBEnv.userID] = String(cnbUser)
            env[CNBEnv.groupID] = String(cnbUser)
        }
        env.merge(extra) { $1 }
        return try TestSupport.run([lifecycleBinary, phase] + args, cwd: root, environment: env)
    }

    func group() throws -> GroupFile { try TOMLFile.read(GroupFile.self, from: layers + "/group.toml") }
    func plan() throws -> PlanFile { try TOMLFile.read(PlanFile.self, from: layers + "/plan.toml") }
    func analyzed() throws -> AnalyzedFile { try TOMLFile.read(AnalyzedFile.self, from: layers + "/analyzed.toml") }
    func metadata() throws -> BuildMetadataFile { try TOMLFile.read(BuildMetadataFile.self, from: layers + "/config/metadata.toml") }

    /// The environment a fixture buildpack recorded (`detect` or `build`).
    func recordedEnv(_ phase: String, _ name: String) throws -> [String: String] {
        let text = try String(contentsOfFile: "\(out)/\(phase)-\(name).env", encoding: .utf8)
        var env: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            env[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return env
    }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
}

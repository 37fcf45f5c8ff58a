import Foundation
import TestSupport

/// Inputs shared by the differential cases: the generic fixture buildpacks of the phase tests
/// (`Tests/Fixtures/lifecycle/generic`, scripted by files in the app directory), orders, groups.
extension CaseRoot {
    static let genericBin = fixturesRoot + "/lifecycle/generic/bin"

    var app: String { path + "/app" }
    var layers: String { path + "/layers" }
    var buildpacks: String { path + "/buildpacks" }
    var platform: String { path + "/platform" }

    /// The directories every phase case has: app, out (what the fixture buildpacks record) and
    /// layers writable by the CNB user; buildpacks and platform read-only.
    func standardDirectories() throws {
        for d in ["app", "out", "layers", "home"] { try writable(d) }
        try FileManager.default.createDirectory(atPath: buildpacks, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: platform + "/env", withIntermediateDirectories: true)
    }

    /// A component buildpack running the generic detect and build scripts.
    func buildpack(_ id: String, _ version: String = "1.0.0", api: String, extra: String = "") throws {
        let dir = "\(buildpacks)/\(id.replacingOccurrences(of: "/", with: "_"))/\(version)"
        try writeFile(dir + "/buildpack.toml", "api = \"\(api)\"\n[buildpack]\nid = \"\(id)\"\nversion = \"\(version)\"\n\(extra)\n")
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        for f in ["detect", "build"] {
            try FileManager.default.copyItem(atPath: Self.genericBin + "/" + f, toPath: dir + "/bin/" + f)
        }
    }

    /// A composite buildpack with `order` (its [[order]] tables as TOML).
    func composite(_ id: String, _ version: String = "1.0.0", api: String, order: String) throws {
        try writeFile("\(buildpacks)/\(id)/\(version)/buildpack.toml",
                      "api = \"\(api)\"\n[buildpack]\nid = \"\(id)\"\nversion = \"\(version)\"\n\(order)\n")
    }

    /// order.toml from a compact form: [["a", "b?"]] (`?` = optional; version 1.0.0 unless `id@v`).
    func order(_ groups: [[String]]) throws {
        try write("order.toml", Self.orderTables("order", groups))
    }

    static func orderTables(_ key: String, _ groups: [[String]]) -> String {
        groups.map { g in
            "[[\(key)]]\n" + g.map { e in
                let optional = e.hasSuffix("?")
                let parts = (optional ? String(e.dropLast()) : e).split(separator: "@")
                let version = parts.count > 1 ? String(parts[1]) : "1.0.0"
                return "[[\(key).group]]\nid = \"\(parts[0])\"\nversion = \"\(version)\"\n" + (optional ? "optional = true\n" : "")
            }.joined()
        }.joined(separator: "\n")
    }

    /// A file in the app directory (the generic scripts read `detect-plan-<id>@<v>.toml`,
    /// `detect-exit-<id>@<v>`, `build-<id>@<v>.sh`).
    func appFile(_ name: String, _ content: String, mode: Int = 0o644) throws {
        try writeFile(app + "/" + name, content, mode: mode)
        try own("app")
    }
}

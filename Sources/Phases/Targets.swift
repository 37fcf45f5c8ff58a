import Buildpacks
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// The target buildpacks see in `CNB_TARGET_*` (buildpack.md, Environment > Targets).
public enum BuildTarget {
    /// `CNB_TARGET_*` for the run image's target. What analyzed.toml does not say comes from the
    /// build environment the phase runs in, as the reference lifecycle fills it: `linux`, the
    /// machine's architecture, and `ID`/`VERSION_ID` of `/etc/os-release` (the build and run
    /// images of a stack share their distribution). So a buildpack can rely on them whether or
    /// not the platform ran the analyzer with a labelled run image.
    static func environment(_ target: TargetData?, osReleasePath: String = "/etc/os-release") -> [String: String] {
        var t = target ?? TargetData()
        if t.os?.isEmpty ?? true { t.os = "linux" }
        if t.arch?.isEmpty ?? true { t.arch = hostArchitecture() }
        if t.distro?.name?.isEmpty ?? true, let release = osRelease(osReleasePath) {
            t.distro = TargetData.Distro(name: release.name, version: release.version)
        }
        var env: [String: String] = [:]
        env[CNBEnv.targetOS] = t.os
        env[CNBEnv.targetArch] = t.arch
        env[CNBEnv.targetArchVariant] = t.variant
        env[CNBEnv.targetDistroName] = t.distro?.name
        env[CNBEnv.targetDistroVersion] = t.distro?.version
        return env.filter { !$0.value.isEmpty }
    }

    /// The machine's architecture as OCI (and Go) name it: `amd64`, `arm64`, ….
    static func hostArchitecture() -> String {
        var u = utsname()
        guard uname(&u) == 0 else { return "" }
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch machine {
        case "x86_64": return "amd64"
        case "aarch64": return "arm64"
        case "i386", "i686": return "386"
        default: return machine
        }
    }

    /// `ID` and `VERSION_ID` of an os-release file.
    public static func osRelease(_ path: String) -> (name: String, version: String)? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            var value = line[line.index(after: eq)...]
            while let f = value.first, f == "\"" || f == "'" { value = value.dropFirst() }
            while let l = value.last, l == "\"" || l == "'" { value = value.dropLast() }
            fields[String(line[..<eq])] = String(value)
        }
        guard let id = fields["ID"] else { return nil }
        return (id, fields["VERSION_ID"] ?? "")
    }
}

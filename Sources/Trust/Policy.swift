import CNBCore
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// What `cairn verify --policy FILE` requires of an image beyond a valid signature, read from
/// TOML or JSON (the same keys):
///
///     require-provenance = true                      # a verified SLSA provenance attestation
///     allowed-builders = ["sha256:…", "docker.io/library/my-builder"]   # digest or reference
///     allowed-buildpacks = ["examples/*", "paketo-buildpacks/node@1.*"] # globs over id@version
///     require-signed-run-image = true                # the run image carries a valid signature too
///     buildpackage-keys = ["keys/team.pub"]          # builder create, build --buildpack: only
///                                                    # buildpackages signed by one of these keys
///
/// Setting `allowed-builders`, `allowed-buildpacks` or `require-signed-run-image` implies
/// `require-provenance`: they are answered from it.
public struct TrustPolicy: Sendable {
    public var requireProvenance = false
    public var allowedBuilders: [String]?
    public var allowedBuildpacks: [String]?
    public var requireSignedRunImage = false
    /// Public keys (PEM paths, relative to the policy file) a buildpackage must be signed by.
    public var buildpackageKeys: [String] = []

    public init() {}

    public static func load(_ path: String) throws -> TrustPolicy {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrustError.io(path: path, reason: "cannot be read") }
        let text = String(decoding: data, as: UTF8.self)
        var p = TrustPolicy()
        func strings(_ v: Any?, _ key: String) throws -> [String]? {
            guard let v else { return nil }
            guard let list = v as? [String] else { throw TrustError.artifact(what: "policy \(path)", reason: "\(key) must be a list of strings") }
            return list
        }
        func bool(_ v: Any?, _ key: String) throws -> Bool {
            guard let v else { return false }
            guard let b = v as? Bool else { throw TrustError.artifact(what: "policy \(path)", reason: "\(key) must be true or false") }
            return b
        }
        let table: [String: Any]
        if text.first(where: { !$0.isWhitespace }) == "{" {
            guard let json = try? JSONDecoder().decode(JSONValue.self, from: data).object else {
                throw TrustError.artifact(what: "policy \(path)", reason: "is not a JSON object")
            }
            table = json.mapValues(Self.plain)
        } else {
            do { table = try TOMLParser.parse(text).mapValues(Self.plain) } catch {
                throw TrustError.artifact(what: "policy \(path)", reason: "is neither JSON nor valid TOML: \(error)")
            }
        }
        let known: Set<String> = ["require-provenance", "allowed-builders", "allowed-buildpacks", "require-signed-run-image", "buildpackage-keys"]
        if let unknown = table.keys.sorted().first(where: { !known.contains($0) }) {
            throw TrustError.artifact(what: "policy \(path)", reason: "unknown key \(unknown) (known: \(known.sorted().joined(separator: ", ")))")
        }
        p.allowedBuilders = try strings(table["allowed-builders"], "allowed-builders")
        p.allowedBuildpacks = try strings(table["allowed-buildpacks"], "allowed-buildpacks")
        p.requireSignedRunImage = try bool(table["require-signed-run-image"], "require-signed-run-image")
        let base = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        p.buildpackageKeys = (try strings(table["buildpackage-keys"], "buildpackage-keys") ?? []).map { $0.hasPrefix("/") ? $0 : base + "/" + $0 }
        p.requireProvenance = try bool(table["require-provenance"], "require-provenance")
            || p.allowedBuilders != nil || p.allowedBuildpacks != nil || p.requireSignedRunImage
        return p
    }

    static func plain(_ v: JSONValue) -> Any {
        switch v {
        case .string(let s): return s
        case .bool(let b): return b
        case .array(let a): return a.map(plain)
        default: return "\(v)"
        }
    }

    static func plain(_ v: TOMLValue) -> Any {
        switch v {
        case .string(let s): return s
        case .bool(let b): return b
        case .array(let a): return a.map(plain)
        default: return "\(v)"
        }
    }

    /// The dependencies a verified provenance statement names: (name, uri, sha256).
    public static func dependencies(_ statement: Data) -> [(name: String, uri: String, sha256: String?)] {
        guard let object = try? JSONDecoder().decode(JSONValue.self, from: statement).object,
              case .array(let deps)? = object["predicate"]?.object?["buildDefinition"]?.object?["resolvedDependencies"] else { return [] }
        return deps.compactMap { d in
            guard let o = d.object else { return nil }
            return (o["name"]?.string ?? "", o["uri"]?.string ?? "", o["digest"]?.object?["sha256"]?.string)
        }
    }

    /// Whether the policy is about the image (its provenance) rather than only buildpackages.
    public var concernsImages: Bool { requireProvenance }

    /// What the provenance breaks of this policy (empty: it holds). `runImageSigned` answers
    /// whether the run image digest carries a valid signature.
    public func violations(provenance: Data?, runImageSigned: (String) async -> Bool) async -> [String] {
        guard requireProvenance else { return [] }
        guard let provenance else { return ["no verified SLSA provenance attestation (required by the policy)"] }
        var out: [String] = []
        let deps = Self.dependencies(provenance)
        if let allowed = allowedBuilders {
            let builder = deps.first { $0.name == "builder" }
            let ok = builder.map { b in allowed.contains { $0 == b.uri || $0 == "sha256:" + (b.sha256 ?? "-") || b.uri.hasPrefix($0 + ":") } } ?? false
            if !ok { out.append("builder \(builder.map { "\($0.uri)@sha256:\($0.sha256 ?? "?")" } ?? "(none recorded)") is not one of allowed-builders") }
        }
        if let allowed = allowedBuildpacks {
            for d in deps where d.uri.hasPrefix("pkg:cnb/") && !allowed.contains(where: { fnmatch($0, d.name, 0) == 0 }) {
                out.append("\(d.name) is not allowed by allowed-buildpacks")
            }
        }
        if requireSignedRunImage {
            if let run = deps.first(where: { $0.name == "run-image" }), let sha = run.sha256 {
                if !(await runImageSigned(run.uri + "@sha256:" + sha)) { out.append("run image \(run.uri)@sha256:\(sha) has no valid signature by this key") }
            } else {
                out.append("the provenance names no run image digest, so its signature cannot be checked")
            }
        }
        return out
    }
}

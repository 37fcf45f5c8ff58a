/// A package URL (https://github.com/package-url/purl-spec):
/// `pkg:type/namespace/name@version?qualifiers#subpath`.
public struct PackageURL: Sendable, Hashable {
    public var type: String
    public var namespace: String?
    public var name: String
    public var version: String?
    public var qualifiers: [String: String]

    public init?(_ text: String) {
        guard text.hasPrefix("pkg:") else { return nil }
        var rest = Substring(text.dropFirst(4))
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var qualifiers: [String: String] = [:]
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { Self.decode(String($0)) }
                if kv.count == 2 { qualifiers[kv[0].lowercased()] = kv[1] }
            }
            rest = rest[..<q]
        }
        while rest.first == "/" { rest = rest.dropFirst() }
        if let at = rest.lastIndex(of: "@"), rest[..<at].contains("/") {
            version = Self.decode(String(rest[rest.index(after: at)...]))
            rest = rest[..<at]
        }
        let parts = rest.split(separator: "/").map { Self.decode(String($0)) }
        guard parts.count >= 2 else { return nil }
        type = parts[0].lowercased()
        name = parts[parts.count - 1]
        namespace = parts.count > 2 ? parts[1..<(parts.count - 1)].joined(separator: "/") : nil
        self.qualifiers = qualifiers
    }

    /// The OSV ecosystem and the package name as OSV writes it for that ecosystem.
    public var osv: (ecosystem: Ecosystem, name: String) {
        switch type {
        case "pypi": return (.pypi, Ecosystem.pypi.normalize(name: name))
        case "npm": return (.npm, namespace.map { $0 + "/" + name } ?? name)
        case "deb" where (namespace ?? "").lowercased() == "debian": return (.debian, name.lowercased())
        case "deb" where (namespace ?? "").lowercased() == "ubuntu": return (.ubuntu, name.lowercased())
        case "golang": return (.go, namespace.map { $0 + "/" + name } ?? name)
        case "maven": return (.maven, ((namespace.map { $0 + ":" } ?? "") + name).lowercased())
        default: return (.generic, name)
        }
    }

    /// OSV's ecosystem names by purl type (and namespace, for distributions) for ecosystems
    /// whose version order Cairn does not implement: their advisories still match by name, and
    /// where a range needs the order the answer is `unknown` (see `AdvisoryMatch`).
    static let unorderedTypes = ["gem": "RubyGems", "cargo": "crates.io", "nuget": "NuGet", "composer": "Packagist",
                                 "hex": "Hex", "pub": "Pub", "hackage": "Hackage", "cran": "CRAN", "swift": "SwiftURL"]
    static let unorderedDistributions = ["apk/alpine": "Alpine", "rpm/redhat": "Red Hat",
                                         "rpm/rocky": "Rocky Linux", "rpm/almalinux": "AlmaLinux", "rpm/opensuse": "openSUSE", "rpm/suse": "SUSE"]
    static let unorderedEcosystemNames = Set(unorderedTypes.values).union(unorderedDistributions.values)

    /// The OSV ecosystem of a package Cairn matches by name only; nil for ordered ecosystems and
    /// types OSV has no ecosystem for.
    public var unorderedEcosystem: String? {
        Self.unorderedTypes[type] ?? Self.unorderedDistributions[type + "/" + (namespace ?? "").lowercased()]
    }

    static func decode(_ s: String) -> String {
        guard s.contains("%") else { return s }
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.first {
            it = it.dropFirst()
            if c == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

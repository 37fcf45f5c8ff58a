import Foundation

/// `audit vex IMAGE` and `audit vulns --vex FILE`: VEX statements from the inventory's answers,
/// and statements from elsewhere applied to them.
enum VEXSQL {
    static let aliases = "SELECT advisory_id, alias FROM advisory_alias"
    static func purls(_ count: Int) -> String {
        "SELECT ecosystem, name, version, purl FROM package WHERE purl <> '' AND name IN (\(Inventory.marks(count)))"
    }

    /// The advisories matching packages of an image's build-time SBOM that it does not contain
    /// (in none of its layers' SBOMs, not in its run image).
    static let buildOnly = """
        SELECT v.advisory_id, a.severity, p.ecosystem, p.name, p.version, p.purl
        FROM image i JOIN image_build_package b ON b.image_id = i.id
        JOIN vulnerable v ON v.package_id = b.package_id JOIN advisory a ON a.id = v.advisory_id JOIN package p ON p.id = b.package_id
        WHERE i.digest = ?
          AND NOT EXISTS (SELECT 1 FROM image_package ip WHERE ip.image_id = i.id AND ip.package_id = b.package_id)
          AND NOT EXISTS (SELECT 1 FROM run_image_package rp WHERE rp.run_image_id = i.run_image_id AND rp.package_id = b.package_id)
        """
}

extension Inventory {
    /// Every name of each advisory (its id and aliases), upper-cased, by advisory id.
    func vulnerabilityNames(_ db: any SQLSession) throws -> [String: Set<String>] {
        var names: [String: Set<String>] = [:]
        for row in try db.rows(VEXSQL.aliases, []) {
            guard let id = row[0].text, let alias = row[1].text else { continue }
            names[id, default: [id.uppercased()]].insert(alias.uppercased())
        }
        return names
    }

    /// The purl of each (ecosystem, name, version) of `findings`: the SBOM's, else one made from
    /// the ecosystem (a run image's dpkg packages have none recorded).
    func packagePURLs(_ db: any SQLSession, _ findings: [Finding]) throws -> [String: String] {
        var out: [String: String] = [:]
        let names = Array(Set(findings.compactMap(\.package)))
        for chunk in Self.chunks(names, size: 500) {
            for row in try db.rows(VEXSQL.purls(chunk.count), chunk.map { .text($0) }) {
                out[Self.purlKey(row[0].text, row[1].text, row[2].text)] = row[3].text
            }
        }
        for f in findings where out[Self.purlKey(f)] == nil {
            out[Self.purlKey(f)] = PackageURL.make(ecosystem: f.ecosystem ?? "", name: f.package ?? "", version: f.version ?? "")
        }
        return out
    }

    /// The key of `packagePURLs`: ecosystem, name and version.
    static func purlKey(_ ecosystem: String?, _ name: String?, _ version: String?) -> String {
        (ecosystem ?? "") + "\u{0}" + (name ?? "") + "\u{0}" + (version ?? "")
    }

    static func purlKey(_ f: Finding) -> String { purlKey(f.ecosystem, f.package, f.version) }

    /// What Cairn can state of an image it has indexed: `affected` (with the fixed version to
    /// update to) for each advisory and package found, `under_investigation` where whether the
    /// version is affected cannot be told. Nothing is stated of what was not found: an image
    /// whose packages could not all be read gets no `not_affected` statement.
    public func vexStatements(image: String) throws -> (image: (name: String, digest: String, purl: String), statements: [VEXStatement]) {
        // Only this image's findings are made (its names stand for the fleet's).
        let all = try vulnerabilities(id: nil, minimumSeverity: nil, allNamesAbove: nil, namesSentAbove: nil, image: image)
        let named = try backend.read { db in try Self.namesNamed(db, dialect: backend.dialect, image) }.subjects.first
        guard let first = named else {
            throw InventoryError.query("\(image): no image of this name in the inventory (run `cairn audit index` first)")
        }
        return try backend.read { db in
            let names = try vulnerabilityNames(db)
            let purls = try packagePURLs(db, all)
            let statements = all.compactMap { f -> VEXStatement? in
                guard let advisory = f.advisory else { return nil }
                let (main, aliases) = Self.vexNames(advisory, names)
                let package = purls[Self.purlKey(f)]
                let unknown = f.status == "unknown"
                let action = (f.fixed ?? "").isEmpty ? "No fixed version of \(f.package ?? "the package") is known: remove it or rebuild when one is"
                    : "Update \(f.package ?? "the package") to \(f.fixed ?? "") or later (cairn audit plan proposes how)"
                return VEXStatement(vulnerability: main, aliases: aliases,
                                    product: Self.imagePURL(f), subcomponent: package, status: unknown ? .underInvestigation : .affected,
                                    detail: unknown ? f.reason : action, severity: f.severity)
            }
            let subject = Finding(location: first.location, image: first.image, digest: first.digest)
            let product = Self.imagePURL(subject)
            let buildOnly = try buildOnlyStatements(db, digest: first.digest, product: product, names: names)
            return ((first.image, first.digest, product), Array(Set(statements + buildOnly)).sorted { ($0.vulnerability, $0.subcomponent ?? "") < ($1.vulnerability, $1.subcomponent ?? "") })
        }
    }

    /// The name a statement gives an advisory (its CVE alias when it has one) and its other names.
    static func vexNames(_ advisory: String, _ names: [String: Set<String>]) -> (main: String, aliases: [String]) {
        let others = (names[advisory] ?? [advisory.uppercased()]).sorted()
        let main = others.first { $0.hasPrefix("CVE-") } ?? advisory
        var aliases: [String] = []
        for n in [advisory] + others where n.uppercased() != main.uppercased() && !aliases.contains(where: { $0.uppercased() == n.uppercased() }) {
            aliases.append(n)
        }
        return (main, aliases)
    }

    /// `not_affected` (`vulnerable_code_not_present`) for each advisory matching a package only
    /// the image's build used: its build-time SBOM lists it, the image does not contain it.
    func buildOnlyStatements(_ db: any SQLSession, digest: String, product: String, names: [String: Set<String>]) throws -> [VEXStatement] {
        try db.rows(VEXSQL.buildOnly, [.text(digest)]).compactMap { row in
            guard let advisory = row[0].text else { return nil }
            let (main, aliases) = Self.vexNames(advisory, names)
            let (ecosystem, name, version) = (row[2].text ?? "", row[3].text ?? "", row[4].text ?? "")
            let purl = (row[5].text ?? "").isEmpty ? PackageURL.make(ecosystem: ecosystem, name: name, version: version) : row[5].text!
            return VEXStatement(vulnerability: main, aliases: aliases,
                                product: product, subcomponent: purl, status: .notAffected, justification: "vulnerable_code_not_present",
                                detail: "\(name) \(version) is listed only in the image's build-time SBOM: its build used it, the image does not contain it",
                                severity: row[1].text)
        }
    }

    /// `pkg:oci/<name>@<digest>` with the repository for a registry image.
    static func imagePURL(_ f: Finding) -> String {
        var repository = f.image
        if let at = repository.firstIndex(of: "@") { repository = String(repository[..<at]) }
        if let colon = repository.lastIndex(of: ":"), !repository[colon...].contains("/") { repository = String(repository[..<colon]) }
        let name = repository.split(separator: "/").last.map(String.init) ?? repository
        let base = "pkg:oci/\(name.lowercased())@\(f.digest.replacingOccurrences(of: ":", with: "%3A"))"
        return f.location == "store" || !repository.contains("/") ? base : base + "?repository_url=" + repository
    }

    /// `findings` less those VEX statements say are `not_affected` or `fixed`; returns how many went.
    public func applyVEX(_ findings: [Finding], _ statements: [VEXStatement]) throws -> (kept: [Finding], notAffected: Int) {
        let settled = statements.filter { $0.status == .notAffected || $0.status == .fixed }
        guard !settled.isEmpty else { return (findings, 0) }
        return try backend.read { db in
            let names = try vulnerabilityNames(db)
            let purls = try packagePURLs(db, findings)
            let kept = findings.filter { f in
                guard let advisory = f.advisory else { return true }
                let known = names[advisory] ?? [advisory.uppercased()]
                let image = PackageURL(Self.imagePURL(f))
                let package = purls[Self.purlKey(f)].flatMap(PackageURL.init)
                return !settled.contains { $0.covers(names: known, imagePURL: image, packagePURL: package) }
            }
            return (kept, findings.count - kept.count)
        }
    }
}

extension PackageURL {
    /// A purl for a package of an ecosystem, where the SBOM gave none.
    static func make(ecosystem: String, name: String, version: String) -> String {
        let v = version.replacingOccurrences(of: ":", with: "%3A")
        switch Ecosystem(rawValue: ecosystem) ?? .generic {
        case .pypi: return "pkg:pypi/\(Ecosystem.pypi.normalize(name: name))@\(v)"
        case .npm: return "pkg:npm/\(name)@\(v)"
        case .debian: return "pkg:deb/debian/\(name)@\(v)"
        case .ubuntu: return "pkg:deb/ubuntu/\(name)@\(v)"
        case .go: return "pkg:golang/\(name)@\(v)"
        case .maven: return "pkg:maven/\(name.replacingOccurrences(of: ":", with: "/"))@\(v)"
        case .generic: return "pkg:generic/\(name)@\(v)"
        }
    }
}

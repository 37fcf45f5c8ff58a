import Foundation

/// A VEX statement: what an image's maker says of one vulnerability in one package of it.
public struct VEXStatement: Sendable, Hashable {
    public enum Status: String, Sendable {
        case affected, fixed
        case notAffected = "not_affected"
        case underInvestigation = "under_investigation"
    }

    /// The main name (a CVE when the advisory has one) and the other names.
    public var vulnerability: String
    public var aliases: [String]
    /// Package URLs: the image (`pkg:oci/…`) and the package in it; either may be nil in a
    /// statement read from elsewhere.
    public var product: String?
    public var subcomponent: String?
    public var status: Status
    /// OpenVEX's justification enum (`vulnerable_code_not_present`, …) for `not_affected`.
    public var justification: String?
    /// The action for `affected`, the notes otherwise.
    public var detail: String?
    public var severity: String?

    public init(vulnerability: String, aliases: [String] = [], product: String?, subcomponent: String?, status: Status,
                justification: String? = nil, detail: String? = nil, severity: String? = nil) {
        self.vulnerability = vulnerability; self.aliases = aliases; self.product = product; self.subcomponent = subcomponent
        self.status = status; self.justification = justification; self.detail = detail; self.severity = severity
    }

    /// Whether it speaks of a finding: one of the finding's vulnerability names, and the
    /// finding's image (a `pkg:oci` purl with its digest, or its repository name without one)
    /// or package (type, namespace, name, and version when the statement gives one).
    func covers(names: Set<String>, imagePURL: PackageURL?, packagePURL: PackageURL?) -> Bool {
        guard names.contains(vulnerability.uppercased()) || aliases.contains(where: { names.contains($0.uppercased()) }) else { return false }
        func same(_ said: String?, _ actual: PackageURL?) -> Bool {
            guard let said = said.flatMap(PackageURL.init), let actual else { return false }
            return said.type == actual.type && (said.namespace ?? "").lowercased() == (actual.namespace ?? "").lowercased()
                && said.name.lowercased() == actual.name.lowercased() && (said.version == nil || said.version == actual.version)
        }
        // With a package named, the package must match, and the product too when it names an image.
        if let subcomponent {
            let imageNamed = product.flatMap(PackageURL.init)?.type == "oci"
            return same(subcomponent, packagePURL) && (!imageNamed || same(product, imagePURL))
        }
        return same(product, imagePURL) || same(product, packagePURL)
    }
}

/// VEX documents in the two formats verifiers read: OpenVEX 0.2.0 and CycloneDX 1.5.
public enum VEXDocument {
    static func json(_ object: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// OpenVEX: a statement per vulnerability, status and package, its product the image with
    /// the package as subcomponent.
    public static func openVEX(_ statements: [VEXStatement], author: String, tooling: String) throws -> Data {
        let now = OSVRecord.rfc3339()
        let items: [[String: Any]] = statements.map { s in
            var product: [String: Any] = [:]
            if let p = s.product { product["@id"] = p }
            if let c = s.subcomponent { product["subcomponents"] = [["@id": c]] }
            var vulnerability: [String: Any] = ["name": s.vulnerability]
            if !s.aliases.isEmpty { vulnerability["aliases"] = s.aliases }
            var item: [String: Any] = ["vulnerability": vulnerability, "products": [product], "status": s.status.rawValue, "timestamp": now]
            switch s.status {
            case .affected: item["action_statement"] = s.detail ?? "No remediation is known."
            case .notAffected: item["justification"] = s.justification ?? "vulnerable_code_not_present"
            default: if let d = s.detail { item["status_notes"] = d }
            }
            return item
        }
        return try json(["@context": "https://openvex.dev/ns/v0.2.0", "@id": "urn:uuid:" + UUID().uuidString.lowercased(), "author": author,
                         "role": "automated inventory", "timestamp": now, "version": 1, "tooling": tooling, "statements": items] as [String: Any])
    }

    /// CycloneDX 1.5 VEX: the image as metadata component, the packages as components, one
    /// vulnerability entry per vulnerability and package with its analysis.
    public static func cycloneDX(_ statements: [VEXStatement], image: (name: String, digest: String, purl: String), tooling: String) throws -> Data {
        var components: [String: [String: Any]] = [:]
        let vulnerabilities: [[String: Any]] = statements.map { s in
            let ref = s.subcomponent ?? s.product ?? "image"
            if let c = s.subcomponent, components[c] == nil, let purl = PackageURL(c) {
                components[c] = ["type": "library", "bom-ref": c, "name": purl.name, "version": purl.version ?? "", "purl": c]
            }
            let state: String
            switch s.status {
            case .affected: state = "exploitable"
            case .notAffected: state = "not_affected"
            case .fixed: state = "resolved"
            case .underInvestigation: state = "in_triage"
            }
            var analysis: [String: Any] = ["state": state]
            if let d = s.detail { analysis["detail"] = d }
            if s.status == .notAffected { analysis["justification"] = "code_not_present" }
            if s.status == .affected { analysis["response"] = ["update"] }
            var v: [String: Any] = ["id": s.vulnerability, "analysis": analysis, "affects": [["ref": ref]]]
            if !s.aliases.isEmpty { v["references"] = s.aliases.map { ["id": $0, "source": ["name": "OSV", "url": "https://osv.dev/vulnerability/" + $0]] } }
            if let level = s.severity, !level.isEmpty { v["ratings"] = [["severity": level.lowercased()]] }
            return v
        }
        let metadata: [String: Any] = [
            "timestamp": OSVRecord.rfc3339(),
            "tools": ["components": [["type": "application", "name": "cairn", "version": tooling]]],
            "component": ["type": "container", "bom-ref": "image", "name": image.name, "version": image.digest, "purl": image.purl],
        ]
        return try json(["bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "serialNumber": "urn:uuid:" + UUID().uuidString.lowercased(),
                         "metadata": metadata, "components": components.keys.sorted().map { components[$0]! }, "vulnerabilities": vulnerabilities] as [String: Any])
    }
}

import Foundation

/// VEX from elsewhere, for `audit vulns --vex`: OpenVEX (any 0.x `@context`) or CycloneDX
/// (`vulnerabilities[].analysis`). Errors name the file and what was expected.
public enum VEXReader {
    public static func read(_ data: Data, path: String) throws -> [VEXStatement] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw InventoryError.advisories(path: path, reason: "not a JSON object: expected an OpenVEX or CycloneDX VEX document")
        }
        if let context = object["@context"] as? String, context.contains("openvex") { return try openVEX(object, path: path) }
        if object["bomFormat"] as? String == "CycloneDX" { return try cycloneDX(object, path: path) }
        throw InventoryError.advisories(path: path, reason: "neither OpenVEX (an openvex @context) nor CycloneDX (bomFormat)")
    }

    static func openVEX(_ doc: [String: Any], path: String) throws -> [VEXStatement] {
        guard let statements = doc["statements"] as? [[String: Any]] else {
            throw InventoryError.advisories(path: path, reason: "OpenVEX without a statements array")
        }
        return try statements.enumerated().flatMap { n, s -> [VEXStatement] in
            // 0.2.0: vulnerability is an object with a name; 0.0.x: a string.
            let vulnerability = s["vulnerability"] as? [String: Any]
            guard let name = vulnerability?["name"] as? String ?? s["vulnerability"] as? String,
                  let status = (s["status"] as? String).flatMap(VEXStatement.Status.init(rawValue:)) else {
                throw InventoryError.advisories(path: path, reason: "statements[\(n)]: expected a vulnerability name and a status (not_affected, affected, fixed, under_investigation)")
            }
            let aliases = vulnerability?["aliases"] as? [String] ?? []
            let products = s["products"] as? [Any] ?? []
            var out: [VEXStatement] = []
            for p in products {
                // 0.2.0: {"@id", "subcomponents": [{"@id"}]}; 0.0.x: a string.
                let product = (p as? [String: Any])?["@id"] as? String ?? p as? String
                let subs = ((p as? [String: Any])?["subcomponents"] as? [[String: Any]] ?? []).compactMap { $0["@id"] as? String }
                for sub in subs.isEmpty ? [nil] : subs.map(Optional.some) {
                    out.append(VEXStatement(vulnerability: name, aliases: aliases, product: product, subcomponent: sub, status: status,
                                            justification: s["justification"] as? String, detail: s["impact_statement"] as? String))
                }
            }
            return out
        }
    }

    static func cycloneDX(_ doc: [String: Any], path: String) throws -> [VEXStatement] {
        let refs = Dictionary((doc["components"] as? [[String: Any]] ?? []).compactMap { c -> (String, String)? in
            guard let ref = c["bom-ref"] as? String, let purl = c["purl"] as? String else { return nil }
            return (ref, purl)
        }, uniquingKeysWith: { a, _ in a })
        let image = ((doc["metadata"] as? [String: Any])?["component"] as? [String: Any]).flatMap { $0["purl"] as? String }
        return try (doc["vulnerabilities"] as? [[String: Any]] ?? []).enumerated().flatMap { n, v -> [VEXStatement] in
            guard let id = v["id"] as? String, let state = (v["analysis"] as? [String: Any])?["state"] as? String else {
                throw InventoryError.advisories(path: path, reason: "vulnerabilities[\(n)]: expected an id and analysis.state")
            }
            let status: VEXStatement.Status
            switch state {
            case "not_affected", "false_positive": status = .notAffected
            case "resolved", "resolved_with_pedigree": status = .fixed
            case "exploitable": status = .affected
            default: status = .underInvestigation
            }
            let aliases = (v["references"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            return (v["affects"] as? [[String: Any]] ?? []).compactMap { $0["ref"] as? String }.map { ref in
                VEXStatement(vulnerability: id, aliases: aliases, product: image, subcomponent: refs[ref] ?? (ref.hasPrefix("pkg:") ? ref : nil),
                             status: status, detail: (v["analysis"] as? [String: Any])?["detail"] as? String)
            }
        }
    }
}

import Foundation

/// `<2.3.2`, `>=1.0,<2`, `=1.2.3`, `1.2.3`, `!=1.0`: all must hold, compared in an ecosystem's
/// ordering.
public struct VersionRange: Sendable, CustomStringConvertible {
    public var constraints: [(op: String, version: String)]

    public init(parsing text: String) throws {
        constraints = []
        for part in text.split(separator: ",").map({ String(String($0).trimmingSpaces) }) {
            guard let op = ["<=", ">=", "==", "!=", "<", ">", "="].first(where: { part.hasPrefix($0) }) else {
                guard !part.isEmpty else { throw InventoryError.query("version range \"\(text)\": empty constraint") }
                constraints.append(("=", part))
                continue
            }
            let version = String(String(part.dropFirst(op.count)).trimmingSpaces)
            guard !version.isEmpty else { throw InventoryError.query("version range \"\(text)\": no version after \(op)") }
            constraints.append((op == "==" ? "=" : op, version))
        }
        guard !constraints.isEmpty else { throw InventoryError.query("version range \"\(text)\": expected e.g. <2.3.2 or >=1.0,<2") }
    }

    public func contains(_ version: String, in ecosystem: Ecosystem) -> Bool {
        constraints.allSatisfy { c in
            let r = ecosystem.compare(version, c.version)
            switch c.op {
            case "<": return r < 0
            case "<=": return r <= 0
            case ">": return r > 0
            case ">=": return r >= 0
            case "!=": return r != 0
            default: return r == 0
            }
        }
    }

    public var description: String { constraints.map { ($0.op == "=" ? "" : $0.op) + $0.version }.joined(separator: ",") }
}

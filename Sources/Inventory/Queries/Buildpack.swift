import Foundation

extension Inventory {
    /// Named images built with (or whose build metadata lists) this buildpack, optionally in a
    /// version range.
    public func buildpack(_ id: String, versions: VersionRange? = nil) throws -> [Finding] {
        try backend.read { db in
            try db.rows("""
                SELECT \(Self.findingColumns), m.version FROM image_module m
                JOIN image i ON i.id = m.image_id JOIN image_name n ON n.image_id = i.id
                WHERE m.module = ? AND m.kind = 'buildpack'
                """, [.text(id)]).compactMap { row -> Finding? in
                let version = row[3].text ?? ""
                if let versions, !versions.contains(version, in: .generic) { return nil }
                return Finding(location: row[0].text ?? "", image: row[1].text ?? "", digest: row[2].text ?? "",
                               version: version, buildpack: id)
            }.sortedFindings()
        }
    }
}

import Foundation

extension Inventory {
    /// Named images and their launcher, optionally in a version range.
    public func launcher(versions: VersionRange? = nil) throws -> [Finding] {
        try backend.read { db in
            // The range is checked once per distinct version, the images fetched for those only.
            var filter = ""
            var args: [SQLValue] = []
            if let versions {
                let all = try db.rows("SELECT DISTINCT launcher_version FROM image", []).compactMap { $0.first?.text }
                let wanted = all.filter { !$0.isEmpty && versions.contains($0, in: .generic) }
                guard !wanted.isEmpty else { return [] }
                filter = " WHERE i.launcher_version IN (\(Self.marks(wanted.count)))"
                args = wanted.map { .text($0) }
            }
            return try db.rows("""
                SELECT \(Self.findingColumns), i.launcher_version, i.launcher_diffid FROM image i JOIN image_name n ON n.image_id = i.id\(filter)
                """, args).map { row in
                Finding(location: row[0].text ?? "", image: row[1].text ?? "", digest: row[2].text ?? "",
                        package: "launcher", version: row[3].text ?? "", layer: row[4].text)
            }.sortedFindings()
        }
    }
}

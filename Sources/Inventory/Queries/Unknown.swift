import Foundation

extension Inventory {
    /// Named images the inventory cannot vouch for, as `unknown` findings with the reason: no
    /// SBOM layer or an unreadable SBOM document (`image.unknown`), a run image whose packages
    /// were never read, or no run image recorded. `vulns` and `package` add them to every
    /// answer: an image that could not be read is never reported clean. Each part is an index
    /// lookup (the partial `image_unknown` index, run images by `packages_known`, images by
    /// run image), so the few such images cost little beside a fleet's answer.
    /// `names`: the images' names to use (as of a date, see `History.swift`), else today's.
    static func unknownFindings(_ db: any SQLSession, names: RankedNames? = nil) throws -> [Finding] {
        var reasons: [Int64: [String]] = [:]
        for row in try db.rows("SELECT id, unknown FROM image WHERE unknown <> ''", []) {
            if let id = row[0].int { reasons[id, default: []].append(row[1].text ?? "") }
        }
        // The run images first (a few hundred rows), then only their images: as one join, SQLite
        // walked every image (3 ms on a 20,000-image fleet with none to find).
        var unread: [Int64: String] = [:]
        for row in try db.rows("SELECT id, name FROM run_image WHERE packages_known = 0", []) {
            if let id = row[0].int { unread[id] = row[1].text ?? "" }
        }
        for chunk in chunks(unread.keys.sorted(), size: 500) {
            for row in try db.rows("SELECT id, run_image_id FROM image WHERE run_image_id IN (\(marks(chunk.count)))", chunk.map { .int($0) }) {
                if let id = row[0].int, let run = row[1].int {
                    reasons[id, default: []].append("the packages of its run image \(unread[run] ?? "") were never read")
                }
            }
        }
        for row in try db.rows("SELECT id FROM image WHERE run_image_id IS NULL", []) {
            if let id = row[0].int { reasons[id, default: []].append("no run image recorded") }
        }
        guard !reasons.isEmpty else { return [] }
        let ids = reasons.keys.sorted()
        var findings: [Finding] = []
        if let names {
            for id in ids {
                names.forEachRank(of: id) { rank in
                    let s = names.subjects[Int(rank)]
                    findings.append(Finding(location: s.location, image: s.image, digest: s.digest, status: "unknown",
                                            reason: (reasons[id] ?? []).joined(separator: "; ")))
                }
            }
            return findings
        }
        for chunk in chunks(ids, size: 500) {
            try db.forEachRow("""
                SELECT n.location, n.name, i.digest, i.id FROM image_name n JOIN image i ON i.id = n.image_id
                WHERE i.id IN (\(marks(chunk.count)))
                """, chunk.map { .int($0) }) { row in
                let why = (reasons[row.int(3) ?? 0] ?? []).joined(separator: "; ")
                findings.append(Finding(location: row.text(0) ?? "", image: row.text(1) ?? "", digest: row.text(2) ?? "",
                                        status: "unknown", reason: why))
            }
        }
        return findings
    }

    /// `known` with the unknown images added, in the answers' order.
    static func withUnknown(_ db: any SQLSession, _ known: [Finding], names: RankedNames? = nil) throws -> [Finding] {
        let unknown = try unknownFindings(db, names: names)
        return unknown.isEmpty ? known : (known + unknown).sortedFindings()
    }
}

import Foundation

/// What `audit index --key` found about one image and one key.
public struct TrustRecord: Sendable {
    public var digest: String
    /// sha256 of the public key (DER), hex.
    public var key: String
    public var signed = false
    public var provenance = false
    public var builder = ""
    public var builderDigest = ""
    /// Why the image is not signed (or what else failed), for the answer's WHY column.
    public var detail = ""
    /// Each buildpack the builder's verified provenance lists: id@version, its source and digest.
    public var sources: [(buildpack: String, source: String, digest: String)] = []

    public init(digest: String, key: String) {
        self.digest = digest
        self.key = key
    }
}

/// An image a trust question found, and why.
public struct TrustFinding: Codable, Sendable, Hashable {
    public var location: String
    public var image: String
    public var digest: String
    /// signed, unsigned or unchecked (never checked with this key).
    public var status: String
    public var builder: String
    public var reasons: [String]
}

/// The trust question: every criterion given must hold. None: every named image with its status.
public struct TrustQuestion: Sendable {
    public var key: String
    public var unsigned = false
    public var builderNot: String?
    public var fromBuildpackage: String?

    public init(key: String) { self.key = key }

    /// Why `record` answers every criterion, or nil when one does not hold: the one evaluation
    /// of the criteria, for `audit trust` (records from the inventory) and `audit scan --key`
    /// (a record read from the store just now). `sources` need only be those of the wanted
    /// buildpackage.
    public func reasons(_ record: TrustRecord) -> [String]? {
        var reasons: [String] = []
        let builder = record.builder.isEmpty ? "" : record.builder + (record.builderDigest.isEmpty ? "" : "@" + record.builderDigest)
        if unsigned {
            guard !record.signed else { return nil }
            reasons.append("unsigned: " + record.detail)
        }
        if let other = builderNot {
            if !record.builder.isEmpty && (record.builder == other || record.builderDigest == other) { return nil }
            reasons.append(builder.isEmpty ? "no verified provenance names its builder" : "built by \(builder)")
        }
        if let wanted = fromBuildpackage {
            guard let source = record.sources.first(where: { $0.digest == wanted }) else { return nil }
            reasons.append("builder took \(source.buildpack) from \(source.source) (\(wanted))")
        }
        return reasons
    }
}

extension Inventory {
    /// Replaces what is recorded for each (image, key) of `records`; images not in the
    /// inventory are skipped (and counted out of the result).
    @discardableResult
    public func recordTrust(_ records: [TrustRecord], run: Int64) throws -> Int {
        try backend.write { db in
            var done = 0
            for r in records {
                guard let id = try db.value("SELECT id FROM image WHERE digest = ?", [.text(r.digest)]) else { continue }
                try db.execute("DELETE FROM image_trust WHERE image_id = ? AND key = ?", [id, .text(r.key)])
                try db.execute("DELETE FROM image_buildpack_source WHERE image_id = ? AND key = ?", [id, .text(r.key)])
                try db.execute("""
                    INSERT INTO image_trust (image_id, key, signed, provenance, builder, builder_digest, detail, checked)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, [id, .text(r.key), .int(r.signed ? 1 : 0), .int(r.provenance ? 1 : 0), .text(r.builder),
                          .text(r.builderDigest), .text(r.detail), .int(run)])
                try Self.insertRows(db, "image_buildpack_source (image_id, key, buildpack, source, source_digest)",
                                    r.sources.map { [id, .text(r.key), .text($0.buildpack), .text($0.source), .text($0.digest)] })
                done += 1
            }
            return done
        }
    }

    /// The (location, name, digest) of every named image, for a trust pass over a location.
    public func namedImages(location: String) throws -> [(name: String, digest: String)] {
        try backend.read { db in
            try db.rows("SELECT n.name, i.digest FROM image_name n JOIN image i ON i.id = n.image_id WHERE n.location = ? ORDER BY n.name",
                        [.text(location)]).map { ($0[0].text ?? "", $0[1].text ?? "") }
        }
    }

    /// Named images that answer `question`. An image never checked with the key is reported as
    /// unchecked whatever the criteria: the inventory cannot say it is clean.
    public func trust(_ question: TrustQuestion) throws -> [TrustFinding] {
        try backend.read { db in
            let rows = try db.rows("""
                SELECT n.location, n.name, i.digest, t.signed, t.provenance, t.builder, t.builder_digest, t.detail, i.id
                FROM image_name n JOIN image i ON i.id = n.image_id
                LEFT JOIN image_trust t ON t.image_id = i.id AND t.key = ?
                ORDER BY n.name, n.location
                """, [.text(question.key)])
            // The wanted buildpackage's sources, per image: all the criterion reads.
            var sources: [Int64: [(buildpack: String, source: String, digest: String)]] = [:]
            if let wanted = question.fromBuildpackage {
                for row in try db.rows("SELECT image_id, buildpack, source FROM image_buildpack_source WHERE source_digest = ? AND key = ?",
                                       [.text(wanted), .text(question.key)]) {
                    guard let id = row[0].int else { continue }
                    sources[id, default: []].append((row[1].text ?? "", row[2].text ?? "", wanted))
                }
            }
            return rows.compactMap { row in Self.trustFinding(row, question: question, sources: sources) }
        }
    }

    static func trustFinding(_ row: [SQLValue], question: TrustQuestion,
                             sources: [Int64: [(buildpack: String, source: String, digest: String)]]) -> TrustFinding? {
        var f = TrustFinding(location: row[0].text ?? "", image: row[1].text ?? "", digest: row[2].text ?? "", status: "unchecked",
                             builder: "", reasons: [])
        guard let signed = row[3].int else {
            f.reasons = ["not checked with this key: run cairn audit index --key PUB"]
            return f
        }
        var record = TrustRecord(digest: f.digest, key: question.key)
        record.signed = signed == 1
        record.provenance = row[4].int == 1
        record.builder = row[5].text ?? ""
        record.builderDigest = row[6].text ?? ""
        record.detail = row[7].text ?? ""
        record.sources = row[8].int.flatMap { sources[$0] } ?? []
        guard let reasons = question.reasons(record) else { return nil }
        f.status = record.signed ? "signed" : "unsigned"
        f.builder = record.builder.isEmpty ? "" : record.builder + (record.builderDigest.isEmpty ? "" : "@" + record.builderDigest)
        f.reasons = reasons
        return f
    }
}

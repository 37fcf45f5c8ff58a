import Foundation
import ZIPFoundation

/// An OSV record (https://ossf.github.io/osv-schema/), the fields the inventory uses.
public struct OSVRecord: Codable, Sendable, Hashable {
    public var id: String
    public var modified: String?
    public var published: String?
    public var withdrawn: String?
    public var aliases: [String]?
    public var summary: String?
    public var severity: [Severity]?
    public var affected: [Affected]?
    public var databaseSpecific: Specific?

    public init(id: String, modified: String? = nil, published: String? = nil, withdrawn: String? = nil, aliases: [String]? = nil, summary: String? = nil,
                severity: [Severity]? = nil, databaseSpecific: Specific? = nil, affected: [Affected]? = nil) {
        self.id = id
        self.modified = modified
        self.published = published
        self.withdrawn = withdrawn
        self.aliases = aliases
        self.summary = summary
        self.severity = severity
        self.databaseSpecific = databaseSpecific
        self.affected = affected
    }

    public struct Severity: Codable, Sendable, Hashable {
        public var type: String
        public var score: String
        public init(type: String, score: String) { self.type = type; self.score = score }
    }

    public struct Specific: Codable, Sendable, Hashable {
        public var severity: String?
        public init(severity: String?) { self.severity = severity }
    }

    public struct Affected: Codable, Sendable, Hashable {
        public var package: Package?
        public var ranges: [Range]?
        public var versions: [String]?
        public var severity: [Severity]?
        public var ecosystemSpecific: Specific?
        public var databaseSpecific: Specific?

        public init(package: Package?, ranges: [Range]? = nil, versions: [String]? = nil, severity: [Severity]? = nil,
                    ecosystemSpecific: Specific? = nil, databaseSpecific: Specific? = nil) {
            self.package = package
            self.ranges = ranges
            self.versions = versions
            self.severity = severity
            self.ecosystemSpecific = ecosystemSpecific
            self.databaseSpecific = databaseSpecific
        }

        enum CodingKeys: String, CodingKey {
            case package, ranges, versions, severity
            case ecosystemSpecific = "ecosystem_specific"
            case databaseSpecific = "database_specific"
        }
    }

    public struct Package: Codable, Sendable, Hashable {
        public var ecosystem: String?
        public var name: String?
        public var purl: String?
        public init(ecosystem: String? = nil, name: String? = nil, purl: String? = nil) {
            self.ecosystem = ecosystem
            self.name = name
            self.purl = purl
        }
    }

    public struct Range: Codable, Sendable, Hashable {
        public var type: String
        public var events: [Event]
        public init(type: String, events: [Event]) { self.type = type; self.events = events }
    }

    public struct Event: Codable, Sendable, Hashable {
        public var introduced: String?
        public var fixed: String?
        public var lastAffected: String?
        public var limit: String?

        public init(introduced: String? = nil, fixed: String? = nil, lastAffected: String? = nil, limit: String? = nil) {
            self.introduced = introduced
            self.fixed = fixed
            self.lastAffected = lastAffected
            self.limit = limit
        }

        enum CodingKeys: String, CodingKey {
            case introduced, fixed, limit
            case lastAffected = "last_affected"
        }

        var version: String { introduced ?? fixed ?? lastAffected ?? limit ?? "" }
    }

    enum CodingKeys: String, CodingKey {
        case id, modified, published, withdrawn, aliases, summary, severity, affected
        case databaseSpecific = "database_specific"
    }

    /// The highest severity the record gives: the level of each CVSS v3 or v4 vector's score,
    /// computed from the vector (a record's own words can lag its vectors), and the database's
    /// own words (GHSA's `MODERATE` read as `MEDIUM`); "" when none. The highest, not the newest,
    /// because an answer that drives a CVE response must not understate.
    public var severityLevel: String {
        var levels: [String] = []
        for s in (severity ?? []) + (affected ?? []).flatMap({ $0.severity ?? [] }) {
            let score = s.type.hasPrefix("CVSS_V3") ? CVSS3.baseScore(s.score) : s.type == "CVSS_V4" ? CVSS4.score(s.score) : nil
            if let score { levels.append(CVSS3.level(score)) }
        }
        let words = [databaseSpecific?.severity] + (affected ?? []).flatMap { [$0.ecosystemSpecific?.severity, $0.databaseSpecific?.severity] }
        levels += words.compactMap { $0.map(Severity.normalize) }.filter { Severity.order.contains($0) }
        return levels.max { Severity.rank($0) < Severity.rank($1) } ?? ""
    }
}

extension OSVRecord.Severity {
    static let order = ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
    static func rank(_ level: String) -> Int { order.firstIndex(of: level) ?? -1 }
    static func normalize(_ word: String) -> String {
        let w = word.uppercased()
        return w == "MODERATE" ? "MEDIUM" : w
    }
}

/// One affected package of an advisory as the inventory stores it: its ranges and versions,
/// evaluated in the package's ecosystem ordering.
public struct AffectedRanges: Codable, Sendable, Hashable {
    public var ranges: [OSVRecord.Range]
    public var versions: [String]

    /// Whether `version` is affected, and the lowest fixed version above it when one is known.
    /// Ranges of type ECOSYSTEM and SEMVER are evaluated (GIT ranges name commits, not versions).
    public func evaluate(_ version: String, in ecosystem: Ecosystem) -> (affected: Bool, fixed: String?) {
        var affected = versions.contains(version)
        var fixed: String?
        let cmp: (String, String) -> Int = { ecosystem == .generic ? GenericVersion.compare($0, $1) : ecosystem.compare($0, $1) }
        for range in ranges where range.type == "ECOSYSTEM" || range.type == "SEMVER" {
            let order: (String, String) -> Int = range.type == "SEMVER" ? SemVer.compare : cmp
            let events = range.events.filter { !$0.version.isEmpty }.sorted { a, b in
                if a.introduced == "0" { return b.introduced != "0" }
                if b.introduced == "0" { return false }
                return order(a.version, b.version) < 0
            }
            var inRange = false
            for e in events {
                if let i = e.introduced, i == "0" || order(version, i) >= 0 {
                    inRange = true
                } else if let f = e.fixed, order(version, f) >= 0 {
                    inRange = false
                } else if let l = e.lastAffected, order(version, l) > 0 {
                    inRange = false
                }
            }
            if inRange, range.events.contains(where: { $0.limit.map { order(version, $0) >= 0 } ?? false }) { inRange = false }
            guard inRange else { continue }
            affected = true
            let above = events.compactMap(\.fixed).filter { order($0, version) > 0 }
            if let lowest = above.min(by: { order($0, $1) < 0 }), fixed.map({ order(lowest, $0) < 0 }) ?? true { fixed = lowest }
        }
        return (affected, affected ? fixed : nil)
    }
}

/// Reads OSV records from JSON files, directories of them and zip archives of them (as OSV
/// publishes `all.zip` per ecosystem).
extension OSVRecord {
    /// A time as the inventory writes it: RFC 3339, whole seconds, UTC.
    static func rfc3339(_ date: Date = Date()) -> String { ISO8601DateFormatter().string(from: date) }

    /// An RFC 3339 time, with or without fractional seconds.
    static func time(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: s)
    }

    /// Whether RFC 3339 time `a` is later than `b` (fractional seconds and offsets read as
    /// times, not text); text order when either does not parse.
    static func isLater(_ a: String, than b: String) -> Bool {
        let parse = time
        guard !a.isEmpty, !b.isEmpty else { return false }
        if let x = parse(a), let y = parse(b) { return x > y }
        return a > b
    }
}

public enum OSVReader {
    /// Calls `each` with every record under `path`; a file that is not an OSV record is an error
    /// naming it.
    public static func read(_ path: String, _ each: (OSVRecord) throws -> Void) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw InventoryError.advisories(path: path, reason: "no such file or directory")
        }
        if isDirectory.boolValue {
            guard let walker = FileManager.default.enumerator(atPath: path) else { return }
            var files: [String] = []
            while let next = walker.nextObject() as? String {
                if [".json", ".zip", ".jsonl", ".ndjson"].contains(where: next.hasSuffix) { files.append(next) }
            }
            for file in files.sorted() { try read(path + "/" + file, each) }
        } else if path.hasSuffix(".zip") {
            let archive: Archive
            do { archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read) } catch {
                throw InventoryError.advisories(path: path, reason: "not a zip archive: \(error)")
            }
            for entry in archive where entry.type == .file && entry.path.hasSuffix(".json") {
                var data = Data()
                do { _ = try archive.extract(entry) { data.append($0) } } catch {
                    throw InventoryError.advisories(path: path + ":" + entry.path, reason: "cannot extract: \(error)")
                }
                try each(decode(data, path: path + ":" + entry.path))
            }
        } else {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
                throw InventoryError.advisories(path: path, reason: "cannot read: \(error.localizedDescription)")
            }
            if path.hasSuffix(".jsonl") || path.hasSuffix(".ndjson") {
                // JSON lines: one record per line (as OSV's exports and `osv-scanner` stream them).
                for (n, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated()
                where !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0d }) {
                    try each(decode(Data(line), path: "\(path):\(n + 1)"))
                }
            } else {
                try each(decode(data, path: path))
            }
        }
    }

    static func decode(_ data: Data, path: String) throws -> OSVRecord {
        do { return try JSONDecoder().decode(OSVRecord.self, from: data) } catch let DecodingError.keyNotFound(key, context) {
            let at = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            throw InventoryError.advisories(path: path, reason: "not an OSV record: no \(at)")
        } catch let DecodingError.typeMismatch(_, context) {
            throw InventoryError.advisories(path: path, reason: "not an OSV record: \(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type")
        } catch {
            throw InventoryError.advisories(path: path, reason: "not an OSV record: \(error)")
        }
    }
}

public enum InventoryError: Error, CustomStringConvertible {
    case advisories(path: String, reason: String)
    case database(location: String, reason: String)
    case query(String)

    public var description: String {
        switch self {
        case let .advisories(path, reason): return "\(path): \(reason)"
        case let .database(location, reason): return "inventory \(location): \(reason)"
        case let .query(reason): return reason
        }
    }
}

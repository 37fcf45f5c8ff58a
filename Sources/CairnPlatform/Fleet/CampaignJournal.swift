import Foundation
import Synchronization
import Inventory
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// One line of a campaign journal: what happened to one image, or to the campaign.
public struct CampaignEvent: Codable, Sendable, Equatable {
    /// `begin` (a fix of `image` from `old` starts), `tagged` (the tag now names `new`),
    /// `verified`, `failed`, `rolled-back`, `halted`, `resumed`, `wave` (docs/schemas).
    public var event: String
    public var image: String?
    public var location: String?
    public var old: String?
    public var new: String?
    public var action: String?
    public var advisories: [String]?
    public var runImage: String?
    public var patchImages: [String]?
    /// Why a step failed or the campaign halted; for `tagged`, `adopted` when a resumed campaign
    /// found the tag already on a verified fix of the old image (a run killed after the push).
    public var detail: String?
    public var signed: Bool?
    public var wave: Int?
    public var time: String

    public init(_ event: String, image: String? = nil, location: String? = nil, old: String? = nil, new: String? = nil, detail: String? = nil) {
        self.event = event
        self.image = image
        self.location = location
        self.old = old
        self.new = new
        self.detail = detail
        self.time = ISO8601DateFormatter().string(from: Date())
    }
}

/// A campaign's directory: `plan.json` (the steps, fixed when the campaign starts, so a resumed
/// campaign does what the first run planned, not what the fleet looks like half fixed) and
/// `journal.jsonl`, appended one fsynced line per event. A line torn by a kill is the last one and
/// is ignored on reading (its event is redone: every step is idempotent against the tag's digest).
public final class CampaignJournal: Sendable {
    public let directory: String
    /// The journal's descriptor once opened (-1 before); appends hold the mutex.
    let fd = Mutex<Int32>(-1)

    public static let planFile = "plan.json"
    public static let journalFile = "journal.jsonl"

    public init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit { fd.withLock { if $0 >= 0 { close($0) } } }

    public var planPath: String { directory + "/" + Self.planFile }
    public var journalPath: String { directory + "/" + Self.journalFile }

    /// The campaign's steps, when it was started before.
    public func savedPlan() throws -> CampaignPlan? {
        guard FileManager.default.fileExists(atPath: planPath) else { return nil }
        let data = try Data(contentsOf: URL(fileURLWithPath: planPath))
        do { return try JSONDecoder().decode(CampaignPlan.self, from: data) } catch {
            throw CampaignError("\(planPath): not a campaign plan: \(error)")
        }
    }

    public func save(_ plan: CampaignPlan) throws {
        let data = try CanonicalJSON.encode(plan)
        try FS.writeAtomically(data, to: planPath, tempDirectory: directory)
    }

    /// Every whole line; a torn last line (a kill mid-write) is dropped.
    public func events() throws -> [CampaignEvent] {
        guard FileManager.default.fileExists(atPath: journalPath) else { return [] }
        let data = try Data(contentsOf: URL(fileURLWithPath: journalPath))
        var events: [CampaignEvent] = []
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (i, line) in lines.enumerated() where !line.isEmpty {
            do { events.append(try JSONDecoder().decode(CampaignEvent.self, from: Data(line))) } catch {
                // Only the last line can be torn; anything else is damage to report, not skip.
                guard i == lines.count - 1 else { throw CampaignError("\(journalPath): line \(i + 1) is not a journal event: \(error)") }
            }
        }
        return events
    }

    /// Appends one event and waits until it is on disk.
    public func append(_ event: CampaignEvent) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = try encoder.encode(event)
        line.append(UInt8(ascii: "\n"))
        try fd.withLock { fd in
            if fd < 0 {
                fd = open(journalPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw CampaignError("\(journalPath): cannot open: \(String(cString: strerror(errno)))") }
                try terminateTornLine(fd)
            }
            let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == line.count, fsync(fd) == 0 else {
                throw CampaignError("\(journalPath): cannot append: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// A line torn by a kill gets its newline, so the next event starts a line of its own.
    func terminateTornLine(_ fd: Int32) throws {
        guard let data = FileManager.default.contents(atPath: journalPath), let last = data.last, last != UInt8(ascii: "\n") else { return }
        _ = write(fd, "\n", 1)
    }
}

/// What a campaign was asked to do, saved at its start.
public struct CampaignPlan: Codable, Sendable {
    public var steps: [FixPlan.Step]
    /// The images planned for whose packages could not all be read: listed, not fixed.
    public var unknown: [String]
    /// `--tag-suffix`: fixed images go to `<tag><suffix>`; nil: the tag itself moves.
    public var tagSuffix: String?
    public var created: String

    public init(steps: [FixPlan.Step], unknown: [String], tagSuffix: String?) {
        self.steps = steps
        self.unknown = unknown
        self.tagSuffix = tagSuffix
        self.created = ISO8601DateFormatter().string(from: Date())
    }
}

public struct CampaignError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Where each image of a campaign stands, folded from the journal.
public struct CampaignState: Sendable {
    public struct Image: Sendable {
        public var began = false
        public var location: String?
        /// The planned digest the tag named before the campaign.
        public var old: String?
        /// The digest the tag was moved to, and whether that was verified.
        public var new: String?
        public var verified = false
        public var failures = 0
        public var lastFailure: String?
        public var rolledBack = false
    }
    public var images: [String: Image] = [:]
    public var halted: String?

    public init(_ events: [CampaignEvent]) {
        for e in events {
            guard let name = e.image else {
                if e.event == "halted" { halted = e.detail }
                if e.event == "resumed" { halted = nil }
                continue
            }
            var s = images[name] ?? Image()
            s.location = e.location ?? s.location
            s.old = e.old ?? s.old
            switch e.event {
            case "begin": s.began = true
            case "tagged": s.new = e.new; s.verified = false; s.rolledBack = false
            case "verified": s.verified = true
            case "failed": s.failures += 1; s.lastFailure = e.detail
            case "rolled-back": s.rolledBack = true
            default: break
            }
            images[name] = s
        }
    }

    /// Done: moved and verified, and not rolled back since.
    public func isDone(_ image: String) -> Bool {
        guard let s = images[image] else { return false }
        return s.new != nil && s.verified && !s.rolledBack
    }
}

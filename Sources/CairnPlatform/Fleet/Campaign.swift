import Buildpacks
import Foundation
import Inventory
import OCI
import Phases
import Synchronization

/// A fix campaign (`cairn fleet fix`): the plan's rebases and layer patches, in waves. The first
/// wave is a canary; after each wave the changed images are re-indexed and checked (manifest and
/// config pulled back and compared with the plan, the advisories queried again) and an image that
/// fails is put back on its old digest. A wave whose failures pass the limit halts the campaign.
/// Every tag move is journalled before the next step, so a killed campaign resumes where it was:
/// a tag already on a verified fix of the planned digest is adopted, not rebased again.
public final class Campaign: Sendable {
    public struct Settings: Sendable {
        public var canary = 1
        /// Failures a wave after the canary may have, in percent of the wave; the canary may have none.
        public var maxFailuresPercent = 10.0
        public var jobs = 4
        public var force = false
        public init() {}
    }

    /// Told while the campaign runs: progress lines, and (with --sign) each new image to sign.
    public struct Hooks: Sendable {
        public var progress: @Sendable (String) -> Void
        public var sign: (@Sendable (_ result: RebaseResult, _ target: String, _ old: Digest, _ started: Date, _ location: ImageLocation) async throws -> Void)?
        public init(progress: @escaping @Sendable (String) -> Void, sign: (@Sendable (RebaseResult, String, Digest, Date, ImageLocation) async throws -> Void)? = nil) {
            self.progress = progress
            self.sign = sign
        }
    }

    /// One image's end, as the result lists it.
    public struct Outcome: Codable, Sendable {
        public var image: String
        public var location: String
        public var target: String
        public var old: String
        public var new: String?
        public var action: String
        public var advisories: [String]
        /// `fixed`, `adopted` (a killed run had moved the tag), `done-before` (an earlier run),
        /// `failed`, `rolled-back` (moved, failed its check, put back), `rebuild`, `not-reached`.
        public var status: String
        public var detail: String?
    }

    public struct Result: Codable, Sendable {
        public var outcomes: [Outcome]
        public var unknown: [String]
        public var halted: String?
        public var waves: Int
        public var seconds: Double
        public var imagesPerSecond: Double
        public var journal: String
    }

    let plan: CampaignPlan
    let journal: CampaignJournal
    let inventory: Inventory
    let sites: CampaignSites
    let settings: Settings
    let hooks: Hooks
    /// Run images read for checks, by location and name.
    let runImages = Mutex<[String: StoredImage]>([:])

    public init(plan: CampaignPlan, journal: CampaignJournal, inventory: Inventory, sites: CampaignSites, settings: Settings, hooks: Hooks) {
        self.plan = plan
        self.journal = journal
        self.inventory = inventory
        self.sites = sites
        self.settings = settings
        self.hooks = hooks
    }

    /// The tag a step's fixed image goes to: the image's own, or `<tag><suffix>`.
    public static func target(of step: FixPlan.Step, suffix: String?) -> String {
        guard let suffix, !suffix.isEmpty, let ref = try? ImageReference(parsing: step.image) else { return step.image }
        return ref.familiarName + ":" + (ref.tag ?? ImageReference.defaultTag) + suffix
    }

    public func run() async throws -> Result {
        let started = Date()
        let state = CampaignState(try journal.events())
        if state.halted != nil { try journal.append(CampaignEvent("resumed")) }
        var outcomes: [Outcome] = []
        var pending: [FixPlan.Step] = []
        for step in plan.steps {
            let target = Self.target(of: step, suffix: plan.tagSuffix)
            if step.action == "rebuild" {
                outcomes.append(outcome(step, status: "rebuild", detail: step.reasons.joined(separator: "; ")))
            } else if state.isDone(target) {
                outcomes.append(outcome(step, status: "done-before", new: state.images[target]?.new))
            } else {
                pending.append(step)
            }
        }
        var wave = 0, size = max(1, settings.canary), done = 0
        var halted: String?
        while !pending.isEmpty {
            wave += 1
            let batch = Array(pending.prefix(size))
            pending.removeFirst(batch.count)
            try journal.append({ var e = CampaignEvent("wave"); e.wave = wave; e.detail = "\(batch.count) images"; return e }())
            let results = try await runWave(batch, wave: wave, state: state, done: done, total: done + batch.count + pending.count, started: started)
            done += batch.count
            outcomes += results
            let failures = results.filter { $0.status == "failed" || $0.status == "rolled-back" }
            let limit = wave == 1 ? 0 : settings.maxFailuresPercent
            if !failures.isEmpty && Double(failures.count) * 100 > limit * Double(batch.count) {
                let why = "wave \(wave)\(wave == 1 ? " (canary)" : ""): \(failures.count) of \(batch.count) images failed, more than \(limit == 0 ? "none" : "\(limit)%") allowed; "
                    + failures.prefix(3).map { "\($0.image): \($0.detail ?? "")" }.joined(separator: "; ")
                try journal.append(CampaignEvent("halted", detail: why))
                halted = why
                outcomes += pending.map { outcome($0, status: "not-reached") }
                break
            }
            size = max(size * 2, settings.jobs)
        }
        outcomes.sort { ($0.target, $0.location) < ($1.target, $1.location) }
        let seconds = Date().timeIntervalSince(started)
        let moved = outcomes.filter { ["fixed", "adopted"].contains($0.status) }.count
        return Result(outcomes: outcomes, unknown: plan.unknown, halted: halted, waves: wave, seconds: seconds,
                      imagesPerSecond: seconds > 0 ? Double(moved) / seconds : 0, journal: journal.directory)
    }

    func outcome(_ step: FixPlan.Step, status: String, new: String? = nil, detail: String? = nil) -> Outcome {
        Outcome(image: step.image, location: step.location, target: Self.target(of: step, suffix: plan.tagSuffix), old: step.digest, new: new,
                action: step.action, advisories: step.advisories ?? [], status: status, detail: detail)
    }

    /// Fixes a wave's images (`jobs` at once), re-indexes them and checks each.
    func runWave(_ batch: [FixPlan.Step], wave: Int, state: CampaignState, done: Int, total: Int, started: Date) async throws -> [Outcome] {
        var moved: [(FixPlan.Step, Outcome)] = []
        var outcomes: [Outcome] = []
        var lastReport = Date.distantPast
        try await withThrowingTaskGroup(of: (FixPlan.Step, Outcome).self) { group in
            var next = batch.makeIterator()
            func startNext() -> Bool {
                guard let step = next.next() else { return false }
                group.addTask { (step, await self.fix(step, state: state, wave: wave)) }
                return true
            }
            for _ in 0..<max(1, settings.jobs) where !startNext() { break }
            while let (step, o) = try await group.next() {
                if o.new != nil && o.status != "failed" { moved.append((step, o)) } else { outcomes.append(o) }
                let count = done + moved.count + outcomes.count
                if Date().timeIntervalSince(lastReport) >= 1 || count == total {
                    lastReport = Date()
                    let rate = Double(count) / max(0.001, Date().timeIntervalSince(started))
                    hooks.progress("wave \(wave): \(count)/\(total) images, \(String(format: "%.1f", rate))/s, \(outcomes.count) failed")
                }
                _ = startNext()
            }
        }
        guard !moved.isEmpty else { return outcomes }
        hooks.progress("wave \(wave): re-indexing and checking \(moved.count) images")
        try await sites.reindex(moved.map { ($0.0.location, $0.1.target) }, inventory: inventory) { [hooks] in hooks.progress("warning: \($0)") }
        let still = try await remainingFindings(moved.map(\.0))
        // Checked `jobs` at once: each is a few round trips.
        try await withThrowingTaskGroup(of: Outcome.self) { group in
            var next = moved.makeIterator()
            func startNext() -> Bool {
                guard let (step, o) = next.next() else { return false }
                group.addTask { await self.verify(step, o, findings: still) }
                return true
            }
            for _ in 0..<max(1, settings.jobs) where !startNext() { break }
            while let o = try await group.next() {
                outcomes.append(o)
                _ = startNext()
            }
        }
        return outcomes
    }

    /// The findings of the campaign's advisories still on the wave's targets, by location and name.
    func remainingFindings(_ steps: [FixPlan.Step]) async throws -> [String: [String]] {
        let advisories = Set(steps.flatMap { $0.advisories ?? [] })
        let targets = Set(steps.map { $0.location + "\0" + Self.target(of: $0, suffix: plan.tagSuffix) })
        var found: [String: [String]] = [:]
        for advisory in advisories.sorted() {
            for f in try await inventory.run({ try $0.vulnerabilities(id: advisory) }) where targets.contains(f.location + "\0" + f.image) {
                found[f.location + "\0" + f.image, default: []].append(f.status == "unknown" ? "unknown: \(f.reason ?? "")" : f.advisory ?? advisory)
            }
        }
        return found
    }
}

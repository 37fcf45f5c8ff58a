import ArgumentParser
import CairnPlatform
import Foundation
import Inventory
import OCI
import Phases
import Trust

struct FleetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Fix the fleet: campaigns that run the audit plan's rebases and layer patches, and their rollback.",
        subcommands: [FleetFix.self, FleetRollback.self])
}

struct FleetFix: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fix",
        abstract: "Run the plan's rebases and layer patches on registry and store images, in checked waves.",
        discussion: """
            The plan is `cairn audit plan`'s (from --plan FILE, its --format json output, or asked of the \
            inventory with --id/--severity). A canary wave goes first; after each wave the changed images \
            are pulled back, compared with the plan, re-indexed and the advisories asked again: an image \
            that fails goes back to its old digest, and a wave with more failures than --max-failures \
            (the canary: any) halts the campaign. Every tag move is journalled (--journal, default \
            $CAIRN_HOME/campaigns/<hash of the selection>): the same command after a crash or a halt \
            resumes, never rebasing an image twice. Old manifests are never deleted; \
            `cairn fleet rollback JOURNAL` puts them back. Images the plan says need a rebuild, and \
            images whose packages are unknown, are listed, not changed.
            """)

    @Option(help: "A plan file: the JSON of `cairn audit plan --format json`.") var plan: String?
    @Option(help: "Only this advisory (id or alias), as `audit plan --id`.") var id: String?
    @Option(help: "Only advisories at least this severe, as `audit plan --severity`.") var severity: String?
    @Option(name: .customLong("registry"), help: "Only registry images of this repository (HOST/REPO); repeatable.") var repositories: [String] = []
    @Flag(name: .customLong("dry-run"), help: "Print what would change (image, old digest, action, run or patch images, advisories); change nothing.")
    var dryRun = false
    @Option(help: "Images in the first (canary) wave: N or P%.") var canary = "1"
    @Option(name: .customLong("max-failures"), help: "Failures a later wave may have before the campaign halts, in percent.") var maxFailures = "10%"
    @Option(help: "At most this many registry requests per second per registry (R or R/s).") var rate: String?
    @Option(help: "Images fixed at once.") var jobs = 8
    @Option(name: .customLong("tag-suffix"), help: "Write each fixed image to <tag><suffix>, leaving the tag alone.") var tagSuffix: String?
    @Flag(name: .customLong("in-place"), help: "Move each image's own tag (the default).") var inPlace = false
    @Option(help: "The campaign's journal directory (resumes the campaign there).") var journal: String?
    @Flag(help: "Rebase onto a run image the image does not name, or patch layers not marked patchable, as `cairn rebase --force`.")
    var force = false
    @Flag(help: "Sign each new image and attest its provenance (--key or CAIRN_SIGNING_KEY).") var sign = false
    @Option(help: "The signing key for --sign (PEM; default CAIRN_SIGNING_KEY).") var key: String?
    @OptionGroup var inventory: InventoryOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        try await reportingErrors { try await campaign() }
    }

    func campaign() async throws {
        try inventory.refuse(.csv, for: "fleet fix")
        if inPlace && tagSuffix != nil { throw CLIError("--in-place and --tag-suffix: choose one") }
        guard jobs >= 1 else { throw CLIError("--jobs must be at least 1") }
        if plan != nil && (id != nil || severity != nil) { throw CLIError("--plan and --id/--severity: the plan file already chose its advisories") }
        let maxPercent = try Self.percent(maxFailures, option: "--max-failures")
        let requests = try rate.map { try Self.rate($0) }
        let inv = try await inventory.open()
        let store = try storeOptions.open()
        let directory = journal ?? cairnHome() + "/campaigns/" + selectionHash(store: store)
        let book = try CampaignJournal(directory: directory)
        let saved = try book.savedPlan()
        var campaignPlan = saved
        if campaignPlan == nil { campaignPlan = try await newPlan(inv, store: store) }
        guard let campaignPlan else { return }
        if dryRun { return try printDryRun(campaignPlan) }
        if saved == nil { try book.save(campaignPlan) } else { progress("resuming the campaign in \(directory)") }
        var settings = Campaign.Settings()
        settings.canary = try Self.count(canary, of: campaignPlan.steps.filter { $0.action != "rebuild" }.count)
        settings.maxFailuresPercent = maxPercent
        settings.jobs = jobs
        settings.force = force
        let signingKey = try TrustConfig.signingKey(flag: sign, key: key)
        // Manifests and configs of this run only: an image layout that grew with every campaign
        // made each of its index writes and lookups slower (as `cairn rebase --remote` does).
        let scratch = FileManager.default.temporaryDirectory.path + "/cairn-fleet-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let work = try ImageStore(root: scratch, durable: false)
        let cache = try ImageStore(root: cairnHome() + "/audit-cache")
        var signer: (@Sendable (RebaseResult, String, Digest, Date, ImageLocation) async throws -> Void)?
        if let signingKey {
            signer = { result, target, old, started, location in
                try await attestRebase(result, image: target, previous: old, started: started, location: location, key: signingKey,
                                       requestedRunImage: nil, layerPatchesFile: nil)
            }
        }
        let format = inventory.format
        let hooks = Campaign.Hooks(progress: { line in
            if format == .table { FileHandle.standardError.write(Data("[fleet] \(line)\n".utf8)) }
        }, sign: signer)
        let session = try store.beginWriteSession()  // prune waits until the campaign is done
        defer { withExtendedLifetime(session) {} }
        let result: Campaign.Result = try await withClient(registry, rate: requests) { client in
            let sites = CampaignSites(store: store, client: client, work: work, cache: cache)
            return try await Campaign(plan: campaignPlan, journal: book, inventory: inv, sites: sites, settings: settings, hooks: hooks).run()
        }
        try report(result)
        if let halted = result.halted { throw CLIError("campaign halted: \(halted) (journal \(directory); fix the cause and run the same command to resume)") }
        let failed = result.outcomes.filter { $0.status == "failed" || $0.status == "rolled-back" }
        if !failed.isEmpty { throw CLIError("\(failed.count) images not fixed: \(failed.map(\.image).joined(separator: ", ")) (journal \(directory))") }
    }

    /// The plan from the file or the inventory, limited to the chosen registry repositories and
    /// the store; unknown images are carried along to be listed.
    func newPlan(_ inv: Inventory, store: ImageStore) async throws -> CampaignPlan {
        var steps: [FixPlan.Step]
        var unknown: [String] = []
        if let plan {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: plan)) } catch { throw CLIError("\(plan): cannot read: \(error.localizedDescription)") }
            do { steps = try JSONDecoder().decode([FixPlan.Step].self, from: data) } catch {
                throw CLIError("\(plan): not a plan (the JSON of `cairn audit plan --format json`): \(error)")
            }
        } else {
            let (id, severity) = (id, severity)
            let findings = try await inv.run { try $0.vulnerabilities(id: id, minimumSeverity: severity) }
            var seen = Set<String>()
            for f in findings where f.status == "unknown" && seen.insert(f.image).inserted { unknown.append("\(f.image): \(f.reason ?? "packages unknown")") }
            steps = try await inv.run { try $0.plan(findings.filter { $0.status != "unknown" }).steps }
        }
        let repos = try repositories.map { try ImageReference(parsing: $0).familiarName }
        let storeLocation = InventoryIndexer.location(of: store)
        steps = steps.filter { step in
            if step.location == InventoryIndexer.registryLocation {
                return repos.isEmpty || repos.contains((try? ImageReference(parsing: step.image).familiarName) ?? "")
            }
            return repositories.isEmpty && step.location == storeLocation
        }
        return CampaignPlan(steps: steps, unknown: unknown, tagSuffix: tagSuffix)
    }

    /// The default journal: one per selection, so the same command finds its campaign again.
    func selectionHash(store: ImageStore) -> String {
        let planPath = plan.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? ""
        let key = ["plan=" + planPath, "id=" + (id ?? ""), "severity=" + (severity ?? ""), "registry=" + repositories.sorted().joined(separator: ","),
                   "store=" + store.root, "suffix=" + (tagSuffix ?? ""), "database=" + (inventory.database ?? "")].joined(separator: "\n")
        return String(Digest.sha256(of: Data(key.utf8)).encoded.prefix(16))
    }

    func progress(_ line: String) {
        guard inventory.format == .table else { return }
        FileHandle.standardError.write(Data("[fleet] \(line)\n".utf8))
    }

    static func percent(_ text: String, option: String) throws -> Double {
        let number = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let p = Double(number), p >= 0, p <= 100 else { throw CLIError("\(option) \(text): expected a percentage, 0% to 100%") }
        return p
    }

    static func rate(_ text: String) throws -> Double {
        let number = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
        guard let r = Double(number), r > 0 else { throw CLIError("--rate \(text): expected requests per second, e.g. 50 or 50/s") }
        return r
    }

    /// `--canary N` or `P%` of `total`; at least one image.
    static func count(_ text: String, of total: Int) throws -> Int {
        if text.hasSuffix("%") {
            let p = try percent(text, option: "--canary")
            return max(1, Int((Double(total) * p / 100).rounded(.up)))
        }
        guard let n = Int(text), n >= 1 else { throw CLIError("--canary \(text): expected a number of images (at least 1) or a percentage") }
        return n
    }
}

import ArgumentParser
import CairnPlatform
import Foundation
import Inventory
import OCI

extension FleetFix {
    func printDryRun(_ plan: CampaignPlan) throws {
        if inventory.format == .json {
            struct DryRun: Encodable { var dryRun = true; var steps: [FixPlan.Step]; var unknown: [String]; var tagSuffix: String? }
            return try printEncoded(DryRun(steps: plan.steps, unknown: plan.unknown, tagSuffix: plan.tagSuffix))
        }
        print("Dry run: nothing is changed.")
        for step in plan.steps {
            var what: [String] = []
            if let run = step.runImage { what.append("onto \(run)") }
            for p in step.patches { what.append("\(p.buildpack):\(p.layer) from \(p.patchImage)") }
            let target = Campaign.target(of: step, suffix: plan.tagSuffix)
            print("\(step.image) \(Digest(step.digest)?.short ?? step.digest) \(step.action)\(what.isEmpty ? "" : " " + what.joined(separator: ", "))"
                  + "\(target == step.image ? "" : " -> " + target); fixes \((step.advisories ?? []).joined(separator: ", "))")
        }
        for u in plan.unknown { print("unknown (not planned): \(u)") }
        print(summary(plan))
    }

    func summary(_ plan: CampaignPlan) -> String {
        let counts = Dictionary(grouping: plan.steps, by: \.action).map { "\($0.value.count) \($0.key)" }.sorted()
        return "\(plan.steps.count) images: \(counts.joined(separator: ", ")); \(plan.unknown.count) unknown"
    }

    func report(_ result: Campaign.Result) throws {
        if inventory.format == .json { return try printEncoded(result) }
        for o in result.outcomes {
            let change = o.new.map { " \(Digest(o.old)?.short ?? o.old) -> \(Digest($0)?.short ?? $0)" } ?? ""
            print("\(o.target): \(o.status) (\(o.action))\(change)\(o.detail.map { ": " + $0 } ?? "")")
        }
        for u in result.unknown { print("unknown (not planned): \(u)") }
        let counts = Dictionary(grouping: result.outcomes, by: \.status).map { "\($0.value.count) \($0.key)" }.sorted()
        print("\(result.outcomes.count) images in \(result.waves) waves: \(counts.joined(separator: ", ")); \(result.unknown.count) unknown; "
              + "\(String(format: "%.1f", result.seconds)) s, \(String(format: "%.1f", result.imagesPerSecond)) images/s; journal \(result.journal)")
    }
}

struct FleetRollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Put back the digests a campaign's tags named before it moved them.",
        discussion: "A tag moved since by someone else is left alone and reported. The rolled-back images are re-indexed.")

    @Argument(help: "The campaign's journal directory.") var journal: String
    @Option(help: "Only this image (as the journal names it); repeatable.") var image: [String] = []
    @OptionGroup var inventory: InventoryOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        try await reportingErrors {
            try inventory.refuse(.csv, for: "fleet rollback")
            guard FileManager.default.fileExists(atPath: journal + "/" + CampaignJournal.journalFile) else {
                throw CLIError("\(journal): no campaign journal (\(CampaignJournal.journalFile)) there")
            }
            let book = try CampaignJournal(directory: journal)
            let inv = try await inventory.open()
            let store = try storeOptions.open()
            let format = inventory.format
            let scratch = FileManager.default.temporaryDirectory.path + "/cairn-fleet-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let outcomes = try await withClient(registry) { client in
                let sites = CampaignSites(store: store, client: client, work: try ImageStore(root: scratch, durable: false),
                                          cache: try ImageStore(root: cairnHome() + "/audit-cache"))
                return try await CampaignRollback.run(journal: book, sites: sites, inventory: inv, only: image.isEmpty ? nil : image) { line in
                    if format == .table { FileHandle.standardError.write(Data("[fleet] \(line)\n".utf8)) }
                }
            }
            if format == .json {
                try printEncoded(outcomes)
            } else {
                for o in outcomes { print("\(o.image): \(o.status) \(Digest(o.new)?.short ?? o.new) -> \(Digest(o.old)?.short ?? o.old)\(o.detail.map { ": " + $0 } ?? "")") }
                print("\(outcomes.filter { $0.status == "rolled-back" }.count) of \(outcomes.count) images rolled back")
            }
            let bad = outcomes.filter { $0.status == "failed" || $0.status == "left-alone" }
            if !bad.isEmpty { throw CLIError("\(bad.count) images not rolled back: \(bad.map(\.image).joined(separator: ", "))") }
        }
    }
}


import Foundation
import Inventory
import OCI

/// `cairn fleet rollback`: every tag a campaign moved (and did not put back already) goes back
/// to the digest it named before, from the journal; a tag moved since by someone else is left
/// alone and reported. Old manifests were never deleted, so each is still there by digest.
public enum CampaignRollback {
    public struct Outcome: Codable, Sendable {
        public var image: String
        public var location: String
        public var old: String
        public var new: String
        /// `rolled-back`, `already` (the tag names the old digest), `left-alone`, `failed`.
        public var status: String
        public var detail: String?
    }

    public static func run(journal: CampaignJournal, sites: CampaignSites, inventory: Inventory, only: [String]?,
                           progress: @escaping @Sendable (String) -> Void) async throws -> [Outcome] {
        let state = CampaignState(try journal.events())
        var outcomes: [Outcome] = []
        let wanted = only.map(Set.init)
        for (name, s) in state.images.sorted(by: { $0.key < $1.key }) {
            guard let new = s.new, let old = s.old, let location = s.location, !s.rolledBack else { continue }
            if let wanted, !wanted.contains(name) { continue }
            var o = Outcome(image: name, location: location, old: old, new: new, status: "rolled-back")
            do {
                let current = try await sites.currentDigest(name, at: location)?.description
                if current == old {
                    o.status = "already"
                } else if current != new {
                    o.status = "left-alone"
                    o.detail = "the tag names \(current ?? "nothing") now, not the campaign's \(new)"
                } else {
                    try await sites.retag(name, to: old, at: location)
                }
                if o.status != "left-alone" {
                    var e = CampaignEvent("rolled-back", image: name, location: location, old: old, new: new)
                    e.detail = "fleet rollback"
                    try journal.append(e)
                }
            } catch {
                o.status = "failed"
                o.detail = "\(error)"
            }
            outcomes.append(o)
        }
        if let wanted {
            for name in wanted.subtracting(outcomes.map(\.image)).sorted() {
                throw CampaignError("\(name): the journal \(journal.journalPath) records no move of it to roll back")
            }
        }
        let changed = outcomes.filter { $0.status == "rolled-back" }
        if !changed.isEmpty {
            progress("re-indexing \(changed.count) images")
            try await sites.reindex(changed.map { ($0.location, $0.image) }, inventory: inventory) { progress("warning: \($0)") }
        }
        return outcomes
    }
}

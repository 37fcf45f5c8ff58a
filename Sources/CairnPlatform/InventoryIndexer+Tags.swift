import Foundation
import Inventory
import OCI

extension InventoryIndexer {
    /// Indexes these registry tags only — a fix campaign's changed images — without listing
    /// their repositories or forgetting other names: one manifest and (for an image not indexed
    /// yet) its config and SBOM layer per tag, from `cache` when it has them.
    public func index(tags: [String], client: RegistryClient, cache: ImageStore) async throws -> Summary {
        let location = Self.registryLocation
        let run = try await inventory.run { try $0.beginRun(source: "registry tags") }
        var summary = Summary()
        var dpkg = DpkgStatusReader(store: cache)
        let transfer = ImageTransfer(client: client, store: cache)
        var entries: [Inventory.Entry] = []
        for text in tags {
            summary.images += 1
            do {
                let parsed = try ImageReference(parsing: text).withDefaultTag
                let ref = ImageReference(registry: parsed.registry, repository: parsed.repository, tag: parsed.tag)
                let image = try await transfer.pull(ref, layers: false, naming: false)
                if try await inventory.run({ try $0.bind(location: location, name: ref.familiar, digest: image.digest.description, run: run) }) {
                    summary.known += 1
                    continue
                }
                try await fetch(inventory.run { [self] _ in try neededBlobs(image) }, of: Repository(ref), client: client, cache: cache)
                guard var record = try await appRecordOffPool(image, store: cache, dpkg: &dpkg) else {
                    warn("\(text): not an app image (no lifecycle metadata label)")
                    summary.skipped += 1
                    continue
                }
                record.digest = image.digest.description
                entries.append(Inventory.Entry(record, location: location, names: [ref.familiar]))
                summary.indexed += 1
            } catch {
                warn("\(text): \(error)")
                summary.skipped += 1
            }
        }
        for start in stride(from: 0, to: entries.count, by: Inventory.writeBatchSize) {
            let batch = Array(entries[start..<min(entries.count, start + Inventory.writeBatchSize)])
            try await inventory.run { try $0.add(batch, run: run) }
        }
        return summary
    }
}

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
        var pulled: [(ImageReference, StoredImage)?] = []
        var pullErrors: [String: any Error] = [:]
        for (i, text) in tags.enumerated() {
            summary.images += 1
            // Manifests and configs a chunk at a time, several at once (a campaign re-indexes a
            // wave of hundreds of tags: one after another, each waited on a round trip or two).
            if i % Self.pullChunk == 0 {
                (pulled, pullErrors) = await Self.pull(tags[i..<min(tags.count, i + Self.pullChunk)], transfer: transfer,
                                                      width: max(1, client.configuration.parallelTransfers) * 2)
            }
            do {
                if let error = pullErrors[text] { throw error }
                guard let entry = pulled[i % Self.pullChunk] else { continue }
                let (ref, image) = entry
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

    /// Tags read at once by `index(tags:)` (bounded: their images are held until indexed).
    static let pullChunk = 64

    /// Pulls (manifest and config) each tag, `width` at a time, results in the tags' order; a
    /// failure is kept per tag.
    static func pull(_ tags: ArraySlice<String>, transfer: ImageTransfer, width: Int) async
        -> ([(ImageReference, StoredImage)?], [String: any Error]) {
        let list = Array(tags)
        return await withTaskGroup(of: (Int, (ImageReference, StoredImage)?, (any Error)?).self) { group in
            var results = [(ImageReference, StoredImage)?](repeating: nil, count: list.count)
            var errors: [String: any Error] = [:]
            var next = 0
            func start() {
                let i = next, text = list[i]
                next += 1
                group.addTask {
                    do {
                        let parsed = try ImageReference(parsing: text).withDefaultTag
                        let ref = ImageReference(registry: parsed.registry, repository: parsed.repository, tag: parsed.tag)
                        return (i, (ref, try await transfer.pull(ref, layers: false, naming: false)), nil)
                    } catch {
                        return (i, nil, error)
                    }
                }
            }
            while next < min(width, list.count) { start() }
            for await (i, result, error) in group {
                results[i] = result
                if let error { errors[list[i]] = error }
                if next < list.count { start() }
            }
            return (results, errors)
        }
    }
}

import Foundation
import Inventory
import OCI
import Phases

/// Where a campaign's images live: the store, registries (one client for all), or both; and the
/// few things a campaign does to a tag besides rebasing: read its digest, read an image by
/// digest, point the tag back at an old digest.
public struct CampaignSites: Sendable {
    public var store: ImageStore?
    public var client: RegistryClient?
    /// Manifests and configs fetched from registries (never layers).
    public var work: ImageStore
    /// The inventory's cache of registry blobs (`audit index --registry` uses the same).
    public var cache: ImageStore

    public init(store: ImageStore?, client: RegistryClient?, work: ImageStore, cache: ImageStore) {
        self.store = store
        self.client = client
        self.work = work
        self.cache = cache
    }

    public func isRegistry(_ location: String) -> Bool { location == InventoryIndexer.registryLocation }

    public func location(for step: FixPlan.Step) throws -> ImageLocation {
        if isRegistry(step.location) {
            guard let client else { throw CampaignError("\(step.image) is a registry image; no registry client") }
            return .registry(client, work: work)
        }
        guard let store, step.location == InventoryIndexer.location(of: store) else {
            throw CampaignError("\(step.image) is at \(step.location), not in the store this campaign was given")
        }
        return .store(store)
    }

    /// The digest `name` names now; nil when the tag does not exist.
    public func currentDigest(_ name: String, at location: String) async throws -> Digest? {
        if isRegistry(location) {
            guard let client else { throw CampaignError("no registry client") }
            let ref = try ImageReference(parsing: name).withDefaultTag
            do { return try await client.manifest(Repository(ref), reference: ref.tag ?? "latest").digest } catch RegistryError.notFound {
                return nil
            }
        }
        guard let store else { throw CampaignError("no store") }
        do { return try store.resolve(name).digest } catch OCIError.notFound { return nil }
    }

    /// The image `name@digest`: manifest and config only.
    public func image(_ name: String, digest: String, step: FixPlan.Step) async throws -> StoredImage {
        let ref = try ImageReference(parsing: name)
        let byDigest = ref.familiarName + "@" + digest
        guard let found = try await self.location(for: step).find(byDigest, layers: false) else {
            throw CampaignError("\(byDigest) is not in the \(isRegistry(step.location) ? "registry" : "store") any more")
        }
        return found.image
    }

    /// Hard-links a registry image's manifest and config from `source` into `target` (both
    /// local), and records that its blobs are in its repository, so reading `name@digest` from
    /// `target` asks the registry nothing and a push into the same repository does not ask about
    /// its layers either. Does nothing when `source` lacks either blob. A campaign seeds its work
    /// store with the planned old image from the inventory's cache (`audit index` read it there),
    /// and hands each new image back to the cache for the wave's re-index: three of a rebase's
    /// twelve requests.
    public static func share(_ name: String, digest: String, from source: ImageStore, to target: ImageStore) throws {
        guard let manifestDigest = Digest(digest), source.hasBlob(manifestDigest) else { return }
        let manifest = try CanonicalJSON.decode(Manifest.self, from: try source.readBlob(manifestDigest), what: "manifest \(digest)")
        guard source.hasBlob(manifest.config.digest) else { return }
        let session = try target.beginWriteSession()
        for d in [manifestDigest, manifest.config.digest] { try copyBlob(d, from: source, to: session) }
        let repository = Repository(try ImageReference(parsing: name)).description
        try target.recordSources([manifestDigest, manifest.config.digest] + manifest.layers.map(\.digest), repository: repository)
    }

    /// Points the tag `name` at `digest` (a manifest the registry or store has).
    public func retag(_ name: String, to digest: String, at location: String) async throws {
        if isRegistry(location) {
            guard let client else { throw CampaignError("no registry client") }
            let ref = try ImageReference(parsing: name).withDefaultTag
            let repo = Repository(ref)
            let manifest = try await client.manifest(repo, reference: digest)
            _ = try await client.putManifest(repo, reference: ref.tag ?? "latest", data: manifest.data, mediaType: manifest.mediaType)
            return
        }
        guard let store else { throw CampaignError("no store") }
        let old = try store.resolve(try ImageReference(parsing: name).familiarName + "@" + digest)
        try store.beginWriteSession().tag(old.descriptor, as: name)
    }

    /// Re-indexes the images a wave changed: those tags alone (their repositories are not
    /// listed again), and the store names.
    public func reindex(_ targets: [(location: String, name: String)], inventory: Inventory, warn: @escaping @Sendable (String) -> Void) async throws {
        let indexer = InventoryIndexer(inventory: inventory, warn: warn)
        let tags = targets.filter { isRegistry($0.location) }.map(\.name)
        if let client, !tags.isEmpty {
            _ = try await indexer.index(tags: tags, client: client, cache: cache)
        }
        let names = targets.filter { !isRegistry($0.location) }.map(\.name)
        if let store, !names.isEmpty { _ = try await inventory.run { _ in try indexer.index(store: store, names: names) } }
    }
}

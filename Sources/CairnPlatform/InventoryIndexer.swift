import Buildpacks
import Foundation
import Inventory
import Phases
import OCI
import Trust

/// Reads app images into the audit inventory: manifests, configs, labels, the SBOM layer and the
/// run image's dpkg status, never app layers. An image already indexed (by digest) costs one
/// lookup; a run image's packages are read once, however many images share it.
public struct InventoryIndexer: Sendable {
    public struct Summary: Sendable {
        public var images = 0
        public var indexed = 0
        public var known = 0
        public var runImages = 0
        public var skipped = 0
    }

    let inventory: Inventory
    let warn: @Sendable (String) -> Void

    /// Images recorded per transaction.
    public static var batchSize: Int { Inventory.writeBatchSize }

    public init(inventory: Inventory, warn: @escaping @Sendable (String) -> Void) {
        self.inventory = inventory
        self.warn = warn
    }

    /// The location name a store's images are recorded under.
    public static func location(of store: ImageStore) -> String { "store:" + store.root }

    /// Indexes every image in the store (or only `names`), then the run images it names; names
    /// the store no longer has are forgotten when the whole store was listed.
    public func index(store: ImageStore, names: [String]? = nil, progress: (String) -> Void = { _ in }) throws -> Summary {
        let location = Self.location(of: store)
        let run = try inventory.beginRun(source: location)
        var summary = Summary()
        var dpkg = DpkgStatusReader(store: store)
        var others: [(name: String, image: StoredImage)] = []
        var runImageNames: Set<String> = []
        var pending: [Inventory.Entry] = []
        func flush() throws {
            try inventory.add(pending, run: run)
            pending = []
        }
        let all = try store.images()
        let byName = Dictionary(all.map { ($0.name, $0.descriptor) }, uniquingKeysWith: { a, _ in a })
        let wanted = try names.map { list in
            try list.map { n -> (name: String, descriptor: Descriptor) in
                guard let hit = all.first(where: { ImageReference.sameImage($0.name, n) }) else {
                    throw PlatformError.notInStore(what: "image", reference: n)
                }
                return hit
            }
        } ?? all
        // Signatures, attestations, build SBOMs and referrers-tag indexes are about images, not images.
        for (name, descriptor) in wanted where Cosign.subject(ofStoredName: name) == nil {
            summary.images += 1
            if try inventory.bind(location: location, name: name, digest: descriptor.digest.description, run: run) {
                summary.known += 1
                continue
            }
            let image: StoredImage
            do { image = try store.load(descriptor, name: name) } catch {
                warn("\(name): \(error)")
                summary.skipped += 1
                continue
            }
            do {
                guard var record = try appRecord(image, store: store, dpkg: &dpkg) else {
                    others.append((name, image))
                    continue
                }
                addBuildPackages(&record, of: image, store: store, names: byName)
                if let r = record.runImage { runImageNames.insert(r.name) }
                pending.append(Inventory.Entry(record, location: location, names: [name]))
                if pending.count >= Self.batchSize { try flush() }
                summary.indexed += 1
                progress("indexed \(name)")
            } catch {
                warn("\(name): \(error)")
                summary.skipped += 1
            }
        }
        try flush()
        // Run images found under their names: the versions a rebase can move to.
        runImageNames.formUnion(try inventory.runImageNames())
        for (name, image) in others {
            guard let repository = try? ImageReference(parsing: name).familiarName, runImageNames.contains(repository) else { continue }
            do {
                try inventory.add(runImage: runImageRecord(image, name: repository, reference: name, store: store, dpkg: &dpkg), run: run)
                summary.runImages += 1
            } catch {
                warn("\(name): \(error)")
            }
        }
        if names == nil { try inventory.forgetNames(location: location, notSeenIn: run) }
        return summary
    }

    /// The location registry images are recorded under (their names carry the registry).
    public static let registryLocation = "registry"

    /// Indexes every tag of each repository (`HOST/REPO`): manifests and configs are fetched into
    /// `cache` (an image layout of the inventory's own, so each blob is fetched once across
    /// runs), then the SBOM layer and, for a run image whose packages are not known yet, its
    /// layers; never app layers. Tags a repository no longer has are forgotten.
    public func index(registry repositories: [String], client: RegistryClient, cache: ImageStore,
                      progress: (String) -> Void = { _ in }) async throws -> Summary {
        let location = Self.registryLocation
        let source = "registry " + repositories.joined(separator: " ")
        let run = try await inventory.run { try $0.beginRun(source: source) }
        var summary = Summary()
        var dpkg = DpkgStatusReader(store: cache)
        var others: [(name: String, image: StoredImage, repo: Repository)] = []
        var runImageNames: Set<String> = []
        let transfer = ImageTransfer(client: client, store: cache)
        for text in repositories {
            let base = try ImageReference(parsing: text)
            let repo = Repository(base)
            let tags = try await client.tags(repo).sorted()
            let tagSet = Set(tags)
            for tag in tags where Cosign.subject(ofStoredName: "\(base.familiarName):\(tag)") == nil {
                summary.images += 1
                let ref = ImageReference(registry: base.registry, repository: base.repository, tag: tag)
                let name = ref.familiar
                do {
                    let digest = try await client.manifest(repo, reference: tag).digest
                    if try await inventory.run({ try $0.bind(location: location, name: name, digest: digest.description, run: run) }) {
                        summary.known += 1
                        continue
                    }
                    let image = try await transfer.pull(ref, layers: false, naming: false)
                    try await fetch(inventory.run { [self] _ in try neededBlobs(image) }, of: repo, client: client, cache: cache)
                    guard var record = try await appRecordOffPool(image, store: cache, dpkg: &dpkg) else {
                        others.append((name, image, repo))
                        continue
                    }
                    record.digest = digest.description
                    await addBuildPackages(&record, of: image, repo: repo, tags: tagSet, client: client, cache: cache)
                    if let r = record.runImage { runImageNames.insert(r.name) }
                    try await inventory.run { [record] in try $0.add(record, location: location, names: [name], run: run) }
                    summary.indexed += 1
                    progress("indexed \(name)")
                } catch {
                    warn("\(name): \(error)")
                    summary.skipped += 1
                }
            }
            try await inventory.run { try $0.forgetNames(location: location, prefix: base.familiarName + ":", notSeenIn: run) }
        }
        runImageNames.formUnion(try await inventory.run { try $0.runImageNames() })
        for (name, image, repo) in others {
            guard let repository = try? ImageReference(parsing: name).familiarName, runImageNames.contains(repository) else { continue }
            do {
                if let layers = Digest.chainID(of: image.config.rootfs.diffIDs),
                   try await !inventory.run({ try $0.knowsPackages(runImage: repository, layers: layers.description) }) {
                    try await fetch(image.manifest.layers, of: repo, client: client, cache: cache)
                }
                dpkg = try await inventory.run { [self, dpkg] inventory in
                    var reader = dpkg
                    try inventory.add(runImage: runImageRecord(image, name: repository, reference: name, store: cache, dpkg: &reader), run: run)
                    return reader
                }
                summary.runImages += 1
            } catch {
                warn("\(name): \(error)")
            }
        }
        return summary
    }

    /// The SBOM layer, and the run image's layers when its packages are not known yet.
    func neededBlobs(_ image: StoredImage) throws -> [Descriptor] {
        var needed: [Descriptor] = []
        if let sbom = try SBOMReader.sbomLayer(of: image) { needed.append(sbom) }
        if let run = try image.lifecycleMetadata()?.runImage, let named = run.image ?? run.reference, let stack = Self.runImageStack(image, run) {
            let repository = (try? ImageReference(parsing: named).familiarName) ?? named
            if try !inventory.knowsPackages(runImage: repository, layers: stack.layers) { needed += image.manifest.layers[...stack.top] }
        }
        return needed
    }

    func fetch(_ blobs: [Descriptor], of repo: Repository, client: RegistryClient, cache: ImageStore) async throws {
        let session = try cache.beginWriteSession()
        for d in blobs where !cache.hasBlob(d.digest) {
            try await client.download(repo, d, into: session, progress: nil)
        }
    }

    /// `appRecord` from async code, off Swift concurrency's threads (it asks the inventory which
    /// run images' packages are known; see `Inventory.run`).
    func appRecordOffPool(_ image: StoredImage, store: ImageStore, dpkg: inout DpkgStatusReader) async throws -> ImageRecord? {
        let (record, reader) = try await inventory.run { [self, dpkg] _ in
            var reader = dpkg
            return (try appRecord(image, store: store, dpkg: &reader), reader)
        }
        dpkg = reader
        return record
    }

    /// What an app image is made of; nil when it is not one (no lifecycle metadata label).
    func appRecord(_ image: StoredImage, store: ImageStore, dpkg: inout DpkgStatusReader) throws -> ImageRecord? {
        guard let metadata = try image.lifecycleMetadata() else { return nil }
        var record = ImageRecord(digest: image.digest.description)
        record.created = image.config.created ?? ""
        record.os = image.config.os
        record.architecture = image.config.architecture
        let labels = image.config.config?.labels ?? [:]
        if let run = metadata.runImage, let top = run.topLayer, let named = run.image ?? run.reference {
            let repository = (try? ImageReference(parsing: named).familiarName) ?? named
            let stack = Self.runImageStack(image, run)
            // A top layer that is not among the image's layers leaves the version unknown; it is
            // keyed by the top layer alone, and its packages are not read.
            var r = RunImageRecord(identity: labels[CNBLabel.baseID] ?? labels[CNBLabel.stackID] ?? "", name: repository,
                                   topLayer: top, layers: stack?.layers ?? top)
            r.reference = run.reference ?? ""
            r.distro = labels[CNBLabel.baseDistroName] ?? ""
            r.distroVersion = labels[CNBLabel.baseDistroVersion] ?? ""
            r.released = labels[CNBLabel.baseReleased] ?? ""
            if let stack, try !inventory.knowsPackages(runImage: repository, layers: stack.layers) {
                let layers = Array(image.manifest.layers[...stack.top])
                if layers.allSatisfy({ store.hasBlob($0.digest) }) {
                    try Self.readLayers(&r, layers, dpkg: &dpkg)
                }
            }
            record.runImage = r
        }
        let build = try Self.buildMetadata(labels, image: image.name ?? image.digest.description)
        record.modules = (build.buildpacks ?? []).map { .init(kind: "buildpack", id: $0.id, version: $0.version) }
            + (build.extensions ?? []).map { .init(kind: "extension", id: $0.id, version: $0.version) }
        record.launcherVersion = build.launcher?.version ?? ""
        record.launcherDiffID = metadata.launcher?.sha ?? ""
        for bp in metadata.buildpacks {
            for (name, layer) in bp.layers.sorted(by: { $0.key < $1.key }) {
                let data = try layer.data.map { String(decoding: try CanonicalJSON.encode($0), as: UTF8.self) } ?? ""
                record.layers.append(.init(buildpack: bp.key, name: name, diffID: layer.sha, metadata: data,
                                           rebasable: LayerPatchMatching.isRebasable(layer.data)))
            }
        }
        let escaped = Self.buildpackIDs(metadata)
        if try SBOMReader.sbomLayer(of: image) == nil {
            record.unknown.append("no SBOM layer: what its buildpacks installed is not listed")
        }
        for doc in try SBOMReader.documents(of: image, in: store) {
            let buildpack = escaped[doc.buildpack] ?? doc.buildpack
            let components: [SBOMDocument.Component]
            do { components = try doc.components() } catch {
                warn("image \(image.digest): \(error); its packages are not indexed")
                record.unknown.append("SBOM \(doc.buildpack)\(doc.layer.map { ":" + $0 } ?? "") cannot be read")
                continue
            }
            for c in components {
                record.packages.append(.init(package: PackageRecord(name: c.name, version: c.version, purl: c.purl),
                                             buildpack: buildpack, layer: doc.layer ?? ""))
            }
        }
        return record
    }

    /// SBOM directories name buildpacks with `/` escaped as `_`: the IDs they stand for, by the label.
    static func buildpackIDs(_ metadata: LifecycleMetadataLabel?) -> [String: String] {
        Dictionary((metadata?.buildpacks ?? []).map { (escapedID($0.key), $0.key) }, uniquingKeysWith: { a, _ in a })
    }

    /// A run image found under `name`: its identity labels and dpkg packages.
    func runImageRecord(_ image: StoredImage, name: String, reference: String, store: ImageStore, dpkg: inout DpkgStatusReader) throws -> RunImageRecord {
        let labels = image.config.config?.labels ?? [:]
        guard let top = image.config.rootfs.diffIDs.last, let stack = Digest.chainID(of: image.config.rootfs.diffIDs) else {
            throw PlatformError.image(reference: reference, reason: "has no layers")
        }
        var r = RunImageRecord(identity: labels[CNBLabel.baseID] ?? labels[CNBLabel.stackID] ?? "", name: name,
                               topLayer: top.description, layers: stack.description)
        r.reference = reference
        r.created = image.config.created ?? ""
        r.distro = labels[CNBLabel.baseDistroName] ?? ""
        r.distroVersion = labels[CNBLabel.baseDistroVersion] ?? ""
        r.released = labels[CNBLabel.baseReleased] ?? ""
        if try !inventory.knowsPackages(runImage: name, layers: stack.description), image.manifest.layers.allSatisfy({ store.hasBlob($0.digest) }) {
            try Self.readLayers(&r, image.manifest.layers, dpkg: &dpkg)
        }
        return r
    }

    /// An app image's run image layers: the index of `runImage.topLayer` among its layers and
    /// the ChainID of the layers up to it, which identifies the run image version; nil when the
    /// top layer is not one of its layers.
    static func runImageStack(_ image: StoredImage, _ run: LifecycleMetadataLabel.RunImage) -> (top: Int, layers: String)? {
        guard let top = run.topLayer.flatMap(Digest.init), let at = image.config.rootfs.diffIDs.firstIndex(of: top),
              at < image.manifest.layers.count, let chain = Digest.chainID(of: image.config.rootfs.diffIDs[...at]) else { return nil }
        return (at, chain.description)
    }

    /// A run image's packages from its layers' dpkg status, and its distribution from their
    /// os-release where its labels do not say (advisories for a distribution release apply only
    /// to run images known to be that release).
    static func readLayers(_ r: inout RunImageRecord, _ layers: [Descriptor], dpkg: inout DpkgStatusReader) throws {
        if r.distro.isEmpty || r.distroVersion.isEmpty, let os = try dpkg.osRelease(in: layers) {
            if r.distro.isEmpty { r.distro = os.id }
            if r.distroVersion.isEmpty { r.distroVersion = os.versionID }
        }
        let ubuntu = r.distro.lowercased() == "ubuntu"
        r.packages = try dpkg.packages(in: layers).map { dpkgPackage($0, ubuntu: ubuntu) }
    }

    /// A dpkg package of a run image: Ubuntu's for an Ubuntu run image (its advisories name
    /// Ubuntu releases), else Debian's.
    static func dpkgPackage(_ c: SBOMDocument.Component, ubuntu: Bool) -> PackageRecord {
        let version = c.version ?? ""
        return PackageRecord(ecosystem: ubuntu ? .ubuntu : .debian, name: c.name, version: version,
                             sourceName: c.source ?? c.name, sourceVersion: c.sourceVersion ?? version)
    }

    /// `io.buildpacks.build.metadata`, read leniently (other lifecycles' labels carry more).
    /// - Throws: when the label is not JSON of that shape: the image is reported, not indexed.
    struct BuildLabel: Decodable {
        struct Module: Decodable { var id: String; var version: String }
        struct Launcher: Decodable { var version: String? }
        var buildpacks: [Module]?
        var extensions: [Module]?
        var launcher: Launcher?
    }

    static func buildMetadata(_ labels: [String: String], image: String) throws -> BuildLabel {
        guard let raw = labels[CNBLabel.buildMetadata] else { return BuildLabel() }
        do { return try JSONDecoder().decode(BuildLabel.self, from: Data(raw.utf8)) } catch {
            throw PlatformError.invalidLabel(image: image, label: CNBLabel.buildMetadata, reason: "does not parse", cause: error)
        }
    }
}

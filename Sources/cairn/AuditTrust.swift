import ArgumentParser
import CairnPlatform
import Foundation
import Inventory
import OCI
import Trust

/// `cairn audit scan` criteria answered from signatures and verified provenance (with --key):
/// unsigned images, images built by another builder, images whose builder took a buildpack from
/// a given buildpackage. Each match says why.
struct TrustCriteria: ParsableArguments {
    @Option(name: .customLong("key"), help: "The public key the trust criteria check signatures and provenance with.") var key: String?
    @Flag(help: "With --key: images without a valid signature by the key.") var unsigned = false
    @Option(name: .customLong("builder-not"), help: "With --key: images whose verified provenance names another builder (a reference or sha256:digest), or none.")
    var builderNot: String?
    @Option(name: .customLong("from-buildpackage"), help: "With --key: images whose builder's verified provenance lists a buildpack from this buildpackage (sha256:digest).")
    var fromBuildpackage: String?

    var any: Bool { unsigned || builderNot != nil || fromBuildpackage != nil }

    /// Why `image` matches every given criterion, or nil when one does not hold.
    func reasons(_ image: String, store: ImageStore) async throws -> [String]? {
        guard any else { return [] }
        guard let keyPath = key else { throw CLIError("--unsigned, --builder-not and --from-buildpackage need --key PUB") }
        let key = try VerificationKey.load(keyPath)
        let stored = try store.resolve(image)
        let repository = try ImageReference(parsing: stored.name ?? image).fullName
        let status = try await TrustStatus.read(repository: repository, digest: stored.digest, location: StoreSignatures(store: store), key: key,
                                                builderLookup: TrustStatus.storeBuilder(store))
        // The same evaluation `audit trust` makes over the inventory's records.
        var question = TrustQuestion(key: key.fingerprint)
        question.unsigned = unsigned
        question.builderNot = builderNot
        question.fromBuildpackage = fromBuildpackage
        return question.reasons(status.record(digest: stored.digest.description, key: key.fingerprint))
    }
}

extension AuditIndex {
    func verificationKeys() throws -> [VerificationKey] { try keys.map { try VerificationKey.load($0) } }

    /// The trust pass over the store's named images (with --key).
    func recordTrust(_ indexer: InventoryIndexer, store: ImageStore) async throws {
        let keys = try verificationKeys()
        guard !keys.isEmpty else { return }
        let done = try await indexer.recordTrust(location: InventoryIndexer.location(of: store), keys: keys, target: { name in
            (StoreSignatures(store: store), try ImageReference(parsing: name).fullName)
        }, builderLookup: TrustStatus.storeBuilder(store))
        print("trust: \(done) image/key checks recorded")
    }

    /// The trust pass over the registry images indexed (with --key). A builder is looked up in
    /// the store, else in its registry when that is one being indexed (no other host is asked).
    func recordTrust(_ indexer: InventoryIndexer, client: RegistryClient, cache: ImageStore) async throws {
        let keys = try verificationKeys()
        guard !keys.isEmpty else { return }
        let hosts = Set(try repositories.map { try ImageReference(parsing: $0).registry })
        let local = TrustStatus.storeBuilder(try StoreOptions.parse(storePath.map { ["--store", $0] } ?? []).open())
        let signatures = RegistrySignatures(client: client, work: cache)
        let done = try await indexer.recordTrust(location: InventoryIndexer.registryLocation, keys: keys, target: { name in
            (signatures, try ImageReference(parsing: name).fullName)
        }, builderLookup: { uri, digest in
            if let found = try await local(uri, digest) { return found }
            guard let ref = try? ImageReference(parsing: uri), hosts.contains(ref.registry) else { return nil }
            return (signatures, ref.fullName)
        })
        print("trust: \(done) image/key checks recorded")
    }
}

struct AuditTrustQuery: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "Which indexed images are unsigned, built by another builder, or hold a buildpack from a buildpackage (answers from `audit index --key`).",
        discussion: """
            Criteria combine (all must hold); without any, every named image is listed with its status. \
            An image never checked with the key is listed as `unchecked` whatever the criteria: the \
            inventory does not call it clean. Signatures can be added after an image is indexed: \
            every `audit index --key` run checks them again.
            """)

    @Option(help: "The public key (PEM) the answer is about: the one given to `audit index --key`.") var key: String
    @Flag(help: "Images without a valid signature by the key.") var unsigned = false
    @Option(name: .customLong("builder-not"), help: "Images whose verified provenance names another builder (a reference or sha256:digest), or none.")
    var builderNot: String?
    @Option(name: .customLong("from-buildpackage"), help: "Images whose builder's verified provenance lists a buildpack from this buildpackage (sha256:digest).")
    var fromBuildpackage: String?
    @OptionGroup var inventory: InventoryOptions

    func run() async throws {
        try await reportingErrors {
            var question = TrustQuestion(key: try VerificationKey.load(key).fingerprint)
            question.unsigned = unsigned
            question.builderNot = builderNot
            question.fromBuildpackage = fromBuildpackage
            let findings = try await inventory.open().run { [question] in try $0.trust(question) }
            let unchecked = findings.filter { $0.status == "unchecked" }.count
            try printRows(findings, columns: [("IMAGE", { $0.image }), ("STATUS", { $0.status }), ("BUILDER", { $0.builder.isEmpty ? "-" : $0.builder }),
                                              ("WHY", { $0.reasons.isEmpty ? "-" : $0.reasons.joined(separator: "; ") })],
                          format: inventory.format, summary: "\(findings.count) images (\(unchecked) never checked with this key)") { out in
                out.bytes += Array(try CanonicalJSON.encode(findings))
            }
        }
    }
}

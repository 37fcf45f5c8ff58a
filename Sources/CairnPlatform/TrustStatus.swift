import Foundation
import Inventory
import OCI
import Trust

/// What an image's signatures and attestations say under one key: signed or not (and why not),
/// the builder its verified SLSA provenance names, and the buildpack sources the builder's own
/// verified provenance lists. `audit scan`'s trust criteria and `audit index --key` read it.
public struct TrustStatus: Sendable {
    public var signed = false
    public var unsignedReason = ""
    public var provenance = false
    public var builder: (uri: String, sha256: String?)?
    /// The builder's provenance dependencies: (id@version or other name, uri, sha256).
    public var builderSources: [(name: String, uri: String, sha256: String?)] = []

    /// Where to find a builder's attestations: its location and repository; nil when the builder
    /// cannot be reached (its sources then stay empty).
    public typealias BuilderLookup = (_ uri: String, _ digest: Digest) async throws -> (location: any SignatureLocation, repository: String)?

    public static func read(repository: String, digest: Digest, location: any SignatureLocation, key: VerificationKey,
                            builderLookup: BuilderLookup) async throws -> TrustStatus {
        var status = TrustStatus()
        do {
            _ = try await location.verify(repository: repository, digest: digest, key: key, image: repository + "@" + digest.description)
            status.signed = true
        } catch let error as TrustError {
            status.unsignedReason = error.description
        }
        let provenance = try await location.verifyAttestations(repository: repository, digest: digest, key: key).provenance
        guard let provenance else { return status }
        status.provenance = true
        guard let b = TrustPolicy.dependencies(provenance).first(where: { $0.name == "builder" }) else { return status }
        status.builder = (b.uri, b.sha256)
        if let sha = b.sha256, let builderDigest = Digest("sha256:" + sha), let (builderLocation, builderRepository) = try await builderLookup(b.uri, builderDigest) {
            let builderProvenance = try await builderLocation.verifyAttestations(repository: builderRepository, digest: builderDigest, key: key).provenance
            status.builderSources = builderProvenance.map(TrustPolicy.dependencies) ?? []
        }
        return status
    }

    /// The builder in a store: `uri@sha256:…` resolved there.
    public static func storeBuilder(_ store: ImageStore) -> BuilderLookup {
        { uri, digest in
            guard let image = try? store.resolve("\(uri)@\(digest)") else { return nil }
            return (StoreSignatures(store: store), try ImageReference(parsing: image.name ?? uri).fullName)
        }
    }

    /// The inventory row for this status under the key with fingerprint `key`.
    public func record(digest: String, key: String) -> TrustRecord {
        var r = TrustRecord(digest: digest, key: key)
        r.signed = signed
        r.provenance = provenance
        r.detail = signed ? "" : unsignedReason
        r.builder = builder?.uri ?? ""
        r.builderDigest = builder?.sha256.map { "sha256:" + $0 } ?? ""
        r.sources = builderSources.compactMap { s in s.sha256.map { (s.name, s.uri, "sha256:" + $0) } }
        return r
    }
}

extension InventoryIndexer {
    /// Checks every image named at `location` (after an index run over it) with each key and
    /// records what holds; `target` gives an image's signature location and repository.
    public func recordTrust(location: String, keys: [VerificationKey],
                            target: (String) throws -> (location: any SignatureLocation, repository: String),
                            builderLookup: TrustStatus.BuilderLookup) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        let run = try await inventory.run { try $0.beginRun(source: "trust " + location) }
        var records: [TrustRecord] = []
        for (name, digestText) in try await inventory.run({ try $0.namedImages(location: location) }) {
            guard let digest = Digest(digestText) else { continue }
            do {
                let (signatures, repository) = try target(name)
                for key in keys {
                    let status = try await TrustStatus.read(repository: repository, digest: digest, location: signatures, key: key,
                                                            builderLookup: builderLookup)
                    records.append(status.record(digest: digestText, key: key.fingerprint))
                }
            } catch {
                warn("\(name): signatures not checked: \(error)")
            }
        }
        let found = records
        return try await inventory.run { try $0.recordTrust(found, run: run) }
    }
}

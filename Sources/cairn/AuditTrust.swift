import ArgumentParser
import Foundation
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
        let location = StoreSignatures(store: store)
        let stored = try store.resolve(image)
        let repository = try ImageReference(parsing: stored.name ?? image).fullName
        var reasons: [String] = []
        let signed: Bool
        do {
            _ = try await location.verify(repository: repository, digest: stored.digest, key: key, image: image)
            signed = true
        } catch {
            signed = false
            if unsigned { reasons.append("unsigned: \(error)") }
        }
        if unsigned && signed { return nil }
        let provenance = try await location.verifyAttestations(repository: repository, digest: stored.digest, key: key)
            .verified.first { $0.predicateType == Attestation.slsaProvenance }?.statement
        let builder = provenance.flatMap { TrustPolicy.dependencies($0).first { $0.name == "builder" } }
        if let other = builderNot {
            if let b = builder, b.uri == other || "sha256:" + (b.sha256 ?? "") == other { return nil }
            reasons.append(builder.map { "built by \($0.uri)@sha256:\($0.sha256 ?? "?")" } ?? "no verified provenance names its builder")
        }
        if let wanted = fromBuildpackage {
            guard let b = builder, let sha = b.sha256, let builderImage = try? store.resolve("\(b.uri)@sha256:\(sha)") else { return nil }
            let builderRepository = try ImageReference(parsing: builderImage.name ?? b.uri).fullName
            let builderProvenance = try await location.verifyAttestations(repository: builderRepository, digest: builderImage.digest, key: key)
                .verified.first { $0.predicateType == Attestation.slsaProvenance }?.statement
            let sources = builderProvenance.map(TrustPolicy.dependencies) ?? []
            guard let source = sources.first(where: { "sha256:" + ($0.sha256 ?? "") == wanted }) else { return nil }
            reasons.append("builder \(b.uri) took \(source.name) \(source.uri) from buildpackage \(wanted)")
        }
        return reasons
    }
}

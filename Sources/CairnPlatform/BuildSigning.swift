import Buildpacks
import Foundation
import OCI
import Phases
import Trust

/// `cairn build --sign`: the image Cairn made, signed (cosign's `.sig`), with its SLSA
/// provenance and its merged SBOM as signed in-toto attestations (`.att`), beside it in the
/// store; `cairn push` carries them to the registry.
public struct BuildSigner {
    public var store: ImageStore
    public var key: SigningKey
    /// CAIRN_HOME: where the builder is unpacked (its buildpack.toml files name dependencies).
    public var home: String?

    public init(store: ImageStore, key: SigningKey, home: String? = nil) {
        self.store = store
        self.key = key
        self.home = home
    }

    /// Signs and attests `app`; returns one line per artifact written.
    public func sign(request: BuildRequest, app: StoredImage, started: Date, finished: Date) async throws -> [String] {
        let builder = try store.resolve(request.builder)
        let runImage = try? app.lifecycleMetadata()?.runImage
        let runName = runImage?.image ?? request.runImage
        let runDigest = runName.flatMap { try? store.resolve($0).digest }
        var provenance = BuildProvenance(request: request, app: app, builder: builder, runImage: runName.map { ($0, runDigest) },
                                         started: started, finished: finished)
        provenance.builderRoot = try home.map { try RootfsCache(home: $0).rootfs(of: builder, in: store, log: { _ in }) }
        let used = app.config.config?.labels?[CNBLabel.buildMetadata]
            .flatMap { try? JSONDecoder().decode(BuildProvenance.UsedModules.self, from: Data($0.utf8)) }?.buildpacks ?? []
        let dependencies = used.flatMap { provenance.dependencies(of: $0.id, $0.version) }
        let repository = try ImageReference(parsing: app.name ?? request.image).fullName
        let location = StoreSignatures(store: store)
        var done = ["signature \(repository):\(Cosign.signatureTag(for: app.digest))"]
        var predicates = [(type: Attestation.slsaProvenance, predicate: try provenance.predicate())]
        done.append("SLSA provenance attestation \(repository):\(Attestation.tag(for: app.digest))")
        let documents = try SBOMReader.documents(of: app, in: store)
        if !documents.isEmpty || !dependencies.isEmpty {
            predicates.append((Attestation.cycloneDX, try SBOMReader.mergedCycloneDX(documents, name: repository, dependencies: dependencies)))
            done.append("CycloneDX SBOM attestation (\(documents.count) documents merged, \(dependencies.count) buildpack dependencies)")
        }
        try await location.signAndAttest(repository: repository, digest: app.digest, predicates: predicates, key: key)
        return done
    }
}

extension SBOMReader {
    /// One CycloneDX 1.4 document with every component of the image's SBOM documents (each
    /// once, by name, version and purl), for an SBOM attestation.
    public static func mergedCycloneDX(_ documents: [SBOMDocument], name: String, dependencies: [BuildpackDependency] = []) throws -> Data {
        var seen = Set<String>()
        var components: [[String: Any]] = []
        for doc in documents {
            for c in try doc.components() {
                let key = [c.name, c.version ?? "", c.purl ?? ""].joined(separator: "\u{0}")
                guard seen.insert(key).inserted else { continue }
                var entry: [String: Any] = ["type": "library", "name": c.name]
                if let v = c.version { entry["version"] = v }
                if let p = c.purl { entry["purl"] = p }
                components.append(entry)
            }
        }
        // What the buildpacks say they downloaded, with the digest they pinned.
        for d in dependencies {
            var entry: [String: Any] = ["type": "library", "name": d.id, "version": d.version,
                                        "externalReferences": [["type": "distribution", "url": d.uri]]]
            if let sha = d.sha256 { entry["hashes"] = [["alg": "SHA-256", "content": sha]] }
            components.append(entry)
        }
        let bom: [String: Any] = [
            "bomFormat": "CycloneDX", "specVersion": "1.4", "version": 1,
            "metadata": ["component": ["type": "container", "name": name]],
            "components": components,
        ]
        return try canonicalJSON(bom)
    }
}

import Buildpacks
import Foundation
import Synchronization
import OCI
import Phases
import Trust

/// `cairn build --sign`: the image Cairn made, signed (cosign's `.sig`), with its SLSA
/// provenance and its merged SBOM as signed in-toto attestations (`.att`), beside it in the
/// store; `cairn push` carries them to the registry.
public struct BuildSigner: Sendable {
    public var store: ImageStore
    public var key: SigningKey
    /// CAIRN_HOME: where the builder is unpacked (its buildpack.toml files name dependencies).
    public var home: String?

    public init(store: ImageStore, key: SigningKey, home: String? = nil) {
        self.store = store
        self.key = key
        self.home = home
    }

    /// What signing needs that does not depend on the image built, found while the build runs
    /// (`prepare` in a task beside it): the builder, its unpacked root, the source's identity,
    /// the run image the build is expected to use and its digest.
    public struct Preparation: Sendable {
        var builder: StoredImage
        var builderFacts: BuildProvenance.BuilderFacts
        var builderRoot: String?
        var source: SourceIdentity.Found
        var runImage: (name: String, digest: Digest)?
    }

    public func prepare(request: BuildRequest) async throws -> Preparation {
        try await Trace.step("sign: prepare") {
            let builder = try Trace.step("sign: builder") { try store.resolve(request.builder) }
            let root = try Trace.step("sign: builder root") { try home.map { try RootfsCache(home: $0).rootfs(of: builder, in: store, log: { _ in }) } }
            let runName = try request.runImage ?? BuilderCreator.runImage(of: builder)
            let run = Trace.step("sign: run image") { runName.flatMap { name in (try? store.resolve(name)).map { (name, $0.digest) } } }
            let src = try Trace.step("sign: source digest") { try SourceIdentity.of(request.appPath) }
            let ready = Preparation(builder: builder, builderFacts: .init(builder), builderRoot: root, source: src, runImage: run)
            // A rehearsal: the artifacts made (not stored) for the image's previous version (else
            // the builder image) as if it were the app. The first pass through this code costs
            // several ms of one-time runtime work (lazy symbol binding, protocol conformance
            // lookups, type metadata, the crypto library's setup, the SBOM layer's tar and gzip
            // readers) and the second a fraction of it (measured: 3.7-4.9 ms without, 1.2-1.9 ms
            // with): paid here, while the build runs on the other core, it is not paid again
            // while the imported image waits for its signature.
            let rehearsal = (try? store.resolve(request.image)) ?? builder
            _ = try await Trace.step("sign: rehearsal") { try await artifacts(request: request, app: rehearsal, started: Date(), finished: Date(), prepared: ready) }
            return ready
        }
    }

    /// `prepare` for one build, begun by `start` (`BuildRunner.lifecycleStarting`) or, at the
    /// latest, when the companion needs it.
    public final class Preparing: Sendable {
        let signer: BuildSigner
        let request: BuildRequest
        let task = Mutex<Task<Preparation, any Error>?>(nil)

        public init(signer: BuildSigner, request: BuildRequest) {
            self.signer = signer
            self.request = request
        }

        public func start() {
            task.withLock { [signer, request] task in
                if task == nil { task = Task { try await signer.prepare(request: request) } }
            }
        }

        var value: Preparation {
            get async throws {
                start()
                return try await task.withLock { $0! }.value
            }
        }
    }

    /// Signing as the build's import companion (`BuildRunner.companion`): the image's signature
    /// and attestations, made once its blobs are in the store, their blobs written in the
    /// import's session; their names go into the import's one index update. `preparing`: what
    /// `prepare` finds, begun while the lifecycle runs. A line per artifact goes to `report`.
    public func companion(request: BuildRequest, started: Date, preparing: Preparing, report: SigningReport)
        -> BuildRunner.ImportCompanion {
        { [self] app, session in
            let finished = Date()
            let ready = try await preparing.value
            let (writes, repository, done) = try await Trace.step("sign: artifacts") {
                try await artifacts(request: request, app: app, started: started, finished: finished, prepared: ready)
            }
            let names = try Trace.step("sign: blobs") { try StoreSignatures(store: store).writeBlobs(repository: repository, writes, in: session) }
            report.lines.withLock { $0 = done }
            return names
        }
    }

    /// The signature and attestations of `app`, made, not stored; their repository; a line each.
    func artifacts(request: BuildRequest, app: StoredImage, started: Date, finished: Date, prepared ready: Preparation) async throws
        -> (writes: [ArtifactWrite], repository: String, done: [String]) {
        let runName = app.config.config?.labels?[CNBLabel.lifecycleMetadata]
            .flatMap { try? JSONDecoder().decode(RunImageOnly.self, from: Data($0.utf8)) }?.runImage?.image ?? request.runImage
        // The run image the build used: the one resolved beforehand unless the build chose
        // another (an image extension may).
        let runDigest = runName.flatMap { name in
            ready.runImage.flatMap { $0.name == name ? $0.digest : nil } ?? (try? store.resolve(name))?.digest
        }
        var provenance = BuildProvenance(request: request, app: app, builder: ready.builder, runImage: runName.map { ($0, runDigest) },
                                         started: started, finished: finished)
        provenance.builderRoot = ready.builderRoot
        provenance.source = ready.source
        provenance.builderFacts = ready.builderFacts
        provenance.used = BuildProvenance.UsedModules(of: app)
        // Each buildpack.toml is read once, for the provenance and the SBOM.
        let perBuildpack = (provenance.used?.buildpacks ?? []).map { ("\($0.id)@\($0.version)", provenance.dependencies(of: $0.id, $0.version)) }
        provenance.buildpackDependencies = Dictionary(perBuildpack, uniquingKeysWith: { first, _ in first })
        let dependencies = perBuildpack.flatMap(\.1)
        let repository = try ImageReference(parsing: app.name ?? request.image).fullName
        var done = ["signature \(repository):\(Cosign.signatureTag(for: app.digest))"]
        var predicates = [(type: Attestation.slsaProvenance, predicate: try provenance.predicate())]
        done.append("SLSA provenance attestation \(repository):\(Attestation.tag(for: app.digest))")
        let documents = try SBOMReader.documents(of: app, in: store)
        if !documents.isEmpty || !dependencies.isEmpty {
            predicates.append((Attestation.cycloneDX, try SBOMReader.mergedCycloneDX(documents, name: repository, dependencies: dependencies)))
            done.append("CycloneDX SBOM attestation (\(documents.count) documents merged, \(dependencies.count) buildpack dependencies)")
        }
        let writes = try await StoreSignatures(store: store).signAndAttestWrites(repository: repository, digest: app.digest, predicates: predicates, key: key)
        return (writes, repository, done)
    }
}

/// What a build's signing companion wrote, a line per artifact, read when the build is done.
public final class SigningReport: Sendable {
    let lines = Mutex<[String]>([])
    public init() {}
    public var written: [String] { lines.withLock { $0 } }
}

/// The run image's name from io.buildpacks.lifecycle.metadata, all signing needs of the label
/// (decoding the whole label cost about 1 ms, more than the rest of the provenance).
private struct RunImageOnly: Decodable {
    struct Run: Decodable { var image: String? }
    var runImage: Run?
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

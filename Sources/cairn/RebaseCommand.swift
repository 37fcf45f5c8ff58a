import ArgumentParser
import Buildpacks
import Foundation
import Phases
import OCI
import CairnPlatform
import Trust

struct Rebase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebase",
        abstract: "Put app images on a new run image without rebuilding them, and patch their buildpack layers.",
        discussion: """
            Each image's run image layers (up to the top layer its metadata records) are replaced by the \
            run image's current layers; the app's layers, config and labels stay. The run image is the one \
            the image records (after `cairn stack create` or `cairn pull` updated it), or --run-image. \
            With --layer-patches, buildpack-contributed layers (and the launcher) are replaced in place by \
            the same layers of patch images, in the same operation; all patches of an image are checked \
            before any is applied. Several images are rebased at once (--jobs); a failure is reported and \
            the others go on.
            """)

    @Argument(help: "App images to rebase (in the store; with --remote, registry references).") var images: [String]
    @Option(name: .customLong("run-image"), help: "The run image to rebase onto (default: the one each image records).") var runImage: String?
    @Option(name: .customLong("layer-patches"), help: "A layer patches file (JSON): buildpack layers and the launcher to replace from patch images.")
    var layerPatches: String?
    @Flag(name: .customLong("dry-run"), help: "With --layer-patches: print what would be patched in each image, change nothing.")
    var dryRun = false
    @Flag(help: "Rebase even when an image is marked not rebasable, the run image is for another target, or it is not the image's run image; patch layers their buildpack did not mark patchable.")
    var force = false
    @Flag(help: "The images and run image are in a registry: rebased images are pushed there; layers are mounted, never downloaded.")
    var remote = false
    @Option(help: "How many images to rebase at once.") var jobs = 4
    @Flag(name: [.long, .customShort("q")], help: "Print only the digests, in the order the images were given.") var quiet = false
    @Option(help: "Output: table or json.") var format: OutputFormat = .table
    @Flag(help: "Sign each rebased image and attach SLSA provenance naming the old and new digests, the run image and each patch image (--key or CAIRN_SIGNING_KEY).")
    var sign = false
    @Option(help: "The signing key for --sign (PEM; default CAIRN_SIGNING_KEY).") var key: String?
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registry: RegistryOptions

    /// One image's outcome, as `--format json` prints it.
    struct Outcome: Encodable {
        var image: String
        var digest: String?
        var runImage: String?
        var removedLayers: Int?
        var addedLayers: Int?
        var patched: [LayerReplacement]?
        var skipped: [SkippedPatch]?
        var signed: Bool?
        var error: String?
    }

    func run() async throws {
        try await reportingErrors {
            guard jobs >= 1 else { throw CLIError("--jobs must be at least 1") }
            if dryRun && layerPatches == nil { throw CLIError("--dry-run needs --layer-patches (it prints the patch plan)") }
            let patches = try layerPatches.map { path in
                do { return try LayerPatchFile.read(path) } catch { throw CLIError("\(error)") }
            }
            let signingKey = try TrustConfig.signingKey(flag: sign, key: key)
            var outcomes: [String: Outcome] = [:]
            let lists = PackageLists()
            try await withLocation { location in
                // A fleet in a registry is bound by round trips, not CPU: several rebases at once.
                try await withThrowingTaskGroup(of: Outcome.self) { group in
                    var pending = images.makeIterator()
                    func startNext() -> Bool {
                        guard let image = pending.next() else { return false }
                        group.addTask { await one(image, patches: patches, location: location, lists: lists, key: signingKey) }
                        return true
                    }
                    for _ in 0..<jobs where !startNext() { break }
                    while let outcome = try await group.next() {
                        outcomes[outcome.image] = outcome
                        if format == .table { printText(outcome) }
                        _ = startNext()
                    }
                }
            }
            let ordered = images.compactMap { outcomes[$0] }
            if format == .json {
                try printEncoded(ordered)
            } else if quiet {
                // Quiet output is for scripts: digests in the order the images were given.
                for o in ordered { if let d = o.digest { print(d) } }
            }
            let failed = ordered.filter { $0.error != nil }.map(\.image)
            if !failed.isEmpty {
                throw CLIError("\(failed.count) of \(images.count) images not rebased: \(failed.joined(separator: ", "))")
            }
        }
    }

    /// Rebases (or, with --dry-run, plans the patches of) one image; failures become the outcome.
    func one(_ image: String, patches: LayerPatchFile?, location: ImageLocation, lists: PackageLists, key: SigningKey?) async -> Outcome {
        do {
            if dryRun, let patches {
                guard let app = try await location.find(image, layers: false) else { throw CLIError("app image \(image) not found") }
                let plan = try await LayerPatcher(file: patches, location: location, force: force).plan(for: app, named: image)
                return Outcome(image: image, patched: plan.replacements, skipped: plan.skipped)
            }
            var inputs = RebaserInputs(images: [image], previousImage: nil, runImage: runImage, force: force, reportPath: nil,
                                       location: location, platformAPI: SupportedAPIs.defaultPlatform, layerPatches: patches)
            inputs.checkRunImage = packageCheck(image, location: location, lists: lists)
            let started = Date()
            let previous = try await location.find(image, layers: false)?.image.digest
            // Read before the rebase moves the name, which retires the old image's artifact names.
            var buildSBOM: ArtifactWrite?
            if let previous { buildSBOM = try await location.takeBuildSBOM(image: image, of: previous) }
            let result = try await Rebaser(inputs: inputs, log: Logger(level: .warn)).run()
            try await location.keepBuildSBOM(buildSBOM, image: image, for: result.image.digest)
            if let key, let previous {
                try await attestRebase(result, image: image, previous: previous, started: started, location: location, key: key,
                                       requestedRunImage: runImage, layerPatchesFile: layerPatches)
            }
            return Outcome(image: image, digest: result.image.digest.description, runImage: result.runImage,
                           removedLayers: result.removedLayers, addedLayers: result.addedLayers, patched: result.patches?.replacements,
                           skipped: result.patches?.skipped, signed: key == nil ? nil : true)
        } catch {
            return Outcome(image: image, error: "\(error)")
        }
    }

    /// Prints what the new run image changes in the dpkg package list (store images whose run
    /// images both have one) and refuses a rebase that removes a package, unless --force.
    func packageCheck(_ image: String, location: ImageLocation, lists: PackageLists) -> @Sendable (LocatedImage, [Descriptor], LocatedImage) throws -> Void {
        let (force, quiet, table) = (force, quiet, format == .table)
        return { _, oldLayers, newRun in
            guard case .store(let store) = location,
                  let diff = try PackageDiff.runImages(store: store, old: oldLayers, new: newRun.image.manifest.layers, lists: lists), !diff.isEmpty else { return }
            if table && !quiet { for line in diff.lines { print("\(image): run image packages: \(line)") } }
            if !diff.removed.isEmpty && !force {
                throw CLIError("the new run image removes package(s) \(diff.removed.map(\.name).joined(separator: ", ")); use --force to rebase anyway")
            }
        }
    }

    func printText(_ o: Outcome) {
        if let error = o.error {
            FileHandle.standardError.write(Data("cairn: error: \(o.image): \(error)\n".utf8))
            return
        }
        guard !quiet else { return }
        let verb = dryRun ? "would patch" : "patched"
        for r in o.patched ?? [] {
            let versions = r.oldVersion.flatMap { old in r.newVersion.map { " (\(old) -> \($0))" } } ?? ""
            print("\(o.image): \(verb) \(r.name) \(r.oldDiffID) -> \(r.newDiffID)\(versions) from \(r.patchImage)@\(r.patchImageDigest)")
        }
        for s in o.skipped ?? [] { print("\(o.image): skipped \(s.patch): \(s.reason)") }
        if let digest = o.digest {
            print("Rebased \(o.image) onto \(o.runImage ?? "?"): \(o.removedLayers ?? 0) run image layers replaced by \(o.addedLayers ?? 0); \(digest)"
                  + (o.signed == true ? "; signed, provenance attested" : ""))
        }
        if dryRun && (o.patched ?? []).isEmpty { print("\(o.image): nothing to patch") }
    }

    /// The store, or (--remote) a registry with a scratch store for manifests and configs.
    func withLocation(_ body: (ImageLocation) async throws -> Void) async throws {
        guard remote else {
            let store = try storeOptions.open()
            let session = try store.beginWriteSession()  // prune waits until every rebase is done
            defer { withExtendedLifetime(session) {} }
            try await body(.store(store))
            return
        }
        let scratch = FileManager.default.temporaryDirectory.path + "/cairn-rebase-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let work = try ImageStore(root: scratch, durable: false)
        try await withClient(registry) { client in try await body(.registry(client, work: work)) }
    }
}

/// Signs a rebased image and attests how it was made from the previous one (`cairn rebase
/// --sign`, `cairn fleet fix --sign`).
func attestRebase(_ result: RebaseResult, image: String, previous: Digest, started: Date, location: ImageLocation, key: SigningKey,
                  requestedRunImage: String?, layerPatchesFile: String?) async throws {
    let provenance = RebaseProvenance(
        image: image, previousDigest: previous, newDigest: result.image.digest, runImage: result.runImage,
        runImageReference: (try? result.image.lifecycleMetadata())??.runImage?.reference, requestedRunImage: requestedRunImage,
        removedLayers: result.removedLayers, addedLayers: result.addedLayers, replacements: result.patches?.replacements ?? [],
        layerPatchesFile: layerPatchesFile, started: started, finished: Date())
    guard let signatures = location.artifacts else { throw CLIError("--sign: images in OCI layouts are not signed here") }
    let repository = try ImageReference(parsing: image).fullName
    try await signatures.sign(repository: repository, digest: result.image.digest, key: key)
    try await signatures.attest(repository: repository, digest: result.image.digest, predicateType: Attestation.slsaProvenance,
                                predicate: try provenance.predicate(), key: key)
}

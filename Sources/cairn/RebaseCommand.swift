import ArgumentParser
import Buildpacks
import Foundation
import Lifecycle
import OCI

struct Rebase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put app images on a new run image without rebuilding them.",
        discussion: """
            Each image's run image layers (up to the top layer its metadata records) are replaced by the \
            run image's current layers; the app's layers, config and labels stay. The run image is the one \
            the image records (after `cairn stack create` or `cairn pull` updated it), or --run-image. \
            Several images are rebased at once (--jobs); a failure is reported and the others go on.
            """)

    @Argument(help: "App images to rebase (in the store; with --remote, registry references).") var images: [String]
    @Option(name: .customLong("run-image"), help: "The run image to rebase onto (default: the one each image records).") var runImage: String?
    @Flag(help: "Rebase even when an image is marked not rebasable, the run image is for another target, or it is not the image's run image.")
    var force = false
    @Flag(help: "The images and run image are in a registry: rebased images are pushed there; layers are mounted, never downloaded.")
    var remote = false
    @Option(help: "How many images to rebase at once.") var jobs = 4
    @Flag(help: "Print only the digests, in the order the images were given.") var quiet = false
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        try await reportingErrors {
            guard jobs >= 1 else { throw CLIError("--jobs must be at least 1") }
            var failed: [String] = []
            var digests: [String: String] = [:]
            try await withLocation { location in
                // A fleet in a registry is bound by round trips, not CPU: several rebases at once.
                try await withThrowingTaskGroup(of: (String, Result<RebaseResult, any Error>).self) { group in
                    var pending = images.makeIterator()
                    func startNext() -> Bool {
                        guard let image = pending.next() else { return false }
                        let inputs = RebaserInputs(images: [image], previousImage: nil, runImage: runImage, force: force, reportPath: nil,
                                                   location: location, platformAPI: SupportedAPIs.defaultPlatform)
                        group.addTask {
                            do { return (image, .success(try await Rebaser(inputs: inputs, log: Logger(level: .warn)).run())) } catch {
                                return (image, .failure(error))
                            }
                        }
                        return true
                    }
                    for _ in 0..<jobs where !startNext() { break }
                    while let (image, outcome) = try await group.next() {
                        switch outcome {
                        case .success(let result) where quiet:
                            digests[image] = result.image.digest.description
                        case .success(let result):
                            print("Rebased \(image) onto \(result.runImage): \(result.removedLayers) run image layers replaced by \(result.addedLayers); \(result.image.digest)")
                        case .failure(let error):
                            FileHandle.standardError.write(Data("cairn: error: \(image): \(error)\n".utf8))
                            failed.append(image)
                        }
                        _ = startNext()
                    }
                }
            }
            // Quiet output is for scripts: digests in the order the images were given.
            for image in images { if let d = digests[image] { print(d) } }
            if !failed.isEmpty {
                throw CLIError("\(failed.count) of \(images.count) images not rebased: \(failed.joined(separator: ", "))")
            }
        }
    }

    /// The store, or (--remote) a registry with a scratch store for manifests and configs.
    func withLocation(_ body: (ImageLocation) async throws -> Void) async throws {
        guard remote else {
            try await body(.store(try storeOptions.open()))
            return
        }
        let scratch = FileManager.default.temporaryDirectory.path + "/cairn-rebase-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let work = try ImageStore(root: scratch)
        try await withClient(registry) { client in try await body(.registry(client, work: work)) }
    }
}

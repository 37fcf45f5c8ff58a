import ArgumentParser
import Foundation
import Phases
import OCI

struct PatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patch",
        abstract: "Make patch images for `cairn rebase --layer-patches`.",
        subcommands: [Extract.self])

    struct Extract: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "extract",
            abstract: "Write a minimal patch image holding one buildpack layer of an image.",
            discussion: """
                The patch image holds the layer, an SBOM layer with only that layer's documents (when \
                the image has any) and labels naming the buildpack, its version and the layer's \
                metadata: everything `cairn rebase --layer-patches` reads, nothing else. Push it to \
                publish it.
                """)

        @Argument(help: "The app image (built with the buildpack version that has the fix).") var image: String
        @Option(help: "The buildpack ID.") var buildpack: String
        @Option(help: "The layer name.") var layer: String
        @Argument(help: "The patch image reference to write.") var reference: String
        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await reportingErrors {
                let store = try storeOptions.open()
                let session = try store.beginWriteSession()  // prune waits until this command is done
                defer { withExtendedLifetime(session) {} }
                let source: StoredImage
                do { source = try store.resolve(image) } catch { throw CLIError("image \(image): \(error)") }
                let patch = try PatchImageExtractor.extract(LocatedImage(store: store, image: source), name: image,
                                                            buildpack: buildpack, layer: layer, into: store, reference: reference)
                print("Wrote patch image \(reference) (\(buildpack):\(layer), \(patch.manifest.layers.count) layers, \(patch.totalSize) bytes): \(patch.digest)")
            }
        }
    }
}

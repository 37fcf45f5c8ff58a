import ArgumentParser
import Foundation
import Synchronization
import OCI

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn a directory into one layer on top of a base image (or of nothing) and store the image.")

    @Argument(help: "The directory to import; it becomes the image's root filesystem (or is added over the base).")
    var directory: String

    @Argument(help: "The name to store the image under, e.g. myapp:1.0.")
    var reference: String

    @Option(help: "An image in the store to build on.")
    var base: String?

    @Option(help: "Layer compression: gzip, zstd or none.")
    var compression: Compression = .gzip

    @Option(name: .customLong("compression-level"), help: "gzip 1-9 (default 1, as the reference lifecycle) or zstd 1-19 (default 3); also CAIRN_COMPRESSION_LEVEL.")
    var compressionLevel: Int32?

    @Option(help: "Owner uid recorded for every file in the layer.")
    var uid: Int = 0

    @Option(help: "Owner gid recorded for every file in the layer.")
    var gid: Int = 0

    @Flag(name: [.long, .customShort("q")], help: "Print only the image digest.")
    var quiet = false
    @Option(help: "table (lines for people) or json (the result as one object).") var format: OutputFormat = .table

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            _ = try ImageStore.storedName(reference)  // reject a bad name before doing work
            let store = try storeOptions.open()
            let session = try store.beginWriteSession()  // prune waits until this command is done
            defer { withExtendedLifetime(session) {} }
            let environment = ProcessInfo.processInfo.environment
            var options = try LayerWriteOptions.fromEnvironment(environment)
            options.compression = compression
            if let compressionLevel {
                guard (1...(compression == .zstd ? 19 : 9)).contains(compressionLevel) else {
                    throw CLIError("--compression-level \(compressionLevel): expected 1-\(compression == .zstd ? 19 : 9) for \(compression)")
                }
                options.level = compressionLevel
            }
            options.uid = uid
            options.gid = gid
            let baseImage = try base.map { try store.resolve($0) }
            let progress = quiet ? nil : Progress(label: "Importing \(directory)")
            if let progress {
                options.progress = { @Sendable (bytes: Int64) in progress.update(bytes) }
            }
            let started = Date()
            let layer = try session.writeLayer(directory: directory, options: options)
            progress?.done()
            let created = environment["SOURCE_DATE_EPOCH"].flatMap { Int64($0) }.map(rfc3339) ?? normalizedCreated
            let image = try session.commitImage(
                base: baseImage, layers: [layer],
                history: [History(created: created, createdBy: "cairn import", comment: "\(layer.entries) entries")],
                created: created, reference: reference)
            if format == .json {
                try printJSON(["image": image.name ?? reference, "digest": image.digest.description, "layer": layer.digest.description,
                               "entries": layer.entries, "size": layer.size])
            } else if quiet {
                print(image.digest)
            } else {
                let seconds = Date().timeIntervalSince(started)
                print("Layer \(layer.digest.short): \(layer.entries) entries, \(formatBytes(layer.uncompressedSize)) -> \(formatBytes(layer.size)) \(compression.rawValue) in \(String(format: "%.2f", seconds)) s")
                print("Stored \(image.name ?? reference) \(image.digest)")
            }
        }
    }
}

extension Compression: ExpressibleByArgument {}

/// A one-line progress indicator on a terminal; silent when stderr is not a terminal.
final class Progress: Sendable {
    private let label: String
    private let enabled = isatty(2) == 1
    /// When the line was last drawn.
    private let last = Mutex(Date.distantPast)

    init(label: String) { self.label = label }

    func update(_ bytes: Int64) {
        guard enabled else { return }
        last.withLock { last in
            let now = Date()
            guard now.timeIntervalSince(last) > 0.2 else { return }
            last = now
            FileHandle.standardError.write(Data("\r\(label): \(formatBytes(bytes))\u{1b}[K".utf8))
        }
    }

    func done() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
    }
}

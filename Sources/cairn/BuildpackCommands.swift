import ArgumentParser
import Buildpacks
import Foundation
import OCI
import Trust
import CairnPlatform

struct BuildpackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "buildpack", abstract: "Buildpacks as the ecosystem ships them.", subcommands: [BuildpackPackage.self])
}

/// `cairn buildpack package [DIR] (REF | --format file OUT.cnb)`: a buildpackage as pack makes one.
struct BuildpackPackage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "package",
        abstract: "Package a buildpack (and, for a composite, its dependencies) as a buildpackage image or .cnb file.",
        discussion: """
            cairn buildpack package [DIR] REF [--config package.toml] [--publish]
            cairn buildpack package [DIR] OUT.cnb --format file [--config package.toml]
            DIR is the buildpack when no --config is given (default: the current directory).
            """)

    @Argument(help: "[DIR] then the image name (or with --format file, the .cnb path).") var arguments: [String]
    @Option(help: "pack's package.toml: [buildpack] uri and [[dependencies]] uri (directories, images, .cnb files).") var config: String?
    @Option(help: "image (in the store, the default) or file (a .cnb file).") var format = "image"
    @Flag(help: "Push the image to its registry.") var publish = false
    @Flag(help: "Sign the buildpackage image (cosign's format, in the store; --publish pushes the signature too).") var sign = false
    @Option(help: "The signing key for --sign (PEM; default CAIRN_SIGNING_KEY).") var key: String?
    @Flag(name: [.long, .customShort("q")], help: "Print only the digest.") var quiet = false
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        try await reportingErrors {
            guard (1...2).contains(arguments.count) else { throw CLIError("give [DIR] and an image name (or a .cnb path with --format file)") }
            if sign && format == "file" { throw CLIError("--sign signs a buildpackage image; a .cnb file carries no signature (use --format image)") }
            let signingKey = try sign ? loadSigningKey(key) : nil
            guard ["image", "file"].contains(format) else { throw CLIError("--format must be image or file, not \(format)") }
            if publish && format == "file" { throw CLIError("--publish pushes an image; it does not go with --format file") }
            let directory = URL(fileURLWithPath: arguments.count == 2 ? arguments[0] : ".").standardizedFileURL.path
            let target = arguments.last!
            let store = try storeOptions.open()
            let session = try store.beginWriteSession()  // prune waits until this command is done
            defer { withExtendedLifetime(session) {} }
            if let config {
                // Dependencies named by image reference come from their registry when the store lacks them.
                let parsed = try TOMLFile.read(PackageConfig.self, from: config)
                for d in parsed.dependencies where Buildpackage.isPackageReference(d.uri) && !d.uri.hasSuffix(".cnb") {
                    try await pullIfMissing(Buildpackage.imageReference(d.uri), store: store, registry: registry, quiet: quiet)
                }
            }
            let packager = BuildpackPackager(store: store, log: say(quiet))
            let name = format == "file" ? "cairn-buildpackage-\(UUID().uuidString.prefix(8).lowercased()):latest" : target
            let image = try packager.package(configPath: config.map { URL(fileURLWithPath: $0).standardizedFileURL.path },
                                             directory: directory, reference: name)
            if format == "file" {
                try packager.writeFile(image, to: target)
                _ = try store.remove(name)
                print(quiet ? image.digest.description : "\(target) \(image.digest)")
                return
            }
            if let signingKey {
                try await StoreSignatures(store: store).sign(repository: try ImageReference(parsing: image.name ?? target).fullName,
                                                            digest: image.digest, key: signingKey)
            }
            if publish {
                let ref = try ImageReference(parsing: target)
                _ = try await withClient(registry) { client in
                    let digest = try await ImageTransfer(client: client, store: store).push(image, to: ref, progress: ConsoleProgress(verb: "Pushing", quiet: quiet))
                    if digest == image.digest {
                        _ = try await copyTrustArtifacts(digest: digest, from: StoreSignatures(store: store), repository: try ImageReference(parsing: image.name ?? target).fullName,
                                                         to: RegistrySignatures(client: client, work: store), repository: ref.fullName)
                    }
                }
            }
            print(quiet ? image.digest.description : "\(image.name ?? target) \(image.digest)")
        }
    }
}

/// Pulls `reference` into the store unless it is there.
func pullIfMissing(_ reference: String, store: ImageStore, registry: RegistryOptions, quiet: Bool) async throws {
    try await ensureImage(reference, what: "image", policy: .ifNotPresent, store: store, registry: registry, quiet: quiet)
}

/// `--pull-policy`, as pack names it.
enum PullPolicy: String, ExpressibleByArgument, CaseIterable {
    case always
    case ifNotPresent = "if-not-present"
    case never
}

/// Makes `reference` available in the store as `policy` says: pulled every time (`always`), when
/// missing (`if-not-present`), or never (a missing image is an error naming it and the policy).
func ensureImage(_ reference: String, what: String, policy: PullPolicy, store: ImageStore, registry: RegistryOptions,
                 quiet: Bool) async throws {
    let present = (try? store.resolve(reference)) != nil
    switch policy {
    case .never:
        guard present else { throw CLIError("\(what) \(reference) is not in the store, and --pull-policy never forbids pulling it") }
        return
    case .ifNotPresent where present:
        return
    default:
        break
    }
    let ref: ImageReference
    do { ref = try ImageReference(parsing: reference) } catch { throw CLIError("\(reference) is not in the store and not an image reference: \(error)") }
    if !present && !quiet {
        FileHandle.standardError.write(Data("[cairn] \(what) \(reference) is not in the store: pulling \(ref)\n".utf8))
    }
    let progress = ConsoleProgress(verb: "Pulling", quiet: quiet)
    do {
        _ = try await withClient(registry) { client in
            try await ImageTransfer(client: client, store: store).pull(ref, progress: progress)
        }
    } catch {
        // Said as what it is about: the store lacks the image, and the registry could not give it.
        let local = present ? "" : " is not in the store (see `cairn images`), and"
        throw CLIError("\(what) \(reference)\(local) pulling \(ref) failed: \(error)"
                       + (what == "builder" && !present ? "; make one with `cairn builder create`" : ""))
    }
    progress.done()
}

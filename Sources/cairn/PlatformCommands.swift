import ArgumentParser
import Buildpacks
import Foundation
import OCI
import Trust
import CairnPlatform

/// Progress lines of platform work, on stderr so stdout stays for results.
func say(_ quiet: Bool) -> (String) -> Void {
    { line in if !quiet { FileHandle.standardError.write(Data("[cairn] \(line)\n".utf8)) } }
}

extension RunRequest.Runtime: ExpressibleByArgument {}

struct StackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stack", abstract: "Base images: a matched build image and run image.", subcommands: [StackCreate.self])
}

struct StackCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Make NAME/build:latest and NAME/run:latest from Debian packages, directories, or debootstrap.",
        discussion: "Examples:\n  cairn stack create tiny --packages busybox-static,bash-static\n  cairn stack create bookworm --debian bookworm   (as root)")

    @Argument(help: "Stack name; the images are NAME/build:latest and NAME/run:latest.") var name: String
    @Option(help: "Comma-separated Debian packages unpacked with dpkg-deb (e.g. busybox-static,bash-static).") var packages: String?
    @Option(help: "Directory to use as the build (and run) image's root filesystem.") var rootfs: String?
    @Option(name: .customLong("run-rootfs"), help: "Directory to use as the run image's root filesystem.") var runRootfs: String?
    @Option(help: "Debian suite for a full rootfs made by debootstrap (e.g. bookworm).") var debian: String?
    @Option(help: "Mirror for --debian.") var mirror = "http://deb.debian.org/debian"
    @Flag(name: [.long, .customShort("q")], help: "Less output: the two images only.") var quiet = false
    @Option(help: "table (lines for people) or json (the result as one object).") var format: OutputFormat = .table
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            try validImageName(StackCreator.runReference(name), what: "stack name \"\(name)\"")
            let sources = [packages != nil, rootfs != nil, debian != nil].filter { $0 }.count
            guard sources == 1 else { throw CLIError("give exactly one of --packages, --rootfs or --debian") }
            let source: StackSource
            if let packages {
                source = .packages(packages.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
            } else if let rootfs {
                source = .directories(build: rootfs, run: runRootfs)
            } else {
                source = .debian(suite: debian!, mirror: mirror)
            }
            let store = try storeOptions.open()
            let session = try store.beginWriteSession()  // prune waits until this command is done
            defer { withExtendedLifetime(session) {} }
            let (build, run) = try StackCreator(store: store, log: say(quiet)).create(name: name, source: source)
            let (buildName, runName) = (build.name ?? StackCreator.buildReference(name), run.name ?? StackCreator.runReference(name))
            if format == .json {
                return try printJSON(["build": ["image": buildName, "digest": build.digest.description],
                                      "run": ["image": runName, "digest": run.digest.description]])
            }
            print("\(buildName) \(build.digest)")
            print("\(runName) \(run.digest)")
        }
    }
}

struct BuilderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "builder", abstract: "Builder images: a build image with buildpacks, an order and the lifecycle.",
        subcommands: [BuilderCreate.self, BuilderInspect.self])
}

struct BuilderCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Make a builder image from pack's builder.toml format.",
        discussion: "Examples:\n  cairn builder create my-builder --config examples/builder.toml\n  cairn builder create my-builder --config builder.toml --lifecycle ../shared/reference/lifecycle")

    @Argument(help: "Name of the builder image, e.g. my-builder.") var name: String
    @Option(help: "The builder.toml.") var config: String
    @Option(help: "A lifecycle directory to put at /cnb/lifecycle instead of Cairn's (e.g. the reference's lifecycle/, with lifecycle.toml in it or beside it).")
    var lifecycle: String?
    @Option(help: "A trust policy: with buildpackage-keys, only buildpackages signed by one of those keys are accepted.")
    var policy: String?
    @Flag(help: "Sign the builder and attest its provenance (each buildpack's source, digest and signer).") var sign = false
    @Option(help: "The signing key for --sign (PEM; default CAIRN_SIGNING_KEY).") var key: String?
    @Flag(name: [.long, .customShort("q")], help: "Print only the digest.") var quiet = false
    @Option(help: "table (lines for people) or json (the result as one object).") var format: OutputFormat = .table
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        try await reportingErrors {
            try validImageName(name, what: "builder name \"\(name)\"")
            let store = try storeOptions.open()
            let session = try store.beginWriteSession()  // prune waits until this command is done
            defer { withExtendedLifetime(session) {} }
            // Buildpackages named by image reference come from their registry when the store lacks them.
            if let parsed = try? TOMLFile.read(BuilderConfig.self, from: config) {
                for entry in parsed.buildpacks {
                    guard let uri = entry.uri, Buildpackage.namesRegistryImage(uri) else { continue }
                    try await pullIfMissing(Buildpackage.imageReference(uri), store: store, registry: registry, quiet: quiet)
                }
            }
            let signingKey = try sign ? loadSigningKey(key) : nil
            let parsed = try TOMLFile.read(BuilderConfig.self, from: config)
            // Entries as builder create reads them: a path relative to builder.toml is a directory.
            let base = URL(fileURLWithPath: config).standardizedFileURL.deletingLastPathComponent().path
            let entries = (parsed.buildpacks.map { ($0.uri, "buildpack") } + parsed.extensions.map { ($0.uri, "extension") })
                .compactMap { uri, kind in uri.map { u in
                    (!u.hasPrefix("/") && FileManager.default.fileExists(atPath: base + "/" + u) ? base + "/" + u : u, kind)
                } }
            let packages = policy == nil && !sign ? [:]
                : try await checkBuildpackages(entries.map(\.0), store: store, policy: try policy.map(TrustPolicy.load))
            let started = Date()
            var creator = BuilderCreator(store: store, binaries: try LifecycleBinaries.locate(), log: say(quiet))
            creator.lifecycleDirectory = lifecycle.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            let image = try creator.create(name: name, configPath: config)
            if let signingKey, let buildImage = parsed.buildImage {
                let version = image.config.config?.labels?[CNBLabel.builderMetadata]
                    .flatMap { try? JSONDecoder().decode(BuilderMetadataLabel.self, from: Data($0.utf8)) }?.lifecycle?.version ?? "unknown"
                let provenance = BuilderProvenance(
                    configPath: URL(fileURLWithPath: config).standardizedFileURL.path, buildImage: (buildImage, try store.resolve(buildImage).digest),
                    sources: entries.map { ($0.0, $0.1, packages[$0.0]) }, lifecycleVersion: version, started: started, finished: Date())
                let repository = try ImageReference(parsing: image.name ?? name).fullName
                let signatures = StoreSignatures(store: store)
                try await signatures.sign(repository: repository, digest: image.digest, key: signingKey)
                try await signatures.attest(repository: repository, digest: image.digest, predicateType: Attestation.slsaProvenance,
                                            predicate: try provenance.predicate(), key: signingKey)
            }
            if format == .json { return try printJSON(["image": image.name ?? name, "digest": image.digest.description]) }
            print(quiet ? image.digest.description : "\(image.name ?? name) \(image.digest)")
        }
    }
}

struct LifecycleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lifecycle", abstract: "This Cairn's lifecycle.", subcommands: [LifecycleInstall.self, LifecycleImage.self])
}

/// `cairn lifecycle image REF [--publish]`: this Cairn's lifecycle as an image laid out like
/// buildpacksio/lifecycle, for pack's --lifecycle-image, kpack and Tekton.
struct LifecycleImage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "Make an image like buildpacksio/lifecycle: /cnb/lifecycle/<phase>, launcher, lifecycle.toml, labels.")

    @Argument(help: "Name of the image, e.g. registry.example.com/cairn/lifecycle:0.1.0.") var name: String
    @Flag(help: "Push the image to its registry.") var publish = false
    @Flag(name: [.long, .customShort("q")], help: "Print only the digest.") var quiet = false
    @Option(help: "table (lines for people) or json (the result as one object).") var format: OutputFormat = .table
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        try await reportingErrors {
            let store = try storeOptions.open()
            let session = try store.beginWriteSession()  // prune waits until this command is done
            defer { withExtendedLifetime(session) {} }
            let image = try LifecycleBinaries.locate().image(in: store, reference: name)
            if publish {
                let ref = try ImageReference(parsing: name)
                try await withClient(registry) { client in
                    try await ImageTransfer(client: client, store: store).push(image, to: ref, progress: ConsoleProgress(verb: "Pushing", quiet: quiet))
                }
            }
            if format == .json { return try printJSON(["image": image.name ?? name, "digest": image.digest.description]) }
            print(quiet ? image.digest.description : "\(image.name ?? name) \(image.digest)")
        }
    }
}

struct LifecycleInstall: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install", abstract: "Write a /cnb/lifecycle-style directory: lifecycle, launcher, phase links, lifecycle.toml.")

    @Argument(help: "Directory to write.") var directory: String

    func run() async throws {
        try await reportingErrors {
            try LifecycleBinaries.locate().install(into: directory)
            print(directory)
        }
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run an image from the store with runc (bubblewrap when runc is not usable); host network.",
        discussion: """
            Examples:
              cairn run myapp
              cairn run myapp --process worker -e PORT=9000
              cairn run -it myapp --entrypoint /bin/sh
              cairn run myapp --entrypoint launcher -- env
            """)

    @Argument(help: "The image.") var image: String
    @Option(help: "A buildpack process type to run instead of the default.") var process: String?
    @Option(name: [.customLong("env"), .customShort("e")], help: "An environment variable NAME=VALUE; repeatable.") var env: [String] = []
    @Option(help: "auto (runc when usable, else bubblewrap), runc or bwrap.") var runtime: RunRequest.Runtime = .auto
    @Option(help: "Run this instead of the image's Entrypoint, e.g. bash, or launcher (the buildpacks' environment) with a command after --.")
    var entrypoint: String?
    @Flag(name: [.customLong("interactive"), .customShort("i")], help: "Keep stdin open: the container reads this terminal's input.") var interactive = false
    @Flag(name: [.customLong("tty"), .customShort("t")], help: "Give the container a pseudo-terminal (runc; with -i).") var tty = false
    @Argument(parsing: .postTerminator, help: "Arguments replacing the image's Cmd (after --).") var args: [String] = []
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        var status: Int32 = 0
        try await reportingErrors {
            let store = try storeOptions.open()
            var request = RunRequest(image: image)
            request.processType = process
            request.args = args
            request.env = env
            request.runtime = runtime
            request.entrypoint = entrypoint
            request.interactive = interactive || tty
            request.tty = tty && isatty(0) != 0
            status = try ImageRunner(store: store, home: cairnHome(), log: say(false)).run(request)
        }
        if status != 0 { throw ExitCode(status) }
    }
}

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
        abstract: "Make NAME/build:latest and NAME/run:latest from Debian packages, directories, or debootstrap.")

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
        subcommands: [BuilderCreate.self])
}

struct BuilderCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Make a builder image from pack's builder.toml format.")

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

struct Build: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build an app image from source with a builder, in a bubblewrap sandbox, into the store (or a registry).")

    @Argument(help: "Name of the app image, e.g. myapp.") var image: String
    @Option(name: [.customLong("path"), .customShort("p")], help: "The app's source directory.") var path = "."
    @Option(name: [.customLong("builder"), .customShort("B")], help: "The builder image: in the store, else pulled from its registry (default: project.toml's [io.buildpacks] builder).")
    var builder: String?
    @Option(name: [.customLong("buildpack"), .customShort("b")], help: "A buildpack id[@version] from the builder or a buildpack directory; repeatable; replaces the builder's order (and project.toml's group).")
    var buildpacks: [String] = []
    @Option(name: [.customLong("descriptor"), .customShort("d")], help: "The project descriptor (default: project.toml in the app directory): builder, include/exclude, build env, buildpack group.")
    var descriptor: String?
    @Option(name: [.customLong("env"), .customShort("e")], help: "A build-time environment variable NAME=VALUE for buildpacks; repeatable.") var env: [String] = []
    @Option(name: .customLong("run-image"), help: "Run image to use instead of the builder's.") var runImage: String?
    @Option(help: "A lifecycle to run instead of the builder's: a /cnb/lifecycle-style directory (`cairn lifecycle install`) or a lifecycle image (as pack's --lifecycle-image).")
    var lifecycle: String?
    @Flag(help: "Push the image to its registry after the build.") var publish = false
    @Flag(name: .customLong("clear-cache"), help: "Start from an empty cache.") var clearCache = false
    @Option(help: "Network for buildpacks: host or none.") var network = "host"
    @Option(name: .customLong("ca-certs"), help: "A PEM bundle of CA certificates buildpacks and extensions trust (behind a TLS-inspecting proxy: the host's, e.g. /etc/ssl/certs/ca-certificates.crt); SSL_CERT_FILE, PIP_CERT, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, NODE_EXTRA_CA_CERTS and GIT_SSL_CAINFO point to it.")
    var caCerts: String?
    @Option(name: .customLong("compression-level"), help: "gzip level 1-9 of the new layers (default 1, as the reference lifecycle); also CAIRN_COMPRESSION_LEVEL.")
    var compressionLevel: Int32?
    @Option(help: "Stop the lifecycle (buildpacks included) after this long, e.g. 90s, 10m, 1h30m; the store keeps the previous image.")
    var timeout: String?
    @Option(name: .customLong("max-processes"), help: "At most this many processes of the build user at once (default \(BuildRequest.defaultMaxProcesses)): a fork bomb in a buildpack fails its forks there.")
    var maxProcesses = BuildRequest.defaultMaxProcesses
    @Option(name: .customLong("pull-policy"), help: "When images come from their registry: always, if-not-present (default) or never; builder, run image, lifecycle image, buildpackages and run images chosen by image extensions.")
    var pullPolicy: PullPolicy = .ifNotPresent
    @Flag(help: "Sign the image and attach its SLSA provenance and SBOM as signed attestations (cosign's formats), with --key or CAIRN_SIGNING_KEY.")
    var sign = false
    @Option(help: "A trust policy: with buildpackage-keys, --buildpack buildpackages must be signed by one of those keys.") var policy: String?
    @Option(help: "The signing key for --sign (PEM; default CAIRN_SIGNING_KEY).") var key: String?
    @Flag(name: [.long, .customShort("q")], help: "Less output: phase headers and errors only, on stderr; stdout holds only the digest.") var quiet = false
    @Option(help: "table (the lifecycle's output, then the digest) or json (stdout: one object; all output on stderr).")
    var format: OutputFormat = .table
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        try await reportingErrors {
            // With -q or --format json stdout holds only the result: the lifecycle's, extensions'
            // and cairn's own output go to stderr (the descriptor is moved, children inherit it).
            let result = quiet || format == .json ? ResultOutput.separated() : ResultOutput.standard
            // The key is read before the build: a missing key is said before minutes of work.
            let signingKey = try TrustConfig.signingKey(flag: sign, key: key)
            let limit = try timeout.map { text in
                guard let d = GoDuration.parse(text), d > .zero else {
                    throw CLIError("--timeout \(text): expected a duration such as 90s, 10m or 1h30m")
                }
                return (d, text)
            }
            guard ["host", "none"].contains(network) else { throw CLIError("--network must be host or none") }
            if let caCerts, !FileManager.default.isReadableFile(atPath: caCerts) { throw CLIError("--ca-certs \(caCerts): no readable file") }
            let store = try storeOptions.open()
            let session = try store.beginWriteSession()  // prune waits until this command is done
            defer { withExtendedLifetime(session) {} }
            let appPath = URL(fileURLWithPath: path).standardizedFileURL.path
            let project = try ProjectSettings.load(appPath: appPath, descriptor: descriptor, scratch: cairnHome() + "/builds")
            defer { project?.cleanUp() }
            var request = try makeRequest(appPath: appPath, project: project)
            request.timeout = limit
            let (builder, buildpacks) = (request.builder, request.buildpacks)
            // Builder, run image, lifecycle image, buildpackages and extension-chosen run images
            // come from their registries as --pull-policy says (pack's names and default).
            let fetch = { (reference: String, what: String) in
                try await ensureImage(reference, what: what, policy: pullPolicy, store: store, registry: registry, quiet: quiet)
            }
            try await fetch(builder, "builder")
            if let run = try runImage ?? BuilderCreator.runImage(of: try store.resolve(builder)) {
                try await fetch(run, "run image")
            }
            if let lifecycle, !FileManager.default.fileExists(atPath: lifecycle) {
                try await fetch(lifecycle, "lifecycle image")
            }
            for bp in buildpacks where Buildpackage.namesRegistryImage(bp) {
                try await fetch(Buildpackage.imageReference(bp), "buildpackage")
            }
            if let policy {
                // --buildpack entries that are not builder ids must pass the trust policy.
                let given = buildpacks.filter { Buildpackage.isPackageReference($0) || FileManager.default.fileExists(atPath: $0) }
                _ = try await checkBuildpackages(given, store: store, policy: try TrustPolicy.load(policy))
            }
            let started = Date()
            var runner = BuildRunner(store: store, home: cairnHome(), log: say(quiet))
            runner.fetch = { try await fetch($0, "run image chosen by an image extension") }
            let built = try await runner.build(request)
            let seconds = Date().timeIntervalSince(started)
            FileHandle.standardError.write(Data(String(format: "[cairn] Built %@ %@ in %.1f s\n", image, built.digest.description, seconds).utf8))
            try await afterBuild(built, request: request, signingKey: signingKey, started: started, store: store)
            if format == .json {
                try result.write(jsonObject: ["image": built.name ?? image, "digest": built.digest.description,
                                              "seconds": (seconds * 10).rounded() / 10, "signed": signingKey != nil, "published": publish])
            } else {
                result.write(built.digest.description)
            }
        }
    }

    /// Signing and publishing, when asked for.
    func afterBuild(_ built: StoredImage, request: BuildRequest, signingKey: SigningKey?, started: Date, store: ImageStore) async throws {
            if let signingKey {
                let lines = try await BuildSigner(store: store, key: signingKey, home: cairnHome())
                    .sign(request: request, app: built, started: started, finished: Date())
                for line in lines { FileHandle.standardError.write(Data("[cairn] Wrote \(line)\n".utf8)) }
            }
            if publish {
                let ref = try ImageReference(parsing: image)
                try await withClient(registry) { client in
                    try await ImageTransfer(client: client, store: store).push(built, to: ref, progress: ConsoleProgress(verb: "Pushing", quiet: quiet))
                }
                FileHandle.standardError.write(Data("[cairn] Pushed \(ref)\n".utf8))
            }
    }

    /// The request from the flags and the app's project.toml: flags win (`--builder`,
    /// `--buildpack` replace the file's; `--env` comes after the file's env, so it overrides).
    func makeRequest(appPath: String, project: ProjectSettings?) throws -> BuildRequest {
        guard let builder = builder ?? project?.builder else {
            throw CLIError("no builder: give --builder, or set builder in [io.buildpacks] of the app's project.toml")
        }
        var request = BuildRequest(image: image, appPath: appPath, builder: builder)
        let chosen = buildpacks.isEmpty ? project?.buildpacks ?? [] : buildpacks
        request.buildpacks = chosen.map { FileManager.default.fileExists(atPath: $0) ? URL(fileURLWithPath: $0).standardizedFileURL.path : $0 }
        request.env = (project?.env ?? []) + env
        request.sourceFilter = project?.filter
        request.runImage = runImage
        request.lifecycle = lifecycle
        request.clearCache = clearCache
        request.caCertificates = caCerts
        guard maxProcesses >= 16 else { throw CLIError("--max-processes \(maxProcesses): expected at least 16 (the lifecycle needs a few itself)") }
        request.maxProcesses = maxProcesses
        if let compressionLevel {
            guard (1...9).contains(compressionLevel) else { throw CLIError("--compression-level \(compressionLevel): expected 1-9") }
            request.compressionLevel = compressionLevel
        }
        request.network = network == "host"
        request.quiet = quiet
        return request
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an image from the store with runc (bubblewrap when runc is not usable); host network.")

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

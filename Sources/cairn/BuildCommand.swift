import ArgumentParser
import Buildpacks
import CairnPlatform
import Foundation
import OCI
import Trust

struct Build: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an app image from source with a builder, in a bubblewrap sandbox, into the store (or a registry).",
        discussion: """
            Flags follow pack build's names and meanings. Examples:
              cairn build myapp -p ./app -B cairn/builder
              cairn build myapp -t myapp:1.2 -t registry.example.com/team/myapp:1.2 --publish
              cairn build myapp -e PORT=8080 -e HOME --env-file app.env -D worker
              cairn build myapp -p app.zip -v /srv/data:/data --sbom-output-dir sbom/
            The builder is --builder, else project.toml's, else `cairn config default-builder`.
            The build cache is kept per image name in $CAIRN_HOME/cache (--clear-cache empties it);
            there is no cache image.
            """)

    @Argument(help: "Name of the app image, e.g. myapp.") var image: String
    @Option(name: [.customLong("path"), .customShort("p")], help: "The app's source directory.") var path = "."
    @Option(name: [.customLong("builder"), .customShort("B")], help: "The builder image: in the store, else pulled from its registry (default: project.toml's [io.buildpacks] builder).")
    var builder: String?
    @Option(name: [.customLong("buildpack"), .customShort("b")], help: "A buildpack id[@version] from the builder or a buildpack directory; repeatable; replaces the builder's order (and project.toml's group).")
    var buildpacks: [String] = []
    @Option(name: [.customLong("descriptor"), .customShort("d")], help: "The project descriptor (default: project.toml in the app directory): builder, include/exclude, build env, buildpack group.")
    var descriptor: String?
    @Option(name: [.customLong("env"), .customShort("e")], help: "A build-time environment variable NAME=VALUE for buildpacks, or NAME to take its value from this environment; repeatable.")
    var env: [String] = []
    @Option(name: .customLong("env-file"), help: "A file of build-time variables, one NAME=VALUE (or NAME) per line; # comments; repeatable; --env wins.")
    var envFiles: [String] = []
    @Option(name: [.customLong("tag"), .customShort("t")], help: "Another name for the image (in the store, and pushed with --publish); repeatable.")
    var tags: [String] = []
    @Option(name: [.customLong("default-process"), .customShort("D")], help: "The image's default process type (the exporter's -process-type).")
    var defaultProcess: String?
    @Option(name: [.customLong("volume"), .customShort("v")], help: "A host path in the build container, HOST:TARGET[:ro|rw] (read-only by default); repeatable.")
    var volumes: [String] = []
    @Option(help: "The build user's UID instead of the builder's CNB_USER_ID.") var uid: Int?
    @Option(help: "The build user's GID instead of the builder's CNB_GROUP_ID.") var gid: Int?
    @Option(help: "Where the app is in the build container (default /workspace).") var workspace: String?
    @Option(name: .customLong("creation-time"), help: "The image's created time: now, or a Unix time in seconds (default: a constant, for reproducible images; SOURCE_DATE_EPOCH also sets it).")
    var creationTime: String?
    @Option(name: .customLong("sbom-output-dir"), help: "Copy the build's SBOM files (launch, build, per buildpack) into this directory.")
    var sbomOutputDir: String?
    @Option(name: .customLong("previous-image"), help: "Reuse the layers of this image (in the store) instead of those of the image being built.")
    var previousImage: String?
    @Option(name: .customLong("cache-image"), help: .hidden) var cacheImage: String?
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
            // The key is read beside the checks and fetches below and awaited before the build: a
            // missing or unreadable key is said before minutes of work.
            let keyReading = Task { [sign, key] in try Trace.step("signing key") { try TrustConfig.signingKey(flag: sign, key: key) } }
            try checkNames()
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
            let project = try ProjectSettings.load(appPath: FS.isDirectory(appPath) ? appPath : "/nonexistent", descriptor: descriptor,
                                                   scratch: cairnHome() + "/builds")
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
            let signingKey = try await keyReading.value
            let started = Date()
            // The work directory goes while the image is signed; waited for before the end.
            try await BackgroundRemovals.during { removals in
                var runner = BuildRunner(store: store, home: cairnHome(), log: say(quiet))
                runner.removals = removals
                runner.fetch = { try await fetch($0, "run image chosen by an image extension") }
                // What signing needs from before the build is found while the lifecycle runs.
                // The image is signed as it is imported (BuildRunner.companion).
                let signed = SigningReport()
                if let signingKey {
                    let signer = BuildSigner(store: store, key: signingKey, home: cairnHome())
                    let preparing = BuildSigner.Preparing(signer: signer, request: request)
                    runner.lifecycleStarting = { preparing.start() }
                    runner.companion = signer.companion(request: request, started: started, preparing: preparing, report: signed)
                }
                let built = try await Trace.step("build") { try await runner.build(request) }
                for tag in tags { try session.tag(built.descriptor, as: tag) }
                let seconds = Date().timeIntervalSince(started)
                FileHandle.standardError.write(Data(String(format: "[cairn] Built %@ %@ in %.1f s\n", image, built.digest.description, seconds).utf8))
                for line in signed.written { FileHandle.standardError.write(Data("[cairn] Wrote \(line)\n".utf8)) }
                if publish { try await push(built, store: store) }
                if format == .json {
                    try result.write(jsonObject: ["image": built.name ?? image, "digest": built.digest.description, "tags": tags,
                                                  "seconds": (seconds * 10).rounded() / 10, "signed": signingKey != nil, "published": publish])
                } else {
                    result.write(built.digest.description)
                }
            }
        }
    }

    /// pack's --publish: pushes the image and each --tag.
    func push(_ built: StoredImage, store: ImageStore) async throws {
        for name in [image] + tags {
            let ref = try ImageReference(parsing: name)
            _ = try await withClient(registry) { client in
                try await ImageTransfer(client: client, store: store).push(built, to: ref, progress: ConsoleProgress(verb: "Pushing", quiet: quiet))
            }
            FileHandle.standardError.write(Data("[cairn] Pushed \(ref)\n".utf8))
        }
    }

    /// Names are checked before any work: the image, each --tag; --cache-image is refused.
    func checkNames() throws {
        if let cacheImage {
            throw CLIError("--cache-image \(cacheImage): not supported: Cairn keeps the build cache per image name in $CAIRN_HOME/cache (--clear-cache empties it)")
        }
        try validImageName(image, what: "image")
        for tag in tags { try validImageName(tag, what: "--tag") }
        if let previousImage { try validImageName(previousImage, what: "--previous-image") }
    }

    /// pack's build options that go to the lifecycle as they are (after checks).
    func addPackOptions(to request: inout BuildRequest) throws {
        request.defaultProcess = defaultProcess
        request.previousImage = previousImage
        for (name, id) in [("--uid", uid), ("--gid", gid)] {
            if let id, id < 0 || id > 65_534 { throw CLIError("\(name) \(id): expected 0-65534") }
        }
        if uid == 0 { throw CLIError("--uid 0: buildpacks never run as root; choose another user") }
        request.uid = uid
        request.gid = gid
        request.workspace = workspace
        request.volumes = try volumes.map(BuildRequest.volume)
        request.creationTime = try creationTime.map { try BuildRequest.creationTime($0) }
        request.sbomOutputDirectory = sbomOutputDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    }

    /// The request from the flags and the app's project.toml: flags win (`--builder`,
    /// `--buildpack` replace the file's; `--env` comes after the file's env, so it overrides).
    func makeRequest(appPath: String, project: ProjectSettings?) throws -> BuildRequest {
        guard let builder = try builder ?? project?.builder ?? CairnConfig.load().defaultBuilder else {
            throw CLIError("no builder: give --builder (-B), set builder in [io.buildpacks] of the app's project.toml, or set one with `cairn config default-builder NAME`")
        }
        var request = BuildRequest(image: image, appPath: appPath, builder: builder)
        let chosen = buildpacks.isEmpty ? project?.buildpacks ?? [] : buildpacks
        let local = { (spec: String) in FileManager.default.fileExists(atPath: spec) ? URL(fileURLWithPath: spec).standardizedFileURL.path : spec }
        request.buildpacks = chosen.map(local)
        request.preBuildpacks = (project?.pre ?? []).map(local)
        request.postBuildpacks = (project?.post ?? []).map(local)
        let environment = ProcessInfo.processInfo.environment
        let fromFiles = try envFiles.flatMap { try EnvFile.read($0, environment: environment) }
        request.env = (project?.env ?? []) + fromFiles + env.map { EnvFile.entry($0, environment: environment) }
        try addPackOptions(to: &request)
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


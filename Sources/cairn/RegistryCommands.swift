import ArgumentParser
import Foundation
import Synchronization
import Phases
import OCI
import Trust

/// Options of every command that talks to a registry.
struct RegistryOptions: ParsableArguments {
    @Option(name: .customLong("insecure-registry"), help: "A registry (host[:port]) reached without TLS verification: HTTPS without certificate checks, then plain HTTP; repeatable. Also CNB_INSECURE_REGISTRIES (comma-separated).")
    var insecureRegistries: [String] = []

    @Option(name: .customLong("registry-ca-cert"), help: "A PEM file of extra CA certificates for private TLS registries (what cairn trusts; build's --ca-certs is what buildpacks trust).")
    var registryCACert: String?
    /// The earlier name, still taken; hidden so that `build --help` does not show `--ca-cert`
    /// beside `--ca-certs`.
    @Option(name: .customLong("ca-cert"), help: .hidden) var caCert: String?

    /// - Parameter rate: at most this many requests per second to each registry.
    func client(rate: Double? = nil) throws -> RegistryClient {
        var configuration = try registryConfiguration(environment: ProcessInfo.processInfo.environment, insecure: insecureRegistries,
                                                      caBundle: registryCACert ?? caCert)
        configuration.requestsPerSecond = rate
        configuration.onRetry = { FileHandle.standardError.write(Data("[cairn] \($0)\n".utf8)) }
        return try RegistryClient(configuration: configuration)
    }
}

/// Runs an async body with a registry client, shutting the client down afterwards.
func withClient<T>(_ options: RegistryOptions, rate: Double? = nil, _ body: (RegistryClient) async throws -> T) async throws -> T {
    let client = try options.client(rate: rate)
    do {
        let result = try await body(client)
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull an image from a registry into the store.",
        discussion: "Examples:\n  cairn pull registry.example.com/team/app:1.2\n  cairn pull localhost:5000/app@sha256:…  --insecure-registry localhost:5000")

    @Argument(help: "Image reference, e.g. registry.example.com/team/app:1.0")
    var reference: String

    @Option(help: "Platform to choose from a multi-platform image: os/arch[/variant]. Default: this machine's.")
    var platform: String?

    @Flag(name: [.long, .customShort("q")], help: "Print only the digest.") var quiet = false
    @Option(help: "table (lines for people) or json (the result as one object).") var format: OutputFormat = .table
    @OptionGroup var registry: RegistryOptions
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let ref = try ImageReference(parsing: reference)
            var wanted = Platform.host
            if let platform {
                let parts = platform.split(separator: "/").map(String.init)
                guard parts.count == 2 || parts.count == 3 else { throw CLIError("--platform \"\(platform)\": expected os/arch[/variant]") }
                wanted = Platform(architecture: parts[1], os: parts[0], variant: parts.count == 3 ? parts[2] : nil)
            }
            let store = try storeOptions.open()
            let progress = ConsoleProgress(verb: "Pulling", quiet: quiet)
            let (image, carried) = try await withClient(registry) { client in
                let image = try await ImageTransfer(client: client, store: store).pull(ref, platform: wanted, progress: progress)
                let carried = try await copyTrustArtifacts(
                    digest: image.digest, from: RegistrySignatures(client: client, work: store), repository: ref.fullName,
                    to: StoreSignatures(store: store), repository: try ImageReference(parsing: image.name ?? reference).fullName)
                return (image, carried)
            }
            progress.done()
            if format == .json {
                return try printJSON(["image": image.name ?? ref.familiar, "digest": image.digest.description, "from": ref.description,
                                      "trustArtifacts": carried])
            }
            if !quiet { for tag in carried { FileHandle.standardError.write(Data("Pulled \(ref.fullName):\(tag)\n".utf8)) } }
            print(quiet ? image.digest.description : "Pulled \(image.name ?? ref.familiar) \(image.digest)")
        }
    }
}

struct Push: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Push an image from the store to a registry.",
        discussion: "Examples:\n  cairn push myapp registry.example.com/team/myapp:1.2\n  cairn push registry.example.com/team/myapp:1.2 --format json")

    @Argument(help: "The image in the store.")
    var local: String

    @Argument(help: "Where to push it (default: the local name, which must then name a registry).")
    var remote: String?

    @Flag(name: [.long, .customShort("q")], help: "Print only the digest.") var quiet = false
    @Option(help: "table (lines for people) or json (the result as one object).") var format: OutputFormat = .table
    @OptionGroup var registry: RegistryOptions
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let store = try storeOptions.open()
            let image = try store.resolve(local)
            let target = try ImageReference(parsing: remote ?? local).withDefaultTag
            let progress = ConsoleProgress(verb: "Pushing", quiet: quiet)
            let (digest, carried) = try await withClient(registry) { client in
                let digest = try await ImageTransfer(client: client, store: store).push(image, to: target, progress: progress)
                // Signatures and attestations of this digest travel with it (cosign's tags).
                guard digest == image.digest else { return (digest, [String]()) }
                let carried = try await copyTrustArtifacts(
                    digest: digest, from: StoreSignatures(store: store), repository: try ImageReference(parsing: image.name ?? local).fullName,
                    to: RegistrySignatures(client: client, work: store), repository: target.fullName)
                return (digest, carried)
            }
            progress.done()
            if format == .json {
                return try printJSON(["image": target.description, "digest": digest.description, "trustArtifacts": carried.map { "\(target.fullName):\($0)" }])
            }
            print(quiet ? digest.description : "Pushed \(target.familiar) \(digest)")
            if !quiet { for tag in carried { print("Pushed \(target.fullName):\(tag)") } }
        }
    }
}

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "login", abstract: "Check credentials against a registry and save them to the docker config.")

    @Argument(help: "The registry, host[:port].")
    var server: String

    @Option(name: .shortAndLong, help: "User name.")
    var username: String

    @Flag(help: "Read the password from standard input (the only way; it never goes on the command line).")
    var passwordStdin = false

    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        try await reportingErrors {
            guard passwordStdin else { throw CLIError("give the password on standard input with --password-stdin") }
            let input = FileHandle.standardInput.readDataToEndOfFile()
            let password = String(decoding: input, as: UTF8.self).trimmingCharacters(in: .newlines)
            guard !password.isEmpty else { throw CLIError("no password on standard input") }
            let env = ProcessInfo.processInfo.environment
            let host = CredentialStore.normalizeRegistry(server)
            // Check the credentials first, with exactly these credentials.
            let temp = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-login-\(getpid())")
            defer { try? FileManager.default.removeItem(at: temp) }
            let probeStore = CredentialStore(dockerConfigPath: temp.path + "/config.json")
            try probeStore.saveLogin(registry: host, username: username, password: password)
            var config = RegistryConfiguration(credentials: probeStore)
            config.insecureRegistries = Set(registry.insecureRegistries)
            config.caBundlePath = registry.registryCACert ?? registry.caCert
            let client = try RegistryClient(configuration: config)
            do {
                try await client.ping(host)
                try await client.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }
            let real = try CredentialStore(registryAuthJSON: nil, environment: env)
            try real.saveLogin(registry: host, username: username, password: password)
            print("Login succeeded; credentials saved to \(real.dockerConfigPath)")
        }
    }
}

/// Per-blob progress: bars redrawn in place on a terminal, one line per finished blob otherwise.
final class ConsoleProgress: TransferProgress, Sendable {
    private let verb: String
    private let quiet: Bool
    private let tty = isatty(2) == 1
    private let state = Mutex(Bars())

    /// What the bars show, changed under the mutex.
    struct Bars {
        var order: [Digest] = []
        var totals: [Digest: Int64] = [:]
        var transferred: [Digest: Int64] = [:]
        var status: [Digest: String] = [:]
        var drawnLines = 0
        var lastDraw = Date.distantPast

        mutating func redraw(force: Bool) {
            let now = Date()
            guard force || now.timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = now
            var out = drawnLines > 0 ? "\u{1b}[\(drawnLines)A" : ""
            for d in order {
                let total = max(totals[d] ?? 0, 1)
                let got = min(transferred[d] ?? 0, total)
                let width = 30
                let filled = Int(Double(width) * Double(got) / Double(total))
                let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
                out += "\(d.short) [\(bar)] \(formatBytes(got))/\(formatBytes(total)) \(status[d] ?? "")\u{1b}[K\n"
            }
            drawnLines = order.count
            FileHandle.standardError.write(Data(out.utf8))
        }
    }

    init(verb: String, quiet: Bool) {
        self.verb = verb
        self.quiet = quiet
    }

    private var draws: Bool { tty && !quiet }

    func started(_ digest: Digest, size: Int64) {
        state.withLock { bars in
            if bars.totals[digest] == nil { bars.order.append(digest) }
            bars.totals[digest] = size
            bars.transferred[digest] = 0
            bars.status[digest] = verb.lowercased()
            if draws { bars.redraw(force: true) }
        }
    }

    func advanced(_ digest: Digest, by bytes: Int) {
        state.withLock { bars in
            bars.transferred[digest, default: 0] += Int64(bytes)
            if draws { bars.redraw(force: false) }
        }
    }

    func finished(_ digest: Digest, _ outcome: BlobOutcome) {
        let text: String
        switch outcome {
        case .existed: text = "already in the registry"
        case .mounted(let from): text = "mounted from \(from)"
        case .uploaded(let b): text = "uploaded \(formatBytes(b))"
        case .downloaded(let b): text = "downloaded \(formatBytes(b))"
        case .present: text = "already in the store"
        }
        state.withLock { bars in
            if bars.totals[digest] == nil { bars.order.append(digest) }
            bars.status[digest] = text
            if let t = bars.totals[digest] { bars.transferred[digest] = t }
            if quiet { return }
            if tty {
                bars.redraw(force: true)
            } else {
                FileHandle.standardError.write(Data("\(digest.short): \(text)\n".utf8))
            }
        }
    }

    func done() {
        state.withLock { bars in
            if draws { bars.redraw(force: true) }
        }
    }
}

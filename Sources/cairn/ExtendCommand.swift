import ArgumentParser
import Extend
import Foundation
import OCI
import Buildpacks
import CairnPlatform
import Trust

extension ExtendKind: ExpressibleByArgument {}

struct ExtendImage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extend",
        abstract: "Apply a Dockerfile (the image extension subset) to an image in the store, without a daemon.",
        discussion: """
            The Dockerfile may use ARG, FROM ${base_image}, RUN, COPY, ADD, ENV, LABEL, USER, WORKDIR and SHELL, as \
            image extensions do; RUN runs in runc over overlay layers of the image (root needed). Each instruction \
            that changes files becomes one reproducible layer. With --kind run (the default) the result must not run \
            as root, as platform.md requires of extended run images.
            """)

    @Argument(help: "The image to extend (in the store).") var base: String
    @Option(help: "The Dockerfile.") var dockerfile: String
    @Option(help: "The build context for COPY and ADD (default: the Dockerfile's directory).") var context: String?
    @Option(name: .customLong("build-arg"), help: "NAME=VALUE, for ARG (repeatable).") var buildArgs: [String] = []
    @Option(help: "build or run: which image kind the Dockerfile extends.") var kind: ExtendKind = .run
    @Option(help: "Layer compression: gzip, zstd or none.") var compression: Compression = .gzip
    @Option(help: "The name of the new image.") var tag: String
    @Flag(help: "Sign the new image and attest its provenance (Dockerfile, context, base image; build-arg names only).") var sign = false
    @Option(help: "The signing key for --sign (PEM; default CAIRN_SIGNING_KEY).") var key: String?
    @Flag(name: [.long, .customShort("q")], help: "Print only the digest.") var quiet = false
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let signingKey = try TrustConfig.signingKey(flag: sign, key: key)
            let started = Date()
            var args: [String: String] = [:]
            for a in buildArgs {
                guard let (name, value) = EnvEntry.split(a) else { throw CLIError("--build-arg \(a): expected NAME=VALUE") }
                args[name] = value
            }
            let store = try storeOptions.open()
            let session = try store.beginWriteSession()  // prune waits until this command is done
            defer { withExtendedLifetime(session) {} }
            let context = context ?? URL(fileURLWithPath: dockerfile).deletingLastPathComponent().path
            let image = try DockerfileRunner(store: store, home: cairnHome(), log: say(quiet))
                .apply(base: base, dockerfile: dockerfile, context: context, args: args, kind: kind, compression: compression, tag: tag)
            if let signingKey {
                let provenance = ExtendProvenance(base: (base, try store.resolve(base).digest), dockerfile: dockerfile, context: context,
                                                  argNames: Array(args.keys), kind: "\(kind)", started: started, finished: Date())
                let repository = try ImageReference(parsing: image.name ?? tag).fullName
                let signatures = StoreSignatures(store: store)
                try await signatures.sign(repository: repository, digest: image.digest, key: signingKey)
                try await signatures.attest(repository: repository, digest: image.digest, predicateType: Attestation.slsaProvenance,
                                            predicate: try provenance.predicate(), key: signingKey)
            }
            print(quiet ? image.digest.description : "\(image.name ?? tag) \(image.digest)")
        }
    }
}

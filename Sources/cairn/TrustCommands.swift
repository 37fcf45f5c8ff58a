import ArgumentParser
import Buildpacks
import Foundation
import OCI
import CairnPlatform
import Phases
import Trust

/// The signing key: `--key FILE`, else `CAIRN_SIGNING_KEY` (a file path), else `key` in
/// `$CAIRN_HOME/config.toml`'s `[trust]` table.
func signingKeyPath(_ flag: String?) throws -> String {
    if let flag { return flag }
    if let env = ProcessInfo.processInfo.environment["CAIRN_SIGNING_KEY"], !env.isEmpty { return env }
    if let key = try TrustConfig.load().key { return key }
    throw CLIError("no signing key: pass --key FILE, set CAIRN_SIGNING_KEY to the key's path, or key in [trust] of \(TrustConfig.path) (cairn key generate makes one)")
}

/// The password of an encrypted private key: `CAIRN_KEY_PASSWORD` (never a flag, so it is not in
/// shell history or `ps`).
func keyPassword() -> String? {
    ProcessInfo.processInfo.environment["CAIRN_KEY_PASSWORD"]
}

/// The signing key named as `signingKeyPath` says, opened with `keyPassword` when encrypted.
func loadSigningKey(_ flag: String?) throws -> SigningKey {
    try SigningKey.load(try signingKeyPath(flag), password: keyPassword())
}

/// `$CAIRN_HOME/config.toml`, `[trust]`: `sign = true` signs what build, rebase and extend make
/// without `--sign`; `key = "PATH"` names the key.
struct TrustConfig {
    var sign = false
    var key: String?

    static var path: String { cairnHome() + "/config.toml" }

    /// The whole of config.toml (empty when there is none); every setting in it is read from here.
    static func table() throws -> [String: TOMLValue] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        do { return try TOMLParser.parse(String(decoding: data, as: UTF8.self)) } catch {
            throw CLIError("\(path): not valid TOML: \(error)")
        }
    }

    static func load() throws -> TrustConfig {
        guard let trust = try table()["trust"] else { return TrustConfig() }
        guard let t = trust.table else { throw CLIError("\(path): trust must be a table") }
        var config = TrustConfig()
        if let sign = t["sign"] {
            guard let b = sign.bool else { throw CLIError("\(path): trust.sign must be true or false") }
            config.sign = b
        }
        if let key = t["key"] {
            guard let k = key.string else { throw CLIError("\(path): trust.key must be a string (a path)") }
            config.key = k
        }
        return config
    }

    /// The key to sign with when `--sign` is given or the config asks for signing; nil otherwise.
    static func signingKey(flag sign: Bool, key: String?) throws -> SigningKey? {
        guard try sign || load().sign else { return nil }
        return try loadSigningKey(key)
    }
}

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Signing keys (ECDSA P-256, as cosign's key-based signing uses).", subcommands: [KeyGenerate.self])
}

struct KeyGenerate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a new key pair: <prefix>.key (PKCS#8 PEM, mode 0600; encrypted with PBES2 when CAIRN_KEY_PASSWORD is set) and <prefix>.pub (PKIX PEM, what `cosign verify --key` takes).")

    @Option(name: .customLong("output-key-prefix"), help: "Where to write the pair (default: cairn, so cairn.key and cairn.pub).")
    var prefix = "cairn"

    func run() async throws {
        try await reportingErrors {
            let key = SigningKey()
            let password = keyPassword()
            let (keyPath, pubPath) = try key.write(prefix: prefix, password: password)
            let encrypted = (password ?? "").isEmpty ? "unencrypted: set CAIRN_KEY_PASSWORD to encrypt it" : "encrypted with CAIRN_KEY_PASSWORD"
            print("Private key written to \(keyPath) (\(encrypted))")
            print("Public key written to \(pubPath) (sha256 \(key.publicKey.fingerprint))")
        }
    }
}

/// An image to sign or verify: in the store (its name gives the repository the signature names),
/// or with `--remote` in its registry (a tag is resolved to its manifest digest once).
struct SignTarget: ParsableArguments {
    @Argument(help: "The image: a store name, or with --remote a registry reference.") var image: String
    @Flag(help: "The image is in its registry, not the store; the signature goes to (or comes from) the registry.") var remote = false
    @OptionGroup var registry: RegistryOptions
    @OptionGroup var storeOptions: StoreOptions

    /// The repository (`registry/name`), the manifest digest, and where signatures live.
    func resolve<T>(_ body: (String, Digest, any SignatureLocation) async throws -> T) async throws -> T {
        let store = try storeOptions.open()
        guard remote else {
            let stored = try store.resolve(image)
            let repository = try ImageReference(parsing: stored.name ?? image).fullName
            return try await body(repository, stored.digest, StoreSignatures(store: store))
        }
        let ref = try ImageReference(parsing: image)
        return try await withClient(registry) { client in
            let digest = try await client.manifest(Repository(ref), reference: ref.digest?.description ?? ref.tag ?? ImageReference.defaultTag).digest
            return try await body(ref.fullName, digest, RegistrySignatures(client: client, work: store))
        }
    }
}

struct Sign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign an image as cosign does (a simple-signing payload under the sha256-<hex>.sig tag), in the store or with --remote on its registry.")

    @OptionGroup var target: SignTarget
    @Option(help: "The private key (PEM). Default: CAIRN_SIGNING_KEY.") var key: String?

    func run() async throws {
        try await reportingErrors {
            let signingKey = try loadSigningKey(key)
            try await target.resolve { repository, digest, location in
                try await location.sign(repository: repository, digest: digest, key: signingKey)
                print("Signed \(repository)@\(digest) (\(repository):\(Cosign.signatureTag(for: digest)))")
            }
        }
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an image: its manifest digest signed with the key, its attestations (SLSA provenance, SBOM) signed with it and about it, and with --policy what they must say. Exit 0 only when everything holds; every failure is named.")

    @OptionGroup var target: SignTarget
    @Option(help: "The public key (PKIX PEM), e.g. cairn.pub or cosign.pub.") var key: String
    @Option(help: "A trust policy (TOML or JSON): require-provenance, allowed-builders, allowed-buildpacks, require-signed-run-image.")
    var policy: String?
    @Flag(help: "Check each buildpack dependency the provenance records (uri, sha256) against the files in the image's layers named like it (store images).")
    var deps = false
    @Option(help: "table or json.") var format: OutputFormat = .table

    func run() async throws {
        try await reportingErrors {
            if deps && target.remote { throw CLIError("--deps reads the image's layers: use it on an image in the store (cairn pull it first)") }
            let verificationKey = try VerificationKey.load(key)
            let trustPolicy = try policy.map(TrustPolicy.load)
            try await target.resolve { repository, digest, location in
                let check = try await location.verify(repository: repository, digest: digest, key: verificationKey, image: target.image)
                let attestations = try await location.verifyAttestations(repository: repository, digest: digest, key: verificationKey)
                // The newest provenance answers the policy (as for `audit index --key`); --deps
                // checks what every verified provenance records.
                let provenances = attestations.provenances
                let provenance = attestations.provenance
                let violations = await trustPolicy?.violations(provenance: provenance) { runImage in
                    guard let ref = try? ImageReference(parsing: runImage), let d = ref.digest else { return false }
                    return (try? await location.verify(repository: ref.fullName, digest: d, key: verificationKey, image: runImage)) != nil
                } ?? []
                var failures = attestations.failures + violations
                if deps {
                    if !provenances.isEmpty {
                        var seen = Set<String>()
                        let recorded = provenances.flatMap(TrustPolicy.dependencies).filter {
                            $0.name.hasPrefix("dependency ") && seen.insert("\($0.name) \($0.uri) \($0.sha256 ?? "")").inserted
                        }
                        let store = try target.storeOptions.open()
                        for f in try DependencyCheck.check(recorded, image: try store.resolve(target.image), store: store) {
                            if format == .table { print("Dependency: \(f.dependency): \(f.status)") }
                            if f.failed { failures.append("\(f.dependency): \(f.status)") }
                        }
                    } else {
                        failures.append("--deps: no verified SLSA provenance records the dependencies")
                    }
                }
                report(repository: repository, digest: digest, check: check, attestations: attestations, failures: failures, key: verificationKey)
                guard failures.isEmpty else {
                    throw CLIError("\(target.image): " + failures.joined(separator: "; "))
                }
            }
        }
    }

    func report(repository: String, digest: Digest, check: SignatureCheck, attestations: AttestationCheck, failures: [String],
                key: VerificationKey) {
        switch format {
        case .json:
            try? printJSON([
                "image": target.image, "repository": repository, "digest": digest.description, "verified": failures.isEmpty,
                "key": ["sha256": key.fingerprint],
                "signatures": check.valid.map { ["docker-reference": $0.repository, "docker-manifest-digest": $0.digest] },
                "attestations": attestations.verified.map { ["predicateType": $0.predicateType] },
                "failures": failures,
            ] as [String: Any])
        case .table:
            print("Signature: \(repository)@\(digest): \(check.valid.count) valid signature(s) by key sha256 \(key.fingerprint.prefix(16))…")
            for a in attestations.verified { print("Attestation: \(a.predicateType): verified") }
            for f in failures { print("FAILED: \(f)") }
        }
    }
}

/// Buildpackages under a trust policy with `buildpackage-keys`: each buildpack entry must be a
/// buildpackage image in the store signed by one of the keys; a directory or a .cnb file (which
/// carries no signature) is refused. Returns each buildpackage's digest and signer.
func checkBuildpackages(_ uris: [String], store: ImageStore, policy: TrustPolicy?) async throws -> [String: (digest: Digest, signer: String?)] {
    var out: [String: (digest: Digest, signer: String?)] = [:]
    let keys = try (policy?.buildpackageKeys ?? []).map { ($0, try VerificationKey.load($0)) }
    for uri in uris {
        guard Buildpackage.isPackageReference(uri), !uri.hasSuffix(".cnb") else {
            if !keys.isEmpty {
                throw CLIError("buildpack \(uri) is a \(uri.hasSuffix(".cnb") ? ".cnb file" : "directory"): the trust policy accepts only buildpackage images signed by \(keys.map(\.0).joined(separator: ", "))")
            }
            continue
        }
        let reference = Buildpackage.imageReference(uri)
        let image = try store.resolve(reference)
        let repository = try ImageReference(parsing: image.name ?? reference).fullName
        var signer: String?
        var failures: [String] = []
        for (path, key) in keys {
            do {
                _ = try await StoreSignatures(store: store).verify(repository: repository, digest: image.digest, key: key, image: reference)
                signer = key.fingerprint
                break
            } catch {
                failures.append("\(path): \(error)")
            }
        }
        if !keys.isEmpty && signer == nil {
            throw CLIError("buildpackage \(reference) (\(image.digest)) is not signed by a key the trust policy names: \(failures.joined(separator: "; "))")
        }
        out[uri] = (image.digest, signer)
    }
    return out
}

struct Save: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save",
        abstract: "Write an image with its signatures and attestations to an OCI layout directory as `cosign save` does, for `cosign verify --local-image` and air-gapped transfer.")

    @Argument(help: "The image in the store.") var image: String
    @Option(help: "The directory to write (must not exist).") var dir: String
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            guard !FileManager.default.fileExists(atPath: dir) else { throw CLIError("--dir \(dir) exists; give a new directory") }
            let store = try storeOptions.open()
            let stored = try store.resolve(image)
            let repository = try ImageReference(parsing: stored.name ?? image).fullName
            let target = try ImageStore(root: dir).beginWriteSession()
            try copyImage(stored, from: store, to: target)
            var manifests = [Descriptor(mediaType: stored.descriptor.mediaType, digest: stored.digest, size: stored.descriptor.size,
                                        annotations: ["kind": "dev.cosignproject.cosign/image"])]
            let location = StoreSignatures(store: store)
            for (tag, kind) in [(Cosign.signatureTag(for: stored.digest), "sigs"), (Attestation.tag(for: stored.digest), "atts")] {
                guard let (data, blob) = try await location.artifact(repository: repository, tag: tag) else { continue }
                let manifest = try CanonicalJSON.decode(Manifest.self, from: data, what: "\(repository):\(tag)")
                _ = try target.writeBlob(try await blob(manifest.config), mediaType: manifest.config.mediaType)
                for layer in manifest.layers { _ = try target.writeBlob(try await blob(layer), mediaType: layer.mediaType) }
                let written = try target.writeBlob(data, mediaType: MediaType.ociManifest)
                manifests.append(Descriptor(mediaType: MediaType.ociManifest, digest: written.digest, size: written.size,
                                            annotations: ["kind": "dev.cosignproject.cosign/\(kind)"]))
            }
            // The index as cosign writes it: one entry per kind, no names.
            let index = try CanonicalJSON.encode(ImageIndex(manifests: manifests))
            try index.write(to: URL(fileURLWithPath: dir + "/index.json.tmp"))
            guard rename(dir + "/index.json.tmp", dir + "/index.json") == 0 else { throw CLIError("cannot write \(dir)/index.json") }
            print("Saved \(repository)@\(stored.digest) with \(manifests.count - 1) signature/attestation artifact(s) to \(dir)")
        }
    }
}

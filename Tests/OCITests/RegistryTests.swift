import Foundation
import OCI
import Testing
import TestSupport

let registryAvailable = toolAvailable("docker-registry") && toolAvailable("python3") && toolAvailable("curl")

/// A store holding a two-layer sample image named `sample:1`.
func sampleStore(_ tmp: TempDir, bigLayer: Int = 0) throws -> (ImageStore, StoredImage) {
    let store = try ImageStore(root: tmp.sub("store"))
    let a = tmp.sub("layer-a"), b = tmp.sub("layer-b")
    try makeSampleTree(a)
    try writeFile(b + "/app/main.sh", "echo hi\n", mode: 0o755)
    if bigLayer > 0 { _ = try sh("head -c \(bigLayer) /dev/urandom > '\(b)/app/blob.bin'") }
    _ = try importImage(store, a, as: "base:1")
    let image = try importImage(store, b, as: "sample:1", base: "base:1")
    return (store, image)
}

func client(_ registry: LocalRegistry, credentials: CredentialStore = CredentialStore(dockerConfigPath: "/nonexistent/config.json"),
            tweak: (inout RegistryConfiguration) -> Void = { _ in }) throws -> RegistryClient {
    var config = RegistryConfiguration(credentials: credentials)
    config.insecureRegistries = [registry.host]
    config.retry.initialDelay = 0.05
    config.retry.maxDelay = 0.2
    tweak(&config)
    return try RegistryClient(configuration: config)
}

func dockerConfig(_ tmp: TempDir, _ json: String) throws -> CredentialStore {
    let path = tmp.sub("docker") + "/config.json"
    try writeFile(path, json)
    return CredentialStore(dockerConfigPath: path)
}

/// Runs `body` with a client and always shuts it down.
func using<T>(_ c: RegistryClient, _ body: (RegistryClient) async throws -> T) async throws -> T {
    do {
        let r = try await body(c)
        try await c.shutdown()
        return r
    } catch {
        try? await c.shutdown()
        throw error
    }
}

// The limit guards against a hang, not for speed: on a 2-core machine these async tests can wait
// minutes for a cooperative-pool thread while long synchronous tests (the Debian flask build, the
// kill -9 series) hold both; with 2 minutes four of them failed one full run that way.
@Suite(.enabled(if: registryAvailable, "needs docker-registry on PATH (scripts/deps installs it)"), .serialized, .timeLimit(.minutes(10))) struct RegistryTests {
    @Test func pushThenPullGivesTheSameImage() async throws {
        let registry = try LocalRegistry()
        let tmp = TempDir()
        let (store, image) = try sampleStore(tmp)
        let ref = try ImageReference(parsing: "\(registry.host)/team/sample:1")
        let other = try ImageStore(root: tmp.sub("other"))
        let pulled = try await using(try client(registry)) { c in
            try await ImageTransfer(client: c, store: store).push(image, to: ref)
            return try await ImageTransfer(client: c, store: other).pull(ref)
        }
        #expect(pulled.digest == image.digest)
        #expect(pulled.name == "\(registry.host)/team/sample:1")
        for layer in image.manifest.layers {
            #expect(try Data(contentsOf: URL(fileURLWithPath: other.blobPath(layer.digest))) == Data(contentsOf: URL(fileURLWithPath: store.blobPath(layer.digest))))
        }
        // And by digest.
        let third = try ImageStore(root: tmp.sub("third"))
        let byDigest = try await using(try client(registry)) { c in
            try await ImageTransfer(client: c, store: third).pull(try ImageReference(parsing: "\(registry.host)/team/sample@\(image.digest)"))
        }
        #expect(byDigest.digest == image.digest)
        #expect(try third.images().count == 1)
    }

    @Test(.requires("skopeo")) func interoperatesWithSkopeo() async throws {
        let registry = try LocalRegistry()
        let tmp = TempDir()
        let (store, image) = try sampleStore(tmp)
        // Cairn pushes, skopeo pulls.
        try await using(try client(registry)) { c in
            try await ImageTransfer(client: c, store: store).push(image, to: try ImageReference(parsing: "\(registry.host)/cairn/pushed:1"))
        }
        let copied = try run(["skopeo", "copy", "--src-tls-verify=false", "docker://\(registry.host)/cairn/pushed:1", "oci:\(tmp.path)/skopeo-out:x"])
        #expect(copied.status == 0, "\(copied.stderr)")
        let raw = try run(["skopeo", "inspect", "--raw", "oci:\(tmp.path)/skopeo-out:x"])
        #expect(Digest.sha256(of: raw.stdoutData) == image.digest)
        // skopeo pushes, Cairn pulls.
        let pushed = try run(["skopeo", "copy", "--dest-tls-verify=false", "oci:\(store.root):base:1", "docker://\(registry.host)/skopeo/pushed:2"])
        #expect(pushed.status == 0, "\(pushed.stderr)")
        let fresh = try ImageStore(root: tmp.sub("fresh"))
        let pulled = try await using(try client(registry)) { c in
            try await ImageTransfer(client: c, store: fresh).pull(try ImageReference(parsing: "\(registry.host)/skopeo/pushed:2"))
        }
        let skopeoDigest = try run(["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://\(registry.host)/skopeo/pushed:2"])
        #expect(pulled.digest.description == skopeoDigest.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(pulled.config.rootfs.diffIDs == (try store.resolve("base:1")).config.rootfs.diffIDs)
    }

    @Test func basicAuthWithDockerConfig() async throws {
        let registry = try LocalRegistry(auth: .basic(user: "alice", password: "s3cret-pw"))
        let tmp = TempDir()
        let (store, image) = try sampleStore(tmp)
        let ref = try ImageReference(parsing: "\(registry.host)/private/app:1")
        // Anonymous: a clear error.
        do {
            try await using(try client(registry)) { c in try await ImageTransfer(client: c, store: store).push(image, to: ref) }
            Issue.record("anonymous push succeeded")
        } catch {
            #expect("\(error)".contains("requires authentication for private/app"))
        }
        // Wrong password: rejected, and the password is never shown.
        let wrong = try dockerConfig(tmp, #"{"auths":{"\#(registry.host)":{"auth":"\#(Data("alice:not-the-pw".utf8).base64EncodedString())"}}}"#)
        do {
            try await using(try client(registry, credentials: wrong)) { c in try await ImageTransfer(client: c, store: store).push(image, to: ref) }
            Issue.record("push with a wrong password succeeded")
        } catch {
            #expect("\(error)".contains("rejected the credentials"))
            #expect(!"\(error)".contains("not-the-pw"))
        }
        // Right password in `auths`.
        let right = try dockerConfig(tmp, #"{"auths":{"http://\#(registry.host)/v2/":{"auth":"\#(Data("alice:s3cret-pw".utf8).base64EncodedString())"}}}"#)
        try await using(try client(registry, credentials: right)) { c in try await ImageTransfer(client: c, store: store).push(image, to: ref) }
        // The platform's header (CNB_REGISTRY_AUTH).
        let header = "Basic " + Data("alice:s3cret-pw".utf8).base64EncodedString()
        let platform = try CredentialStore(registryAuthJSON: #"{"\#(registry.host)":"\#(header)"}"#, environment: [:])
        let pulled = try await using(try client(registry, credentials: platform)) { c in
            try await ImageTransfer(client: c, store: try ImageStore(root: tmp.sub("p"))).pull(ref)
        }
        #expect(pulled.digest == image.digest)
    }

    @Test func bearerTokensAreFetchedOncePerScopeAndReused() async throws {
        let registry = try LocalRegistry(auth: .token(user: "bob", password: "tok-pw"))
        let tmp = TempDir()
        let (store, image) = try sampleStore(tmp)
        let ref = try ImageReference(parsing: "\(registry.host)/tokens/app:1")
        let creds = try dockerConfig(tmp, #"{"auths":{"\#(registry.host)":{"username":"bob","password":"tok-pw"}}}"#)
        try await using(try client(registry, credentials: creds)) { c in
            try await ImageTransfer(client: c, store: store).push(image, to: ref)
            // A second push on the same client reuses the tokens it has.
            try await ImageTransfer(client: c, store: store).push(image, to: ref)
        }
        let stats = try registry.tokenStats()
        // One token for pull,push on tokens/app; HEAD/GET on the same scope reuse it, and at most
        // one more for the pull-only scope of the checks.
        #expect((stats["tokens"] ?? 99) <= 2, "\(stats)")
        #expect(stats["basic"] == stats["tokens"])
        // Anonymous clients get pull-only tokens: pull works, push is refused.
        let pulled = try await using(try client(registry)) { c in
            try await ImageTransfer(client: c, store: try ImageStore(root: tmp.sub("anon"))).pull(ref)
        }
        #expect(pulled.digest == image.digest)
        do {
            try await using(try client(registry)) { c in
                try await ImageTransfer(client: c, store: store).push(image, to: try ImageReference(parsing: "\(registry.host)/tokens/other:1"))
            }
            Issue.record("anonymous push succeeded")
        } catch {
            #expect("\(error)".contains("tokens/other"))
        }
    }

    @Test func secondPushUploadsNoBlobBytesAndMountsAcrossRepositories() async throws {
        let registry = try LocalRegistry(proxy: true)
        let tmp = TempDir()
        let (store, image) = try sampleStore(tmp)
        let total = image.manifest.layers.reduce(image.manifest.config.size) { $0 + $1.size }
        try await using(try client(registry)) { c in
            let t = ImageTransfer(client: c, store: store)
            try registry.proxy("/__reset")
            try await t.push(image, to: try ImageReference(parsing: "\(registry.host)/one/app:1"))
            #expect(try registry.proxy("/__stats")["uploadedBlobBytes"] == Int(total))
            try registry.proxy("/__reset")
            try await t.push(image, to: try ImageReference(parsing: "\(registry.host)/one/app:1"))
            #expect(try registry.proxy("/__stats")["uploadedBlobBytes"] == 0)
            // Another repository of the same registry: blobs are mounted, not uploaded.
            try registry.proxy("/__reset")
            try await t.push(image, to: try ImageReference(parsing: "\(registry.host)/two/app:1"))
            #expect(try registry.proxy("/__stats")["uploadedBlobBytes"] == 0)
        }
        let pulled = try await using(try client(registry)) { c in
            try await ImageTransfer(client: c, store: try ImageStore(root: tmp.sub("check"))).pull(try ImageReference(parsing: "\(registry.host)/two/app:1"))
        }
        #expect(pulled.digest == image.digest)
    }

    @Test func survivesInjectedFaults() async throws {
        let registry = try LocalRegistry(proxy: true)
        let tmp = TempDir()
        let (store, image) = try sampleStore(tmp, bigLayer: 3 << 20)
        let ref = try ImageReference(parsing: "\(registry.host)/faults/app:1")
        // Small chunks so the big layer goes up in resumable PATCHes.
        let c = try client(registry) { $0.monolithicUploadLimit = 1 << 20; $0.chunkSize = 1 << 20 }
        try registry.proxy("/__config", #"{"fail503": 3, "throttle429": 2, "dropUpload": 2, "delay": 0.02}"#)
        try await using(c) { c in try await ImageTransfer(client: c, store: store).push(image, to: ref) }
        var stats = try registry.proxy("/__stats")
        #expect(stats["faults"] == 7, "\(stats)")
        try registry.proxy("/__config", #"{"fail503": 2, "dropDownload": 2, "throttle429": 1}"#)
        let pulled = try await using(try client(registry)) { c in
            try await ImageTransfer(client: c, store: try ImageStore(root: tmp.sub("pulled"))).pull(ref)
        }
        #expect(pulled.digest == image.digest)
        stats = try registry.proxy("/__stats")
        #expect(stats["faults"] == 12, "\(stats)")
    }

    /// Issue 38: a blob upload the registry refuses (413) fails at once, with the registry's
    /// word; it is not started again six times with backoff as a transient fault would be.
    @Test func aRefusedUploadIsNotRetried() async throws {
        let registry = try LocalRegistry(proxy: true)
        let tmp = TempDir()
        let (store, image) = try sampleStore(tmp)
        try registry.proxy("/__config", #"{"refuseUpload": 1000}"#)
        do {
            try await using(try client(registry)) { c in
                try await ImageTransfer(client: c, store: store).push(image, to: try ImageReference(parsing: "\(registry.host)/refused/app:1"))
            }
            Issue.record("the push succeeded")
        } catch {
            #expect("\(error)".contains("413"), "\(error)")
        }
        // One refusal per blob (they go up at once), not six each.
        let faults = try registry.proxy("/__stats")["faults"] ?? 0
        #expect(faults >= 1 && faults <= 1 + image.manifest.layers.count, "\(faults) refused uploads for \(1 + image.manifest.layers.count) blobs")
    }

    @Test func aFailedPushLeavesNoManifestAndSaysWhy() async throws {
        let registry = try LocalRegistry(proxy: true)
        let tmp = TempDir()
        let (store, image) = try sampleStore(tmp)
        try registry.proxy("/__config", #"{"fail503": 1000}"#)
        do {
            try await using(try client(registry)) { c in
                try await ImageTransfer(client: c, store: store).push(image, to: try ImageReference(parsing: "\(registry.host)/down/app:1"))
            }
            Issue.record("push succeeded")
        } catch {
            #expect("\(error)".contains("failed after 6 attempts: HTTP 503"), "\(error)")
        }
        #expect(try registry.proxy("/__stats")["manifestPuts"] == 0)
        try registry.proxy("/__config", #"{"fail503": 0}"#)
        do {
            _ = try await using(try client(registry)) { c in
                try await ImageTransfer(client: c, store: try ImageStore(root: tmp.sub("x"))).pull(try ImageReference(parsing: "\(registry.host)/down/app:1"))
            }
            Issue.record("a manifest exists")
        } catch {
            #expect("\(error)".contains("not found"))
        }
    }

    @Test func aCorruptBlobIsFetchedAgainOnceAndNeverStored() async throws {
        let registry = try LocalRegistry(proxy: true)
        let tmp = TempDir()
        let (store, image) = try sampleStore(tmp)
        let ref = try ImageReference(parsing: "\(registry.host)/corrupt/app:1")
        try await using(try client(registry)) { c in try await ImageTransfer(client: c, store: store).push(image, to: ref) }
        // One damaged copy: fetched again, the pull succeeds with the right bytes.
        try registry.proxy("/__config", #"{"corruptDownload": 1}"#)
        let once = try ImageStore(root: tmp.sub("once"))
        let pulled = try await using(try client(registry) { $0.parallelTransfers = 1 }) { c in try await ImageTransfer(client: c, store: once).pull(ref) }
        #expect(pulled.digest == image.digest)
        #expect(try once.verify(repair: false).problems.isEmpty)
        #expect(try registry.proxy("/__stats")["faults"] == 1)
        // Damaged twice in a row: an error, and nothing stored.
        try registry.proxy("/__config", #"{"corruptDownload": 2}"#)
        let target = try ImageStore(root: tmp.sub("target"))
        let c = try client(registry) { $0.parallelTransfers = 1 }
        do {
            _ = try await using(c) { c in try await ImageTransfer(client: c, store: target).pull(ref) }
            Issue.record("corrupt pull succeeded")
        } catch {
            #expect("\(error)".contains("nothing was stored"), "\(error)")
        }
        let stored = try FileManager.default.contentsOfDirectory(atPath: target.root + "/blobs/sha256")
        let config = image.manifest.config.digest.encoded
        #expect(!stored.contains(config), "the corrupted first blob (the config) must not be stored")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.root + "/.cairn/tmp").isEmpty)
    }

    @Test func choosesThePlatformFromAnIndex() async throws {
        let registry = try LocalRegistry()
        let tmp = TempDir()
        let (store, image) = try sampleStore(tmp)
        let repo = Repository(registry: registry.host, name: "multi/app")
        // A second image with another architecture in its config.
        var arm = image.config
        arm.architecture = "arm64"
        arm.variant = "v8"
        let armConfig = try store.beginWriteSession().writeBlob(try CanonicalJSON.encode(arm), mediaType: MediaType.ociConfig)
        let armManifest = Manifest(config: armConfig, layers: image.manifest.layers)
        let armData = try CanonicalJSON.encode(armManifest)
        let armDescriptor = try store.beginWriteSession().writeBlob(armData, mediaType: MediaType.ociManifest)
        try store.beginWriteSession().tag(armDescriptor, as: "sample-arm:1")
        try await using(try client(registry)) { c in
            let t = ImageTransfer(client: c, store: store)
            try await t.push(image, to: try ImageReference(parsing: "\(repo)@\(image.digest)"))
            try await t.push(try store.resolve("sample-arm:1"), to: try ImageReference(parsing: "\(repo)@\(armDescriptor.digest)"))
            let index = ImageIndex(manifests: [
                Descriptor(mediaType: MediaType.ociManifest, digest: image.digest, size: image.descriptor.size, platform: Platform(architecture: "amd64", os: "linux")),
                Descriptor(mediaType: MediaType.ociManifest, digest: armDescriptor.digest, size: armDescriptor.size, platform: Platform(architecture: "arm64", os: "linux", variant: "v8")),
            ])
            try await c.putManifest(repo, reference: "1", data: try CanonicalJSON.encode(index), mediaType: MediaType.ociIndex)
            let pulled = try await ImageTransfer(client: c, store: try ImageStore(root: tmp.sub("arm"))).pull(
                try ImageReference(parsing: "\(repo):1"), platform: Platform(architecture: "arm64", os: "linux"))
            #expect(pulled.digest == armDescriptor.digest)
            #expect(pulled.config.architecture == "arm64")
            do {
                _ = try await ImageTransfer(client: c, store: try ImageStore(root: tmp.sub("s390"))).pull(
                    try ImageReference(parsing: "\(repo):1"), platform: Platform(architecture: "s390x", os: "linux"))
                Issue.record("pulled a platform the index does not have")
            } catch {
                #expect("\(error)".contains("has no image for linux/s390x (available: linux/amd64, linux/arm64/v8)"))
            }
        }
    }
}

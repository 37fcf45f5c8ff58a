import Foundation
import OCI
import Testing
import TestSupport

@Suite struct DigestTests {
    @Test func sha256OfKnownInput() {
        #expect(Digest.sha256(of: Data("abc".utf8)).description
            == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.sha256(of: Data()).encoded == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    /// Streamed in pieces of every size around the 64-byte block, as layers are: the same digest
    /// as coreutils' sha256sum of the whole, from memory and from the file.
    @Test func streamedSHA256MatchesSha256sum() throws {
        let dir = TempDir("sha")
        let path = dir.path + "/data"
        _ = try sh("head -c 3000017 /dev/urandom > '\(path)'")
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let expected = try sh("sha256sum '\(path)'").stdout.prefix(64)
        var counter = DigestingCounter()
        var offset = 0, size = 1
        while offset < data.count {
            let end = min(data.count, offset + size)
            data[offset..<end].withUnsafeBytes { counter.update($0) }
            offset = end
            size = size * 7 % 70_001 + 1
        }
        #expect(counter.finalize().encoded == expected)
        #expect(counter.count == Int64(data.count))
        #expect(try Digest.sha256(file: path).encoded == expected)
        #expect(Digest.sha256(of: data).encoded == expected)
    }

    @Test(arguments: [
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "sha512:" + String(repeating: "ab", count: 64),
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
    ])
    func acceptsValidDigests(_ s: String) throws {
        #expect(try Digest(parsing: s).description == s)
    }

    @Test(arguments: [
        "", "sha256", "sha256:", ":abc", "sha256:ABC", "sha256:abc",
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015aZ",
        "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256:+x",
    ])
    func rejectsInvalidDigests(_ s: String) {
        #expect(throws: Digest.ValidationError.self) { try Digest(parsing: s) }
    }

    @Test func decodingABadDigestNamesTheField() throws {
        let json = Data(#"{"mediaType":"x","digest":"sha256:nothex","size":1}"#.utf8)
        do {
            _ = try CanonicalJSON.decode(Descriptor.self, from: json, what: "descriptor.json")
            Issue.record("expected an error")
        } catch let error as OCIError {
            #expect(error.description.contains("descriptor.json"))
            #expect(error.description.contains("digest"))
        }
    }
}

@Suite struct ImageReferenceTests {
    // (input, fully qualified, familiar), as docker / distribution/reference print them.
    @Test(arguments: [
        ("busybox", "docker.io/library/busybox", "busybox"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox", "busybox"),
        ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/foo/bar", "docker.io/foo/bar", "foo/bar"),
        ("paketobuildpacks/builder-jammy-base", "docker.io/paketobuildpacks/builder-jammy-base", "paketobuildpacks/builder-jammy-base"),
        ("localhost/app", "localhost/app", "localhost/app"),
        ("localhost:5000/team/app:v1", "localhost:5000/team/app:v1", "localhost:5000/team/app:v1"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app", "127.0.0.1:5000/app"),
        ("gcr.io/a/b/c:t", "gcr.io/a/b/c:t", "gcr.io/a/b/c:t"),
        ("a.b-c_d__e", "docker.io/library/a.b-c_d__e", "a.b-c_d__e"),
        ("app@sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
         "docker.io/library/app@sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
         "app@sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("r.io:443/app:1@sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
         "r.io:443/app:1@sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
         "r.io:443/app:1@sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ])
    func parsesAndPrintsLikeDocker(_ input: String, _ full: String, _ familiar: String) throws {
        let ref = try ImageReference(parsing: input)
        #expect(ref.description == full)
        #expect(ref.familiar == familiar)
        #expect(try ImageReference(parsing: ref.description) == ref)
    }

    @Test(arguments: [
        "", "Upper", "docker.io/Team/app", "app:", ":tag", "app:-bad", "a//b", "-a", "a-", "app@sha256:123",
        "app:" + String(repeating: "t", count: 129), "a..b", "host:port/app",
        String(repeating: "a", count: 256),
    ])
    func rejectsInvalidReferences(_ input: String) {
        #expect(throws: ImageReference.ParseError.self) { try ImageReference(parsing: input) }
    }

    @Test func defaultTagAndFields() throws {
        let r = try ImageReference(parsing: "localhost:5000/a/b").withDefaultTag
        #expect(r.registry == "localhost:5000")
        #expect(r.repository == "a/b")
        #expect(r.tag == "latest")
    }

    @Test func sameImageNormalisesNamesAndTheDefaultTag() {
        #expect(ImageReference.sameImage("busybox", "docker.io/library/busybox:latest"))
        #expect(!ImageReference.sameImage("busybox:1.36", "busybox"))
        #expect(ImageReference.sameImage("busybox:1.36", "busybox", anyTag: true), "no tag or digest: any tag, when asked")
        #expect(!ImageReference.sameImage("busybox", "busybox:1.36", anyTag: true))
        #expect(!ImageReference.sameImage("localhost:5000/app", "app"))
        let digest = "sha256:" + String(repeating: "a", count: 64)
        #expect(!ImageReference.sameImage("app@" + digest, "app"), "a digest reference has no default tag")
        #expect(ImageReference.sameImage("app@" + digest, "docker.io/library/app@" + digest))
    }
}

@Suite struct ModelRoundTripTests {
    /// sha256:ba7816bf… (of "abc").
    static let digest = Digest.sha256(of: Data("abc".utf8))

    func roundTrip<T: Codable & Equatable>(_ value: T) throws {
        let data = try CanonicalJSON.encode(value)
        let back = try CanonicalJSON.decode(T.self, from: data, what: "test")
        #expect(back == value)
        #expect(try CanonicalJSON.encode(back) == data, "re-encoding must give the same bytes")
    }

    @Test func manifestIndexConfigRoundTrip() throws {
        var layer = Descriptor(mediaType: MediaType.ociLayerGzip, digest: Self.digest, size: 42,
                               annotations: ["a": "b"])
        layer.urls = ["https://example.com/x"]
        let manifest = Manifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: Self.digest, size: 7),
                                layers: [layer], annotations: ["org.opencontainers.image.created": "now"])
        try roundTrip(manifest)
        let index = ImageIndex(manifests: [Descriptor(mediaType: MediaType.ociManifest, digest: Self.digest, size: 1,
                                                      annotations: [Annotation.refName: "app:1"],
                                                      platform: Platform(architecture: "arm64", os: "linux", variant: "v8"))])
        try roundTrip(index)
        var exec = ExecutionConfig(user: "1000:1000", exposedPorts: ["8080/tcp": EmptyObject()], env: ["PATH=/bin"],
                                   entrypoint: ["/cnb/lifecycle/launcher"], cmd: ["web"], workingDir: "/workspace",
                                   labels: ["io.buildpacks.stack.id": "x"])
        exec.volumes = ["/data": EmptyObject()]
        exec.stopSignal = "SIGTERM"
        var config = ImageConfig(created: "1980-01-01T00:00:01Z", architecture: "amd64", os: "linux", config: exec,
                                 rootfs: RootFS(diffIDs: [Self.digest]),
                                 history: [History(created: "1980-01-01T00:00:01Z", createdBy: "cairn", emptyLayer: true)])
        config.osVersion = "10"
        config.osFeatures = ["f"]
        try roundTrip(config)
        try roundTrip(ImageLayoutHeader())
    }

    @Test func canonicalEncodingSortsKeysAndDoesNotEscapeSlashes() throws {
        let d = Descriptor(mediaType: MediaType.ociConfig, digest: Self.digest, size: 7)
        let s = String(decoding: try CanonicalJSON.encode(d), as: UTF8.self)
        #expect(s == #"{"digest":"\#(Self.digest)","mediaType":"application/vnd.oci.image.config.v1+json","size":7}"#)
    }

    @Test func configUsesSpecKeyNames() throws {
        let config = ImageConfig(architecture: "amd64", os: "linux",
                                 config: ExecutionConfig(env: ["A=1"], workingDir: "/w"),
                                 rootfs: RootFS(diffIDs: [Self.digest]), history: [History(createdBy: "x", emptyLayer: true)])
        let s = String(decoding: try CanonicalJSON.encode(config), as: UTF8.self)
        for key in [#""Env":["A=1"]"#, #""WorkingDir":"/w""#, #""diff_ids":["#, #""created_by":"x""#, #""empty_layer":true"#, #""type":"layers""#] {
            #expect(s.contains(key), "missing \(key) in \(s)")
        }
    }

    @Test func readsDockerSchema2ManifestAndList() throws {
        let manifest = """
        {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
         "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1469,"digest":"\(Self.digest)"},
         "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2811478,"digest":"\(Self.digest)"}]}
        """
        let m = try CanonicalJSON.decode(Manifest.self, from: Data(manifest.utf8), what: "manifest")
        #expect(m.mediaType == MediaType.dockerManifest)
        #expect(MediaType.manifests.contains(m.mediaType!))
        #expect(MediaType.layerCompression(m.layers[0].mediaType) == .gzip)
        let list = """
        {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
         "manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,"digest":"\(Self.digest)",
                       "platform":{"architecture":"arm","os":"linux","variant":"v7"}}]}
        """
        let l = try CanonicalJSON.decode(ImageIndex.self, from: Data(list.utf8), what: "list")
        #expect(l.manifests[0].platform == Platform(architecture: "arm", os: "linux", variant: "v7"))
        // A Docker config with null Entrypoint and extra fields decodes.
        let config = """
        {"architecture":"amd64","os":"linux","docker_version":"20.10","container_config":{},
         "config":{"Env":["PATH=/bin"],"Entrypoint":null,"Cmd":["sh"]},
         "rootfs":{"type":"layers","diff_ids":["\(Self.digest)"]}}
        """
        let c = try CanonicalJSON.decode(ImageConfig.self, from: Data(config.utf8), what: "config")
        #expect(c.config?.entrypoint == nil)
        #expect(c.config?.cmd == ["sh"])
    }

    @Test func missingFieldErrorNamesFieldAndDocument() {
        let data = Data(#"{"schemaVersion":2,"layers":[]}"#.utf8)
        #expect(throws: OCIError.invalidJSON(what: "blobs/sha256/x", detail: #"missing field "config" at top level"#)) {
            try CanonicalJSON.decode(Manifest.self, from: data, what: "blobs/sha256/x")
        }
    }
}

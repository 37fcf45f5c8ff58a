import Foundation
import OCI
import Testing
import TestSupport

func importImage(_ store: ImageStore, _ dir: String, as reference: String, base: String? = nil,
                 compression: OCI.Compression = .gzip) throws -> StoredImage {
    var o = LayerWriteOptions()
    o.compression = compression
    let layer = try store.beginWriteSession().writeLayer(directory: dir, options: o)
    return try store.beginWriteSession().commitImage(base: try base.map { try store.resolve($0) }, layers: [layer],
                                 history: [History(created: normalizedCreated, createdBy: "test")],
                                 created: normalizedCreated, reference: reference)
}

@Suite struct ImageStoreTests {
    @Test func namesResolveInEveryForm() throws {
        let tmp = TempDir()
        let store = try ImageStore(root: tmp.sub("store"))
        let src = tmp.sub("src")
        try writeFile(src + "/a", "a")
        let image = try importImage(store, src, as: "app")
        #expect(image.name == "app:latest")
        for ref in ["app", "app:latest", "docker.io/library/app", "app@\(image.digest)", image.digest.description] {
            #expect(try store.resolve(ref).digest == image.digest, "\(ref)")
        }
        #expect(throws: OCIError.notFound(reference: "app:2", store: store.root)) { try store.resolve("app:2") }
        let index = try store.index()
        #expect(index.manifests.count == 1)
        #expect(index.manifests[0].annotations?[Annotation.refName] == "app:latest")
    }

    @Test func retaggingReplacesAndRemoveThenPruneFreesOnlyUnusedBlobs() throws {
        let tmp = TempDir()
        let store = try ImageStore(root: tmp.sub("store"))
        let a = tmp.sub("a"), b = tmp.sub("b")
        try writeFile(a + "/f", "first")
        try writeFile(b + "/g", "second")
        let base = try importImage(store, a, as: "base:1")
        let top = try importImage(store, b, as: "top:1", base: "base:1")
        #expect(top.manifest.layers.count == 2)
        #expect(top.manifest.layers[0] == base.manifest.layers[0])
        #expect(top.config.rootfs.diffIDs.count == 2)
        let again = try importImage(store, b, as: "base:1")  // retag base:1 to another image
        #expect(try store.images().map(\.name) == ["base:1", "top:1"])
        #expect(try store.resolve("base:1").digest == again.digest)
        // Nothing unreferenced yet but the first base's manifest and config.
        let p1 = try store.prune()
        #expect(p1.removedBlobs == 2)
        try store.remove("top:1")
        let p2 = try store.prune()
        // top's manifest, config and base's layer (only top used it now); the `b` layer is shared with `again`.
        #expect(p2.removedBlobs == 3)
        #expect(store.hasBlob(again.manifest.layers[0].digest))
        #expect(!store.hasBlob(base.manifest.layers[0].digest))
        #expect(throws: OCIError.notFound(reference: "top:1", store: store.root)) { try store.remove("top:1") }
    }

    @Test func corruptBlobIsDetectedOnRead() throws {
        let tmp = TempDir()
        let store = try ImageStore(root: tmp.sub("store"))
        let src = tmp.sub("src")
        try writeFile(src + "/a", "a")
        let image = try importImage(store, src, as: "app")
        let configPath = store.blobPath(image.manifest.config.digest)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: configPath))
        #expect(throws: OCIError.digestMismatch(what: configPath, expected: image.manifest.config.digest,
                                                actual: Digest.sha256(of: Data("{}".utf8)))) {
            try store.resolve("app")
        }
    }

    @Test func pruneRemovesTempFilesLeftByAKilledWriter() throws {
        let tmp = TempDir()
        let root = tmp.sub("store")
        let store = try ImageStore(root: root)
        try writeFile(root + "/.cairn/tmp/tmp-abandoned", "partial blob")
        try writeFile(root + "/.cairn/tmp-index", "partial index.json")  // index.json's temp files are made in .cairn
        _ = try store.prune()
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/.cairn/tmp").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/.cairn").sorted() == ["gc.lock", "index.lock", "tmp"])
    }

    @Test func refusesADirectoryThatIsNotAnOCILayout() throws {
        let tmp = TempDir()
        let root = tmp.sub("store")
        try writeFile(root + "/oci-layout", #"{"imageLayoutVersion":"2.0.0"}"#)
        #expect(throws: OCIError.invalidLayout(path: root, detail: "imageLayoutVersion 2.0.0 is not 1.x")) {
            try ImageStore(root: root)
        }
    }

    @Test(.requires("skopeo", "umoci"), arguments: OCI.Compression.allCases)
    func skopeoAndUmociReadImportedImages(_ compression: OCI.Compression) throws {
        let tmp = TempDir()
        let storeRoot = tmp.sub("store")
        let store = try ImageStore(root: storeRoot)
        let src = tmp.sub("src")
        try makeSampleTree(src)
        let image = try importImage(store, src, as: "sample:1", compression: compression)
        let inspect = try run(["skopeo", "inspect", "oci:\(storeRoot):sample:1"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let json = try JSONSerialization.jsonObject(with: inspect.stdoutData) as? [String: Any]
        #expect(json?["Digest"] as? String == image.digest.description)
        #expect(json?["Layers"] as? [String] == image.manifest.layers.map(\.digest.description))
        let raw = try run(["skopeo", "inspect", "--raw", "oci:\(storeRoot):sample:1"])
        #expect(Digest.sha256(of: raw.stdoutData) == image.digest)
        // umoci can't unpack zstd layers (it predates them); skopeo can copy them, which checks digests.
        if compression != .zstd {
            let bundle = tmp.path + "/bundle"
            let unpack = try run(["umoci", "unpack"] + (geteuid() == 0 ? [] : ["--rootless"]) + ["--image", "\(storeRoot):sample:1", bundle])
            #expect(unpack.status == 0, "\(unpack.stderr)")
            try expectSameTree(src, bundle + "/rootfs")
        }
        let copy = try run(["skopeo", "copy", "oci:\(storeRoot):sample:1", "oci:\(tmp.path)/copy:c"])
        #expect(copy.status == 0, "\(copy.stderr)")
    }

    @Test(.requires("python3"))
    func storeValidatesAgainstTheOCISchemas() throws {
        let tmp = TempDir()
        let storeRoot = tmp.sub("store")
        let store = try ImageStore(root: storeRoot)
        let a = tmp.sub("a"), b = tmp.sub("b")
        try makeSampleTree(a)
        try writeFile(b + "/more", "more")
        _ = try importImage(store, a, as: "base")
        _ = try importImage(store, b, as: "localhost:5000/team/app:v1", base: "base", compression: .zstd)
        let result = try run(["python3", fixturesRoot + "/validate_oci_layout.py", fixturesRoot + "/oci-schema", storeRoot])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        // layout, index, 2 manifests, 2 configs
        #expect(result.stdout.contains("6 documents valid"))
    }

    @Test func schemaValidatorRejectsABrokenManifest() throws {
        // The validator must be able to fail: a manifest without layers/config is invalid.
        let tmp = TempDir()
        let storeRoot = tmp.sub("store")
        let store = try ImageStore(root: storeRoot)
        let bogus = try store.beginWriteSession().writeBlob(Data(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#.utf8),
                                        mediaType: MediaType.ociManifest)
        try store.beginWriteSession().tag(bogus, as: "bogus")
        let result = try run(["python3", fixturesRoot + "/validate_oci_layout.py", fixturesRoot + "/oci-schema", storeRoot])
        #expect(result.status == 1)
        #expect(result.stdout.contains("'config' is a required property"))
    }

    @Test func concurrentWritersAllLand() async throws {
        let tmp = TempDir()
        let storeRoot = tmp.sub("store")
        let src = tmp.sub("src")
        try makeSampleTree(src)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<8 {
                group.addTask {
                    // Separate store objects, as separate processes would have.
                    let store = try ImageStore(root: storeRoot)
                    try writeFile(src + "/../src\(i)/n", "\(i)")
                    _ = try importImage(store, tmp.path + "/src\(i)", as: "img:\(i)")
                }
            }
            try await group.waitForAll()
        }
        let store = try ImageStore(root: storeRoot)
        #expect(try store.images().map(\.name) == (0..<8).map { "img:\($0)" })
        for i in 0..<8 { #expect(try store.resolve("img:\(i)").manifest.layers.count == 1) }
    }

    /// Writing takes a `WriteSession` (the only type with write methods); while one is open, a
    /// prune (here through another store object, as another process would) waits, and a blob
    /// the session wrote but has not named yet survives; once it is dropped, prune runs.
    @Test func pruneWaitsForAnOpenWriteSession() async throws {
        let tmp = TempDir()
        let root = tmp.sub("store")
        let store = try ImageStore(root: root)
        var session: WriteSession? = try store.beginWriteSession()
        let blob = try session!.writeBlob(Data("not named yet".utf8), mediaType: "application/octet-stream")
        let pruning = Task.detached { try ImageStore(root: root).prune() }
        try await Task.sleep(for: .milliseconds(400))
        #expect(store.hasBlob(blob.digest), "prune waited for the session")
        session = nil
        let result = try await pruning.value
        #expect(result.removedBlobs >= 1)
        #expect(!store.hasBlob(blob.digest), "and ran once it was dropped")
        _ = session
    }

    /// Issue 38: the sources log (where blobs can be mounted from) no longer only grows: prune
    /// drops the lines of blobs it removed, and a store opened afterwards reads the same.
    @Test func pruneForgetsTheSourcesOfBlobsItRemoves() throws {
        let tmp = TempDir()
        let root = tmp.sub("store")
        let store = try ImageStore(root: root)
        let (config, manifest, gone) = try store.writing { session in
            let config = try session.writeBlob(Data("{}".utf8), mediaType: MediaType.ociConfig)
            let manifest = try session.writeBlob(try CanonicalJSON.encode(Manifest(config: config, layers: [])), mediaType: MediaType.ociManifest)
            try session.tag(manifest, as: "kept:1")
            return (config, manifest, try session.writeBlob(Data("nobody names me".utf8), mediaType: "application/octet-stream"))
        }
        try store.recordSources([config.digest, manifest.digest, gone.digest], repository: "registry.example/app")
        try store.recordSources([gone.digest], repository: "registry.example/other")
        #expect(store.sources(of: gone.digest).sorted() == ["registry.example/app", "registry.example/other"])
        #expect(try store.prune().removedBlobs == 1)
        #expect(store.sources(of: gone.digest).isEmpty && store.sources(of: config.digest) == ["registry.example/app"])
        let log = try String(contentsOfFile: root + "/.cairn/sources.log", encoding: .utf8)
        #expect(log.split(separator: "\n").count == 2 && !log.contains(gone.digest.description), "\(log)")
        try store.recordSources([gone.digest], repository: "registry.example/again")
        #expect(try ImageStore(root: root).sources(of: gone.digest) == ["registry.example/again"], "appended after the compaction, read whole")
    }

    /// One store object shared by concurrent tasks (a fleet rebase, parallel pulls): every name
    /// lands. flock alone does not exclude threads that share its descriptor.
    @Test func concurrentTasksSharingOneStoreLoseNoName() async throws {
        let tmp = TempDir()
        let store = try ImageStore(root: tmp.sub("store"))
        let config = try store.beginWriteSession().writeBlob(Data("{}".utf8), mediaType: MediaType.ociConfig)
        let manifest = try store.beginWriteSession().writeBlob(try CanonicalJSON.encode(Manifest(config: config, layers: [])), mediaType: MediaType.ociManifest)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<64 {
                group.addTask { try store.beginWriteSession().tag(manifest, as: "img:\(i)") }
            }
            try await group.waitForAll()
        }
        #expect(try store.images().count == 64)
        // Shared holders (writers) and an exclusive one (prune) in one process.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<16 {
                group.addTask {
                    if i % 4 == 0 { _ = try store.prune() } else { _ = try store.beginWriteSession().writeBlob(Data("blob \(i)".utf8), mediaType: "x") }
                }
            }
            try await group.waitForAll()
        }
        #expect(try store.images().count == 64)
    }

    /// Where blobs are known to exist (for cross-repository mounts): an append-only log that a
    /// store written by another process, an older JSON map and a torn last line all feed.
    @Test func blobSourcesAreRememberedAcrossProcessesAndFormats() throws {
        let tmp = TempDir()
        let store = try ImageStore(root: tmp.path + "/store")
        let a = try #require(Digest("sha256:" + String(repeating: "a", count: 64)))
        let b = try #require(Digest("sha256:" + String(repeating: "b", count: 64)))
        // A store from before the log: its JSON map (read once per process; nothing writes it now).
        let old = try ImageStore(root: tmp.path + "/old")
        try FileManager.default.createDirectory(atPath: tmp.path + "/old/.cairn", withIntermediateDirectories: true)
        try #"{"\#(b)": ["reg.example/legacy/app"]}"#.write(toFile: tmp.path + "/old/.cairn/sources.json", atomically: true, encoding: .utf8)
        #expect(store.sources(of: a).isEmpty)
        try store.recordSources([a, b], repository: "reg.example/team/app")
        try store.recordSources([a], repository: "reg.example/team/app")  // no duplicate line
        try store.recordSources([a], repository: "reg.example/base/run")
        #expect(store.sources(of: a) == ["reg.example/team/app", "reg.example/base/run"])
        #expect(store.sources(of: b) == ["reg.example/team/app"])
        let log = tmp.path + "/store/.cairn/sources.log"
        #expect(try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").count == 3)
        // Another writer appends (a line of its own, then a torn one): the complete line is read.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("\(b) reg.example/other/app\n\(a) reg.example/tor".utf8))
        try handle.close()
        #expect(store.sources(of: b) == ["reg.example/team/app", "reg.example/other/app"])
        #expect(store.sources(of: a) == ["reg.example/team/app", "reg.example/base/run"])
        try old.recordSources([b], repository: "reg.example/team/app")
        try old.recordSources([b], repository: "reg.example/legacy/app")  // known from the map: no line
        #expect(old.sources(of: b) == ["reg.example/legacy/app", "reg.example/team/app"])
        #expect(try String(contentsOfFile: tmp.path + "/old/.cairn/sources.log", encoding: .utf8).split(separator: "\n").count == 1)
    }
}

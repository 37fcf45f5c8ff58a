import FoundationEssentials
import Processes
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An image found in a store: its manifest (raw bytes kept, they define the digest) and config.
public struct StoredImage: Sendable {
    /// The name it was found under, if any.
    public var name: String?
    public var descriptor: Descriptor
    public var manifestData: Data
    public var manifest: Manifest
    public var config: ImageConfig
    public var configData: Data

    public var digest: Digest { descriptor.digest }

    /// The position and descriptor of the layer whose uncompressed digest is `diffID`, when the
    /// image has it (in its config and its manifest).
    public func layer(diffID: Digest) -> (index: Int, descriptor: Descriptor)? {
        guard let index = config.rootfs.diffIDs.firstIndex(of: diffID), index < manifest.layers.count else { return nil }
        return (index, manifest.layers[index])
    }
    /// Manifest + config + layers, as stored.
    public var totalSize: Int64 { descriptor.size + manifest.config.size + manifest.layers.reduce(0) { $0 + $1.size } }
}

/// What `prune` removed.
public struct PruneResult: Sendable, Hashable {
    public var removedBlobs: Int
    public var freedBytes: Int64
    /// Names of artifacts about images no name reaches any more (see `ImageStore.prune`).
    public var removedNames = 0
}

/// Cairn's local image store: an OCI image layout directory (image-layout.md). Blobs are shared
/// by all images; each name is an entry of index.json with an `org.opencontainers.image.ref.name`
/// annotation, so `skopeo inspect oci:STORE:NAME` and `umoci` read it.
///
/// Crash safety: every blob is written to a temp file under `.cairn/tmp`, fsynced and renamed
/// into `blobs/`; index.json is replaced the same way. Writers hold a shared lock for the whole
/// operation and an exclusive one while changing index.json; `prune` holds the exclusive lock,
/// so it never removes a blob an unfinished write is about to name.
public final class ImageStore: @unchecked Sendable {
    public let root: String
    /// false: a scratch store (a registry phase's work store, removed when the phase ends) whose
    /// writes are atomic but not fsynced: a crash loses it whole anyway, and the fsyncs were most
    /// of a registry rebase's local work (17 per rebase).
    public let durable: Bool
    /// Which names are artifacts about another manifest (cosign's `sha256-<hex>.sig` names that
    /// digest), for a store whose owner knows such a scheme: every name moved then retires the
    /// old manifest's artifact names (`tag(_:retiring:)`). nil: names only move.
    public let artifactSubject: (@Sendable (String) -> Digest?)?
    let tempDirectory: String
    let gcLock: FileLock
    private let indexLock: FileLock
    /// index.json's bytes as last read and their decoding: a command reads the index many times
    /// (each resolve, each name lookup, each tag), and decoding it grows with the store (84 KB
    /// for 292 names after many signed builds; signing a build read it five times).
    private let lastIndex = Mutex<(data: Data, index: ImageIndex)?>(nil)

    /// Opens the store at `root`, creating an empty layout if the directory is new or empty.
    /// - Throws: `OCIError.invalidLayout` when `root` holds something that is not an OCI layout.
    public init(root: String, durable: Bool = true, artifactSubject: (@Sendable (String) -> Digest?)? = nil) throws {
        let root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.root = root
        self.durable = durable
        self.artifactSubject = artifactSubject
        self.tempDirectory = root + "/.cairn/tmp"
        if !FS.exists(tempDirectory) {
            // New blobs are made in tmp: it gets a block group of its own, away from the
            // deletions around the store (ARCHITECTURE.md, "Spreading work directories").
            try FS.makeDirectories(root + "/.cairn")
            FS.spreadSubdirectories(root + "/.cairn")
            try FS.makeDirectories(tempDirectory)
        }
        self.gcLock = try FileLock(path: root + "/.cairn/gc.lock")
        self.indexLock = try FileLock(path: root + "/.cairn/index.lock")
        try indexLock.withLock(exclusive: true) {
            try FS.makeDirectories(root + "/blobs/sha256")
            let layoutPath = root + "/oci-layout"
            if FS.exists(layoutPath) {
                let header = try CanonicalJSON.decode(ImageLayoutHeader.self, from: try FS.read(layoutPath), what: layoutPath)
                guard header.imageLayoutVersion.hasPrefix("1.") else {
                    throw OCIError.invalidLayout(path: root, detail: "imageLayoutVersion \(header.imageLayoutVersion) is not 1.x")
                }
            } else {
                try FS.writeAtomically(try CanonicalJSON.encode(ImageLayoutHeader()), to: layoutPath, tempDirectory: tempDirectory, durable: durable)
            }
            if !FS.exists(root + "/index.json") {
                try FS.writeAtomically(try CanonicalJSON.encode(ImageIndex()), to: root + "/index.json", tempDirectory: tempDirectory, durable: durable)
            }
        }
    }

    // MARK: Blobs

    public func blobPath(_ digest: Digest) -> String {
        "\(root)/blobs/\(digest.algorithm)/\(digest.encoded)"
    }

    public func hasBlob(_ digest: Digest) -> Bool { FS.exists(blobPath(digest)) }

    /// Reads a blob and verifies its digest.
    /// - Throws: `OCIError.blobNotFound`, `OCIError.digestMismatch`.
    public func readBlob(_ digest: Digest) throws -> Data {
        let path = blobPath(digest)
        guard FS.exists(path) else { throw OCIError.blobNotFound(digest, store: root) }
        let data = try FS.read(path)
        if digest.algorithm == "sha256" {
            let actual = Digest.sha256(of: data)
            guard actual == digest else { throw OCIError.digestMismatch(what: path, expected: digest, actual: actual) }
        }
        return data
    }

    // Writes: internal, called through a `WriteSession` (WriteSession.swift), which holds the
    // store's write lock so that `prune` cannot take a temp file or an unnamed blob.

    /// Several small blobs (an artifact's config, payloads and manifest), each synced and renamed
    /// into place, the blob directory synced once for all of them. The files' fsyncs run at once,
    /// on threads of their own: the file system's journal commits them together (seven small blobs,
    /// as a signed build writes, on this machine's ext4: 2.97 ms one after the other, 1.73 ms at
    /// once, medians of 60 alternating rounds).
    func writeBlobs(_ blobs: [(data: Data, mediaType: String)]) throws -> [Descriptor] {
        var pending: [(temp: TempFile, path: String)] = []
        let descriptors = try blobs.map { blob -> Descriptor in
            let digest = Digest.sha256(of: blob.data)
            let path = blobPath(digest)
            if !hasBlob(digest) && !pending.contains(where: { $0.path == path }) {
                let temp = try TempFile(directory: tempDirectory, durable: durable)
                let out = HashingFileOutput(fd: temp.fd, path: temp.path)
                try blob.data.withUnsafeBytes { try out.write($0) }
                pending.append((temp, path))
            }
            return Descriptor(mediaType: blob.mediaType, digest: digest, size: Int64(blob.data.count))
        }
        guard !pending.isEmpty else { return descriptors }
        guard durable else {
            for p in pending { try p.temp.commit(to: p.path, syncDirectory: false) }
            return descriptors
        }
        let fds = pending.map(\.temp.fd)
        let errors = pending.count == 1 ? [fsync(fds[0]) == 0 ? 0 : errno]
            : concurrentMap(fds.count, width: fds.count) { i in fsync(fds[i]) == 0 ? 0 : errno }
        if let failed = errors.firstIndex(where: { $0 != 0 }) {
            throw OCIError.io(operation: "sync", path: pending[failed].temp.path, errno: errors[failed])
        }
        for p in pending { try p.temp.commit(to: p.path, syncDirectory: false, synced: true) }
        FS.fsyncDirectory(root + "/blobs/sha256")
        return descriptors
    }

    /// Streams a blob into the store: `body` writes to the output; the bytes land under their
    /// digest only after they are complete and synced.
    func writeBlob<T>(_ body: (any BlobOutput) throws -> T) throws -> (T, Digest, Int64) {
        let pending = try PendingBlob(store: self)
        let result = try body(pending)
        let digest = try pending.commitAsWritten()
        return (result, digest, pending.count)
    }

    // MARK: Index and names

    /// index.json as it is now.
    public func index() throws -> ImageIndex {
        let path = root + "/index.json"
        let data = try FS.read(path)
        // Compared by content, not by inode or time stamps (which another writer's rename can
        // repeat within a clock tick): reading and comparing the bytes costs far less than decoding.
        if let hit = lastIndex.withLock({ $0.flatMap { $0.data == data ? $0.index : nil } }) { return hit }
        let decoded = try CanonicalJSON.decode(ImageIndex.self, from: data, what: path)
        lastIndex.withLock { $0 = (data, decoded) }
        return decoded
    }

    /// The name under which `reference` is recorded: the familiar form with a tag
    /// (`busybox` -> `busybox:latest`, `localhost:5000/a/b:1`).
    public static func storedName(_ reference: String) throws -> String {
        try ImageReference(parsing: reference).withDefaultTag.familiar
    }

    /// All named images, sorted by name.
    public func images() throws -> [(name: String, descriptor: Descriptor)] {
        try index().manifests.compactMap { d in
            d.annotations?[Annotation.refName].map { ($0, d) }
        }.sorted { $0.name < $1.name }
    }

    /// Finds an image by name (`app`, `app:1`, `docker.io/library/app:1`), by `name@digest`, or by
    /// a full manifest digest.
    /// - Throws: `OCIError.notFound`, `ImageReference.ParseError`.
    public func resolve(_ reference: String, platform: Platform = .host) throws -> StoredImage {
        let entries = try index().manifests
        var found: (String?, Descriptor)?
        // A bare digest; `app:1` also fits the general digest grammar, so only registered algorithms count.
        if let digest = Digest(reference), ["sha256", "sha512"].contains(digest.algorithm) {
            found = entries.first { $0.digest == digest }.map { ($0.annotations?[Annotation.refName], $0) }
        } else {
            let ref = try ImageReference(parsing: reference)
            if let digest = ref.digest {
                found = entries.first { $0.digest == digest }.map { (ref.familiarName, $0) }
                if found == nil, hasBlob(digest) {
                    let data = try readBlob(digest)
                    let mt = (try? CanonicalJSON.decode(Manifest.self, from: data, what: "manifest"))?.mediaType
                    found = (ref.familiarName, Descriptor(mediaType: mt ?? MediaType.ociManifest, digest: digest, size: Int64(data.count)))
                }
            } else {
                let name = ref.withDefaultTag.familiar
                found = entries.first { $0.annotations?[Annotation.refName] == name }.map { (name, $0) }
            }
        }
        guard let (name, descriptor) = found else { throw OCIError.notFound(reference: reference, store: root) }
        return try load(descriptor, name: name, platform: platform)
    }

    /// Reads the manifest (choosing the host platform from an index) and config of `descriptor`.
    public func load(_ descriptor: Descriptor, name: String?, platform: Platform = .host) throws -> StoredImage {
        var descriptor = descriptor
        var data = try readBlob(descriptor.digest)
        if MediaType.indexes.contains(descriptor.mediaType) {
            let idx = try CanonicalJSON.decode(ImageIndex.self, from: data, what: "index \(descriptor.digest)")
            guard let chosen = idx.manifests.first(where: { $0.platform?.os == platform.os && $0.platform?.architecture == platform.architecture })
                ?? (idx.manifests.count == 1 ? idx.manifests.first : nil)
            else {
                throw OCIError.notFound(reference: "\(name ?? descriptor.digest.description) for \(platform)", store: root)
            }
            descriptor = chosen
            data = try readBlob(chosen.digest)
        }
        guard MediaType.manifests.contains(descriptor.mediaType) else {
            throw OCIError.unsupportedMediaType(what: name ?? descriptor.digest.description, mediaType: descriptor.mediaType)
        }
        let manifest = try CanonicalJSON.decode(Manifest.self, from: data, what: "manifest \(descriptor.digest)")
        let configData = try readBlob(manifest.config.digest)
        let config = try CanonicalJSON.decode(ImageConfig.self, from: configData, what: "config \(manifest.config.digest)")
        return StoredImage(name: name, descriptor: descriptor, manifestData: data, manifest: manifest,
                           config: config, configData: configData)
    }

    /// Records several names in one update of the index (retiring artifact names, see
    /// `artifactSubject`).
    func tag(_ entries: [(descriptor: Descriptor, reference: String)]) throws {
        if let artifactSubject { return try tag(entries, retiring: artifactSubject) }
        let made = try entries.map { try Self.indexEntry($0.descriptor, as: $0.reference) }
        let names = Set(made.compactMap { $0.annotations?[Annotation.refName] })
        try updateIndex { index in
            index.manifests.removeAll { names.contains($0.annotations?[Annotation.refName] ?? "") }
            index.manifests += made
        }
    }

    /// The annotation of an unnamed index entry that keeps a manifest (see `WriteSession.pin`).
    public static let pinAnnotation = "dev.cairn.pinned-by"

    func pin(_ descriptor: Descriptor, holder: String) throws {
        var d = descriptor
        d.platform = nil
        d.annotations = [Self.pinAnnotation: holder]
        try updateIndex { index in
            if !index.manifests.contains(where: { $0.digest == d.digest && $0.annotations?[Self.pinAnnotation] == holder }) { index.manifests.append(d) }
        }
    }

    /// Makes `descriptor`, named `reference`, the only image in the index: for a layout that holds
    /// one image (platform.md's per-reference layout paths), where a second entry would leave
    /// readers to guess.
    func setOnlyImage(_ descriptor: Descriptor, as reference: String) throws {
        let entry = try Self.indexEntry(descriptor, as: reference)
        try updateIndex { index in index.manifests = [entry] }
    }

    /// `descriptor` as index.json records it under `reference`: the name as its only annotation.
    static func indexEntry(_ descriptor: Descriptor, as reference: String) throws -> Descriptor {
        var d = descriptor
        d.platform = nil
        d.annotations = [Annotation.refName: try storedName(reference)]
        return d
    }

    /// Removes a name. The blobs stay until `prune`.
    /// - Throws: `OCIError.notFound` when the name is not in the store.
    @discardableResult
    public func remove(_ reference: String) throws -> Descriptor {
        let name = try Self.storedName(reference)
        var removed: Descriptor?
        try updateIndex { index in
            removed = index.manifests.first { $0.annotations?[Annotation.refName] == name }
            index.manifests.removeAll { $0.annotations?[Annotation.refName] == name }
        }
        guard let removed else { throw OCIError.notFound(reference: reference, store: root) }
        return removed
    }

    func updateIndex(_ change: (inout ImageIndex) throws -> Void) throws {
        try indexLock.withLock(exclusive: true) {
            var idx = try index()
            try change(&idx)
            idx.manifests.sort {
                ($0.annotations?[Annotation.refName] ?? "", $0.digest.description) < ($1.annotations?[Annotation.refName] ?? "", $1.digest.description)
            }
            // Its temp file is made beside tmp, not in it: each update deletes the previous
            // index.json's inode, and those deletions stay out of the blobs' block group.
            try FS.writeAtomically(try CanonicalJSON.encode(idx), to: root + "/index.json", tempDirectory: root + "/.cairn", durable: durable)
        }
    }

    /// Runs `body` holding the index lock (short metadata updates only).
    func withIndexLock<T>(_ body: () throws -> T) throws -> T {
        try indexLock.withLock(exclusive: true, body)
    }

    // MARK: Prune

    /// Every blob a name in index.json reaches (or the given entries): manifests, indexes,
    /// configs, layers, subjects.
    public func reachableDigests(from entries: [Descriptor]? = nil) throws -> Set<Digest> {
        var reachable = Set<Digest>()
        var queue = try entries ?? index().manifests
        while let d = queue.popLast() {
            guard reachable.insert(d.digest).inserted, hasBlob(d.digest) else { continue }
            if MediaType.indexes.contains(d.mediaType) {
                queue += try CanonicalJSON.decode(ImageIndex.self, from: readBlob(d.digest), what: "index \(d.digest)").manifests
            } else if MediaType.manifests.contains(d.mediaType) {
                let m = try CanonicalJSON.decode(Manifest.self, from: readBlob(d.digest), what: "manifest \(d.digest)")
                reachable.insert(m.config.digest)
                for l in m.layers { reachable.insert(l.digest) }
                if let s = m.subject { reachable.insert(s.digest) }
            }
        }
        return reachable
    }

    /// Removes every blob no name in index.json reaches, and stale temp files. `alsoWhileLocked`
    /// runs after, still under the store's exclusive lock (no build or other write in progress),
    /// with the manifest digests names reach: for caches kept beside the store.
    ///
    /// `subjectOf` says which names are artifacts about another image (a signature's
    /// `sha256-<hex>.sig` tag: that image's digest); such a name is removed first when no other
    /// name reaches its subject any more (the image was rebuilt or removed), so signatures of
    /// images long gone do not pile up in index.json.
    ///
    /// A pinned manifest (`WriteSession.pin`) is kept while `holds(holder)`; its entry goes when not.
    public func prune(subjectOf: ((String) -> Digest?)? = nil, holds: (String) -> Bool = { _ in true },
                      alsoWhileLocked: ((Set<Digest>) throws -> Void)? = nil) throws -> PruneResult {
        try gcLock.withLock(exclusive: true) {
            var result = PruneResult(removedBlobs: 0, freedBytes: 0)
            if let subjectOf { result.removedNames = try removeOrphanedArtifacts(subjectOf) }
            let released = Set(try index().manifests.compactMap { $0.annotations?[Self.pinAnnotation] }.filter { !holds($0) })
            if !released.isEmpty {
                try updateIndex { $0.manifests.removeAll { d in d.annotations?[Self.pinAnnotation].map(released.contains) ?? false } }
            }
            let reachable = try reachableDigests()
            let blobsRoot = root + "/blobs"
            for algorithm in try FS.listDirectory(blobsRoot) {
                for encoded in try FS.listDirectory(blobsRoot + "/" + algorithm) {
                    let path = "\(blobsRoot)/\(algorithm)/\(encoded)"
                    if let d = Digest("\(algorithm):\(encoded)"), reachable.contains(d) { continue }
                    var st = stat()
                    if lstat(path, &st) == 0, unlink(path) == 0 {
                        result.removedBlobs += 1
                        result.freedBytes += Int64(st.st_size)
                    }
                }
            }
            // Temp files left by killed writers (no writer runs while we hold the lock).
            for name in try FS.listDirectory(tempDirectory) { unlink(tempDirectory + "/" + name) }
            try indexLock.withLock(exclusive: true) {  // index.json's temp files, none being written now
                for name in try FS.listDirectory(root + "/.cairn") where name.hasPrefix("tmp-") { unlink(root + "/.cairn/" + name) }
            }
            try compactSources(keeping: reachable)
            try alsoWhileLocked?(reachable)
            return result
        }
    }

    /// Removes the artifact names (see `prune`) whose subject no other name reaches; their count.
    func removeOrphanedArtifacts(_ subjectOf: (String) -> Digest?) throws -> Int {
        var removed = 0
        try updateIndex { index in
            let name = { (d: Descriptor) in d.annotations?[Annotation.refName] ?? "" }
            let subjects = index.manifests.map { subjectOf(name($0)) }
            let reachable = try reachableDigests(from: zip(index.manifests, subjects).filter { $0.1 == nil }.map(\.0))
            let kept = zip(index.manifests, subjects).filter { $0.1.map(reachable.contains) ?? true }.map(\.0)
            removed = index.manifests.count - kept.count
            index.manifests = kept
        }
        return removed
    }
}

import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// A blob being received: bytes go to a temp file and are hashed; `commit` verifies digest and
/// size and only then renames it into the store. Dropped without commit, nothing remains.
public final class PendingBlob: BlobOutput {
    let store: ImageStore
    let temp: TempFile
    private var output: HashingFileOutput

    init(store: ImageStore) throws {
        self.store = store
        self.temp = try TempFile(directory: store.tempDirectory)
        self.output = HashingFileOutput(fd: temp.fd, path: temp.path)
    }

    /// Bytes received so far.
    public var count: Int64 { output.digester.count }

    public var digester: DigestingCounter { output.digester }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try output.write(bytes)
    }

    /// Discards what was received (a download restarting from byte 0).
    public func reset() throws {
        try check(ftruncate(temp.fd, 0), "truncate", temp.path)
        try check(lseek(temp.fd, 0, SEEK_SET), "seek", temp.path)
        output = HashingFileOutput(fd: temp.fd, path: temp.path)
    }

    /// Verifies and stores the blob.
    /// - Throws: `RegistryError.sizeMismatch` / `.digestMismatch` (the temp file is removed).
    public func commit(expected: Digest, size: Int64?, what: String) throws {
        if let size, size != count { throw RegistryError.sizeMismatch(what: what, expected: size, actual: count) }
        let actual = output.digester.finalize()
        guard actual == expected else { throw RegistryError.digestMismatch(what: what, expected: expected, actual: actual) }
        if !store.hasBlob(expected) { try temp.commit(to: store.blobPath(expected)) }
    }

    /// Stores the blob under the digest of what was written (content produced locally).
    /// - Returns: that digest.
    public func commitAsWritten() throws -> Digest {
        let digest = output.digester.finalize()
        if !store.hasBlob(digest) { try temp.commit(to: store.blobPath(digest)) }
        return digest
    }
}

extension ImageStore {
    /// Starts receiving a blob.
    public func beginBlob() throws -> PendingBlob { try PendingBlob(store: self) }

    private var sourcesPath: String { root + "/.cairn/sources.json" }

    /// Repositories (`registry/repository`) a blob is known to exist in, from earlier pulls and
    /// pushes: candidates for a cross-repository mount.
    public func sources(of digest: Digest) -> [String] {
        guard let data = FileManager.default.contents(atPath: sourcesPath),
              let map = try? JSONDecoder().decode([String: [String]].self, from: data) else { return [] }
        return map[digest.description] ?? []
    }

    /// Remembers that `digests` exist in `repository` (`registry/repository`).
    public func recordSources(_ digests: [Digest], repository: String) throws {
        try withIndexLock {
            var map: [String: [String]] = [:]
            if let data = FileManager.default.contents(atPath: sourcesPath) {
                map = (try? JSONDecoder().decode([String: [String]].self, from: data)) ?? [:]
            }
            for d in digests where !(map[d.description] ?? []).contains(repository) {
                map[d.description, default: []].append(repository)
            }
            try FS.writeAtomically(try CanonicalJSON.encode(map), to: sourcesPath, tempDirectory: tempDirectory)
        }
    }
}

/// A store write spanning async work (a pull): while it is open, `prune` waits. Each session has
/// its own lock descriptor, so sessions in one process do not release each other's lock.
public final class WriteSession: @unchecked Sendable {
    private let lock: FileLock

    init(path: String) throws {
        lock = try FileLock(path: path)
        try lock.lock(exclusive: false)
    }

    deinit { lock.unlock() }
}

extension ImageStore {
    /// Opens a write session (released when the value is dropped).
    public func beginWriteSession() throws -> WriteSession {
        try WriteSession(path: root + "/.cairn/gc.lock")
    }
}

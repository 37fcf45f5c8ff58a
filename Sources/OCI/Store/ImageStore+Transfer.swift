import FoundationEssentials
import Synchronization

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
        self.temp = try TempFile(directory: store.tempDirectory, durable: store.durable)
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
    /// Before: one JSON map rewritten whole (and fsynced) on every pull, decoded whole for every
    /// blob a push looked up; a 500-image campaign spent most of its time there.
    private var legacySourcesPath: String { root + "/.cairn/sources.json" }
    /// `<digest> <repository>` lines, appended. A lost or torn line only costs a mount (the
    /// push uploads instead), so lines are not fsynced.
    private var sourcesLogPath: String { root + "/.cairn/sources.log" }

    /// Repositories (`registry/repository`) a blob is known to exist in, from earlier pulls and
    /// pushes: candidates for a cross-repository mount.
    public func sources(of digest: Digest) -> [String] {
        SourcesLog.map(log: sourcesLogPath, legacy: legacySourcesPath)[digest.description] ?? []
    }

    /// Remembers that `digests` exist in `repository` (`registry/repository`).
    public func recordSources(_ digests: [Digest], repository: String) throws {
        try withIndexLock {
            let known = SourcesLog.map(log: sourcesLogPath, legacy: legacySourcesPath)
            let added = Set(digests.map(\.description)).filter { !(known[$0] ?? []).contains(repository) }
            guard !added.isEmpty else { return }
            try FileManager.default.createDirectory(atPath: root + "/.cairn", withIntermediateDirectories: true)
            let fd = open(sourcesLogPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw OCIError.io(operation: "open", path: sourcesLogPath, errno: errno) }
            defer { close(fd) }
            let bytes = Array(added.sorted().map { $0 + " " + repository + "\n" }.joined().utf8)
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written == bytes.count else { throw OCIError.io(operation: "append", path: sourcesLogPath, errno: errno) }
        }
    }
}

extension ImageStore {
    /// Drops the sources of blobs the store no longer has (`prune` calls it, with what it
    /// kept): the log is rewritten with a line per (digest, repository) kept, the older JSON map
    /// goes. Returns how many lines went. Without it the log only grew.
    @discardableResult
    func compactSources(keeping reachable: Set<Digest>) throws -> Int {
        try withIndexLock {
            let all = SourcesLog.map(log: sourcesLogPath, legacy: legacySourcesPath)
            var lines = "", dropped = 0
            for digest in all.keys.sorted() {
                let repositories = all[digest] ?? []
                if let d = Digest(digest), reachable.contains(d) {
                    for r in repositories { lines += digest + " " + r + "\n" }
                } else {
                    dropped += repositories.count
                }
            }
            guard dropped > 0 || FS.exists(legacySourcesPath) else { return 0 }
            try FS.writeAtomically(Data(lines.utf8), to: sourcesLogPath, tempDirectory: tempDirectory, durable: durable)
            unlink(legacySourcesPath)
            SourcesLog.forget(sourcesLogPath)
            return dropped
        }
    }
}

/// This process's view of each store's sources: the older JSON map and the log, read once, then
/// only what was appended to the log since (a campaign looks blobs up thousands of times).
enum SourcesLog {
    struct State {
        var offset: UInt64 = 0
        /// The log file read: a compacted log is a new file (renamed into place).
        var inode: UInt64 = 0
        /// The legacy map (read once: nothing writes it any more) and what the log added.
        var legacy: [String: [String]]
        var map: [String: [String]]
        init(legacy: [String: [String]]) {
            self.legacy = legacy
            map = legacy
        }
    }
    static let states = Mutex<[String: State]>([:])

    /// Repositories by blob digest: the legacy map's first, then the log's.
    static func map(log path: String, legacy: String) -> [String: [String]] {
        states.withLock { states in
            var state = states[path] ?? State(legacy: legacyMap(legacy))
            refresh(&state, path: path)
            states[path] = state
            return state.map
        }
    }

    /// Forgets what this process read of a log (after compacting it).
    static func forget(_ path: String) {
        _ = states.withLock { $0.removeValue(forKey: path) }
    }

    static func legacyMap(_ path: String) -> [String: [String]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        return (try? JSONDecoder().decode([String: [String]].self, from: data)) ?? [:]
    }

    /// Reads the complete lines appended since `state.offset` (a torn last line waits).
    static func refresh(_ state: inout State, path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let size = lseek(fd, 0, SEEK_END)
        guard size >= 0 else { return }
        let end = UInt64(size)
        var st = stat()
        let inode = fstat(fd, &st) == 0 ? UInt64(st.st_ino) : 0
        // Replaced (compacted by a prune, here or in another process): read from the start.
        if end < state.offset || (state.inode != 0 && inode != state.inode) { state = State(legacy: state.legacy) }
        state.inode = inode
        guard end > state.offset else { return }
        var data = [UInt8](repeating: 0, count: Int(end - state.offset))
        let got = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(state.offset)) }
        guard got > 0, let lastNewline = data[..<got].lastIndex(of: 0x0a) else { return }
        let complete = data[...lastNewline]
        for line in complete.split(separator: 0x0a) {
            guard let space = line.firstIndex(of: 0x20) else { continue }
            let digest = String(decoding: line[line.startIndex..<space], as: UTF8.self)
            let repository = String(decoding: line[line.index(after: space)...], as: UTF8.self)
            if !(state.map[digest] ?? []).contains(repository) { state.map[digest, default: []].append(repository) }
        }
        state.offset += UInt64(complete.count)
    }
}

import FoundationEssentials
import Synchronization
import CNBCore
import Processes
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// A cheap identity of a directory tree: every entry's path, type, mode, size, mtime, ctime,
/// inode and link target — never file contents. Two equal fingerprints mean the tree was not
/// touched (ctime cannot be set back by a process), so its layer can be reused without reading
/// it. Used by the exporter and recorded by the restorer for what it extracts.
public enum Fingerprint {
    /// `include`: only these paths (relative, with their parents) count.
    public static func of(_ directory: String, include: Set<String>? = nil) throws -> String {
        var digester = DigestingCounter()
        try walk(directory, inner: "", include: include, &digester)
        return digester.finalize().description
    }

    /// Names of one directory in the order fingerprints take them (bytes of UTF-8).
    static func sorted(_ names: [String]) -> [String] {
        names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Adds one entry: its path relative to the walk's top (`rel`), type and mode, size, mtime,
    /// ctime, inode and link count, and a link's target (read from `path`).
    static func update(_ d: inout DigestingCounter, rel: String, path: String, _ st: stat) throws {
        var line = "\(rel)\u{0}\(st.st_mode)\u{0}\(st.st_size)\u{0}\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)\u{0}"
            + "\(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)\u{0}\(st.st_ino)\u{0}\(st.st_nlink)"
        if st.st_mode & S_IFMT == S_IFLNK { line += "\u{0}" + String(decoding: try FS.readLink(path), as: UTF8.self) }
        line += "\n"
        line.withUTF8 { d.update(UnsafeRawBufferPointer($0)) }
    }

    private static func walk(_ directory: String, inner: String, include: Set<String>?, _ d: inout DigestingCounter) throws {
        for name in sorted(try FS.listDirectory(directory)) {
            let rel = inner + name
            if let include, !include.contains(rel) { continue }
            let path = directory + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0 else { throw LifecycleError.io(operation: "stat", path: path, reason: String(cString: strerror(errno))) }
            try update(&d, rel: rel, path: path, st)
            if st.st_mode & S_IFMT == S_IFDIR { try walk(path, inner: rel + "/", include: include, &d) }
        }
    }
}

/// `fingerprints.json` beside the cache: layer key → (fingerprint, the layer it produced).
/// Written atomically; a missing or unreadable book just means no fast path.
public final class FingerprintBook: Sendable {
    public struct Entry: Codable, Hashable, Sendable {
        public var fingerprint: String
        public var diffID: String
        public var digest: String
        public var size: Int64
        public var mediaType: String
    }

    private let path: String?
    private let entries: Mutex<[String: Entry]>

    public init(cacheDirectory: String?) {
        path = cacheDirectory.map { $0 + "/fingerprints.json" }
        if let path, let data = FileManager.default.contents(atPath: path),
           let decoded = try? JSONDecoder().decode([String: Entry].self, from: data) {
            entries = Mutex(decoded)
        } else {
            entries = Mutex([:])
        }
    }

    /// The key of a layer: where it was read from and how it is written.
    public static func key(directory: String, options: LayerWriteOptions, slice: String = "") -> String {
        "\(directory)|\(slice)|\(options.uid):\(options.gid)|\(options.mtime)|\(options.compression)|\(options.level.map(String.init) ?? "default")|\(options.prefix)"
    }

    /// The recorded layer when the fingerprint still matches and its blob is in `store`, or is
    /// one of `remote` (blobs a registry holds in the target repository: the push skips them).
    public func lookup(_ key: String, fingerprint: String, in store: ImageStore, remote: Set<Digest> = []) -> LayerResult? {
        guard let e = entries.withLock({ $0[key] }), e.fingerprint == fingerprint, let diffID = Digest(e.diffID), let digest = Digest(e.digest),
              store.hasBlob(digest) || remote.contains(digest)
        else { return nil }
        return LayerResult(diffID: diffID, digest: digest, size: e.size, uncompressedSize: 0, mediaType: e.mediaType, entries: 0)
    }

    public func record(_ key: String, fingerprint: String, _ r: LayerResult) {
        let entry = Entry(fingerprint: fingerprint, diffID: r.diffID.description, digest: r.digest.description, size: r.size,
                          mediaType: r.mediaType)
        entries.withLock { $0[key] = entry }
    }

    public func save() throws {
        guard let path else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let dir = parentDirectory(of: path)
        try FS.makeDirectories(dir)
        // Under the mutex: two saves write their snapshots in the order they took them.
        try entries.withLock { try FS.writeAtomically(try encoder.encode($0), to: path, tempDirectory: dir) }
    }
}

/// Options of the layers the lifecycle writes: reproducible time, chosen compression, and the
/// owner of the entries (the CNB user for buildpack directories). The exporter writes with them
/// and the restorer keys the fingerprints of what it extracts with them; `FingerprintBook.key`
/// includes the options, so both must build them here or restored layers go unrecognised.
func layerOptions(epoch: Int64, compression: Compression, owner: (uid: Int, gid: Int) = (0, 0)) -> LayerWriteOptions {
    var o = LayerWriteOptions()
    o.uid = owner.uid
    o.gid = owner.gid
    o.mtime = epoch
    o.compression = compression
    // The lifecycle's compression level setting (documented in the README); an invalid value
    // was reported when the phase read its environment.
    o.level = try? LayerWriteOptions.compressionLevel(ProcessInfo.processInfo.environment)
    return o
}

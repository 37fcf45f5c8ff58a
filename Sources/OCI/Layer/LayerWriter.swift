import CCairn
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// How a layer is written.
public struct LayerWriteOptions: Sendable {
    /// Owner recorded for every entry (the host's owners never leak into a layer).
    public var uid: Int = 0
    public var gid: Int = 0
    /// Modification time recorded for every entry: `SOURCE_DATE_EPOCH` or the fixed time.
    public var mtime: Int64 = LayerWriteOptions.normalizedTime
    public var compression: Compression = .gzip
    /// gzip level (default 1, BestSpeed, as the reference lifecycle's go-containerregistry writes
    /// layers) or zstd level (default 3, as `zstd -3`); `CAIRN_COMPRESSION_LEVEL` sets it.
    public var level: Int32?
    /// Compression threads; defaults to the number of cores.
    public var workers: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Prepended to every entry name (e.g. `workspace` for app layers), with its parents.
    public var prefix: String = ""
    /// Called with the number of tar bytes produced so far (on the writing thread).
    public var progress: (@Sendable (Int64) -> Void)?
    /// When set, only entries whose path relative to the directory (`a/b`, no prefix) is in the
    /// set are written; a directory must be in the set for anything below it to be considered.
    public var include: Set<String>?
    /// When set, decides each entry's owner from its path in the layer and its owner on disk
    /// (stacks keep root-owned system files beside a user's home); else `uid`/`gid` for all.
    public var owner: (@Sendable (_ path: String, _ uid: Int, _ gid: Int) -> (uid: Int, gid: Int))?
    /// The directory is an overlayfs upper directory: its whiteouts (0/0 character devices)
    /// become `.wh.<name>` entries and its opaque directories (`trusted.overlay.opaque=y`) get a
    /// `.wh..wh..opq` entry (image-spec layer.md, Whiteouts).
    public var overlayUpper = false

    /// The gzip level used when none is given.
    public static let defaultGzipLevel: Int32 = 1

    /// 1980-01-01T00:00:01Z, the constant the CNB lifecycle uses for reproducible layers.
    public static let normalizedTime: Int64 = 315_532_801

    public init() {}

    /// Options with the mtime taken from `SOURCE_DATE_EPOCH` in `environment` when set.
    /// - Throws: `OCIError.invalidValue` when the variable is not a number of seconds.
    public static func fromEnvironment(_ environment: [String: String]) throws -> LayerWriteOptions {
        var o = LayerWriteOptions()
        if let s = environment["SOURCE_DATE_EPOCH"], !s.isEmpty {
            guard let v = Int64(s), v >= 0 else { throw OCIError.invalidValue(name: "SOURCE_DATE_EPOCH", value: s, expected: "seconds since the epoch") }
            o.mtime = v
        }
        o.level = try compressionLevel(environment)
        return o
    }

    /// `CAIRN_COMPRESSION_LEVEL` (1–9 for gzip, 1–19 for zstd), nil when unset.
    /// - Throws: `OCIError.invalidValue` when it is not such a number.
    public static func compressionLevel(_ environment: [String: String]) throws -> Int32? {
        guard let s = environment["CAIRN_COMPRESSION_LEVEL"], !s.isEmpty else { return nil }
        guard let v = Int32(s), (1...19).contains(v) else {
            throw OCIError.invalidValue(name: "CAIRN_COMPRESSION_LEVEL", value: s, expected: "a compression level, 1-9 for gzip or 1-19 for zstd")
        }
        return v
    }
}

/// What writing a layer produced.
public struct LayerResult: Hashable, Sendable {
    /// sha256 of the uncompressed tar.
    public var diffID: Digest
    /// sha256 of the blob as stored (compressed).
    public var digest: Digest
    public var size: Int64
    public var uncompressedSize: Int64
    public var mediaType: String
    public var entries: Int

    public var descriptor: Descriptor { Descriptor(mediaType: mediaType, digest: digest, size: size) }

    public init(diffID: Digest, digest: Digest, size: Int64, uncompressedSize: Int64, mediaType: String, entries: Int) {
        self.diffID = diffID
        self.digest = digest
        self.size = size
        self.uncompressedSize = uncompressedSize
        self.mediaType = mediaType
        self.entries = entries
    }
}

/// Turns a directory into a deterministic layer in one streaming pass: entries sorted byte-wise
/// per directory, owners and times set by the options, hard links detected by inode, no host
/// user names, xattrs or access times. The tar bytes are hashed (diffID) and compressed as they
/// are produced; memory does not depend on the layer's size.
public enum LayerWriter {
    /// Writes `directory` as a layer to `output`.
    /// - Throws: `OCIError` naming the path that could not be read.
    public static func write(directory: String, options: LayerWriteOptions, to output: any BlobOutput) throws -> LayerResult {
        var st = stat()
        guard lstat(directory, &st) == 0 else { throw OCIError.io(operation: "read", path: directory, errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw OCIError.notADirectory(directory) }
        return try writeStream(options: options, to: output) { tar in
            var walker = Walker(tar: tar, options: options)
            try walker.emitPrefix()
            try walker.walk(directory: directory, relative: walker.prefix, inner: "")
            return walker.entries
        }
    }

    /// Writes a layer whose entries `body` produces through a `TarWriter`.
    public static func writeStream(options: LayerWriteOptions, to output: any BlobOutput,
                                   body: (TarWriter) throws -> Int) throws -> LayerResult {
        let compressor: any Compressor
        switch options.compression {
        case .gzip: compressor = try ParallelGzipCompressor(out: output, level: min(options.level ?? LayerWriteOptions.defaultGzipLevel, 9), workers: options.workers)
        case .zstd: compressor = try ZstdCompressor(out: output, level: options.level ?? 3, workers: options.workers)
        case .none: compressor = StoreCompressor(out: output)
        }
        let tee = TarTee(compressor: compressor, progress: options.progress)
        let tar = TarWriter(consumer: tee)
        let entries = try body(tar)
        try tar.finish()
        try compressor.finish()
        let diffID = tee.digester.finalize()
        let blob = output.digester
        return LayerResult(diffID: diffID, digest: blob.finalize(), size: blob.count,
                           uncompressedSize: tee.digester.count, mediaType: options.compression.layerMediaType,
                           entries: entries)
    }

    /// Hashes the tar stream (diffID) and passes it on to the compressor.
    private final class TarTee: ChunkConsumer {
        let compressor: any Compressor
        let progress: (@Sendable (Int64) -> Void)?
        var digester = DigestingCounter()
        init(compressor: any Compressor, progress: (@Sendable (Int64) -> Void)?) {
            self.compressor = compressor
            self.progress = progress
        }
        func consume(_ chunk: [UInt8]) throws {
            chunk.withUnsafeBytes { digester.update($0) }
            try compressor.add(chunk)
            progress?(digester.count)
        }
    }

    private struct InodeKey: Hashable {
        let dev: UInt64
        let ino: UInt64
    }

    private struct Walker {
        let tar: TarWriter
        let options: LayerWriteOptions
        let prefix: String
        var entries = 0
        var seenInodes: [InodeKey: String] = [:]

        init(tar: TarWriter, options: LayerWriteOptions) {
            self.tar = tar
            self.options = options
            let trimmed = options.prefix.split(separator: "/").joined(separator: "/")
            self.prefix = trimmed.isEmpty ? "" : trimmed + "/"
        }

        func header(_ name: String, _ type: TarEntryType, mode: UInt32, _ st: stat? = nil) -> TarHeader {
            var uid = options.uid
            var gid = options.gid
            if let owner = options.owner, let st { (uid, gid) = owner(name, Int(st.st_uid), Int(st.st_gid)) }
            return TarHeader(name: name, type: type, mode: mode, uid: uid, gid: gid, mtime: options.mtime)
        }

        mutating func emitPrefix() throws {
            var path = ""
            for component in prefix.split(separator: "/") {
                path += (path.isEmpty ? "" : "/") + component
                try tar.writeHeader(header(path, .directory, mode: 0o755))
                entries += 1
            }
        }

        mutating func walk(directory: String, relative: String, inner: String) throws {
            for name in try Self.sortedNames(directory) {
                let path = directory + "/" + name
                let rel = relative + name
                if let include = options.include, !include.contains(inner + name) { continue }
                var st = stat()
                guard lstat(path, &st) == 0 else { throw OCIError.io(operation: "stat", path: path, errno: errno) }
                let mode = UInt32(st.st_mode) & 0o7777
                if options.overlayUpper && (st.st_mode & S_IFMT) == S_IFCHR && st.st_rdev == 0 {
                    // An overlay whiteout: the lower entry of this name is deleted.
                    try tar.writeHeader(header(relative + ".wh." + name, .regular, mode: 0o644, st))
                    entries += 1
                    continue
                }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    try tar.writeHeader(header(rel, .directory, mode: mode, st))
                    entries += 1
                    if options.overlayUpper && Self.isOpaque(path) {
                        // Opaque: nothing of the lower directory shows through; sorts before its entries.
                        try tar.writeHeader(header(rel + "/.wh..wh..opq", .regular, mode: 0o644, st))
                        entries += 1
                    }
                    try walk(directory: path, relative: rel + "/", inner: inner + name + "/")
                case S_IFREG:
                    let key = InodeKey(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
                    if st.st_nlink > 1, let first = seenInodes[key] {
                        var h = header(rel, .hardLink, mode: mode, st)
                        h.linkName = first
                        try tar.writeHeader(h)
                    } else {
                        if st.st_nlink > 1 { seenInodes[key] = rel }
                        var h = header(rel, .regular, mode: mode, st)
                        h.size = Int64(st.st_size)
                        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                        guard fd >= 0 else { throw OCIError.io(operation: "open", path: path, errno: errno) }
                        defer { close(fd) }
                        try tar.writeFile(h, fd: fd, path: path)
                    }
                    entries += 1
                case S_IFLNK:
                    var h = header(rel, .symlink, mode: 0o777, st)
                    h.linkName = try Self.readLink(path)
                    try tar.writeHeader(h)
                    entries += 1
                case S_IFIFO:
                    try tar.writeHeader(header(rel, .fifo, mode: mode, st))
                    entries += 1
                case S_IFCHR, S_IFBLK:
                    var h = header(rel, (st.st_mode & S_IFMT) == S_IFCHR ? .characterDevice : .blockDevice, mode: mode, st)
                    h.devMajor = Int(cairn_dev_major(UInt64(st.st_rdev)))
                    h.devMinor = Int(cairn_dev_minor(UInt64(st.st_rdev)))
                    try tar.writeHeader(h)
                    entries += 1
                default:
                    // Sockets cannot be archived (GNU tar skips them too).
                    continue
                }
            }
        }

        /// Whether an overlay upper directory is opaque.
        static func isOpaque(_ path: String) -> Bool { cairn_overlay_opaque(path) == 1 }

        static func readLink(_ path: String) throws -> String {
            guard let s = String(validating: try FS.readLink(path), as: UTF8.self) else { throw OCIError.tar(.nameNotUTF8(path: path)) }
            return s
        }

        /// Directory entries in byte order of their names (the order is part of the layer digest).
        static func sortedNames(_ directory: String) throws -> [String] {
            var names = try FS.entryNames(directory)
            names.sort { $0.lexicographicallyPrecedes($1) }
            return try names.map { bytes in
                guard let s = String(validating: bytes, as: UTF8.self) else {
                    throw OCIError.tar(.nameNotUTF8(path: directory + "/" + String(decoding: bytes, as: UTF8.self)))
                }
                return s
            }
        }
    }
}

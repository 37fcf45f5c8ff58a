import CCairn
#if canImport(Glibc)
import Glibc
#endif

/// How a layer is applied.
public struct ExtractOptions: Sendable {
    /// Set owners from the tar headers (only possible, and only done by default, as root).
    public var applyOwners: Bool = geteuid() == 0
    public init() {}
}

/// What applying a layer did.
public struct ExtractStats: Hashable, Sendable {
    public var entries = 0
    public var bytes: Int64 = 0
    public var whiteouts = 0
    /// Device nodes that could not be created without root.
    public var skippedDevices = 0
}

/// Applies layers to a directory, with the OCI whiteout rules (layer.md): `.wh.NAME` removes
/// NAME from lower layers, `.wh..wh..opq` hides all lower-layer children of its directory.
///
/// Every entry is confined to the target: names are read from the target's root (a leading `/`
/// or `./` is dropped), names that contain `..` are refused,
/// and so is any entry whose path would pass through a symlink pointing outside the target (an
/// absolute link, or one climbing above the root). Symlinks that stay inside (`lib -> usr/lib`)
/// are followed as parents. An existing symlink at an entry's own path is replaced, never
/// written through. https://github.com/opencontainers/image-spec/blob/main/layer.md
public enum LayerExtractor {
    static let whiteoutPrefix = ".wh."
    static let opaqueWhiteout = ".wh..wh..opq"

    /// Applies the (possibly compressed) layer blob at `blobPath` to `root`.
    /// - Throws: `OCIError.unsafeEntry` naming the layer and entry, `OCIError.tar`, `OCIError.io`.
    @discardableResult
    public static func apply(blobPath: String, to root: String, layerName: String,
                             options: ExtractOptions = ExtractOptions()) throws -> ExtractStats {
        try apply(TarReader(layerBlob: blobPath, what: layerName), to: root, layerName: layerName, options: options)
    }

    /// Applies the entries of `reader` to `root`.
    /// - Throws: `OCIError.unsafeEntry` naming the layer and entry, `OCIError.unreadableLayer`
    ///   (a malformed or truncated tar, naming the layer), `OCIError.io`.
    @discardableResult
    public static func apply(_ reader: TarReader, to root: String, layerName: String,
                             options: ExtractOptions = ExtractOptions()) throws -> ExtractStats {
        var st = stat()
        guard stat(root, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { throw OCIError.notADirectory(root) }
        var applier = Applier(root: root, layer: layerName, options: options)
        do {
            while let header = try reader.next() {
                try applier.apply(header, reader: reader)
            }
        } catch OCIError.tar(let e) {
            throw OCIError.unreadableLayer(layer: layerName, cause: e)
        }
        try applier.finishDirectories()
        return applier.stats
    }

    private struct PendingDirectory {
        let path: String
        let header: TarHeader
    }

    private struct Applier {
        let root: String
        let layer: String
        let options: ExtractOptions
        var stats = ExtractStats()
        /// Paths (relative, resolved) this layer created or wrote: kept by an opaque whiteout.
        var written: Set<String> = []
        var directories: [PendingDirectory] = []

        init(root: String, layer: String, options: ExtractOptions) {
            self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
            self.layer = layer
            self.options = options
        }

        func refuse(_ entry: String, _ reason: String) -> OCIError {
            .unsafeEntry(layer: layer, entry: entry, reason: reason)
        }

        /// Validated components of an entry name.
        /// `what` says whose path it is in the error ("path" or "hard link target").
        func components(_ name: String, entry: String? = nil, what: String = "path") throws -> [String] {
            let entry = entry ?? name
            var n = Substring(name)
            // A leading `/` names a path from the root, as containerd, umoci and Docker read it:
            // the reference lifecycle writes its layers that way (`/layers/...`).
            while n.hasPrefix("./") || n.hasPrefix("/") { n = n.dropFirst(n.hasPrefix("/") ? 1 : 2) }
            var parts: [String] = []
            for c in n.split(separator: "/", omittingEmptySubsequences: true) {
                if c == "." { continue }
                if c == ".." { throw refuse(entry, "\(what) \"\(name)\" contains \"..\"") }
                parts.append(String(c))
            }
            return parts
        }

        func hostPath(_ rel: [String]) -> String {
            rel.isEmpty ? root : root + "/" + rel.joined(separator: "/")
        }

        /// Resolves `parents` inside the root, creating missing directories and following
        /// symlinks that stay inside. Returns the resolved relative components.
        func resolveDirectory(_ parents: [String], entry: String, create: Bool) throws -> [String]? {
            var resolved: [String] = []
            var queue = parents[...]
            var hops = 0
            while let c = queue.first {
                queue = queue.dropFirst()
                if c == "." || c.isEmpty { continue }
                if c == ".." {
                    if resolved.isEmpty { throw refuse(entry, "its path leads outside the target through a symlink") }
                    resolved.removeLast()
                    continue
                }
                let path = hostPath(resolved + [c])
                var st = stat()
                if lstat(path, &st) != 0 {
                    guard errno == ENOENT else { throw OCIError.io(operation: "stat", path: path, errno: errno) }
                    guard create else { return nil }
                    if mkdir(path, 0o755) != 0 && errno != EEXIST {
                        throw OCIError.io(operation: "create directory", path: path, errno: errno)
                    }
                    resolved.append(c)
                    continue
                }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    resolved.append(c)
                case S_IFLNK:
                    hops += 1
                    if hops > 40 { throw refuse(entry, "too many levels of symlinks") }
                    let target = String(decoding: try FS.readLink(path), as: UTF8.self)
                    if target.hasPrefix("/") {
                        throw refuse(entry, "its parent \"\((resolved + [c]).joined(separator: "/"))\" is a symlink to \"\(target)\", outside the target")
                    }
                    let targetParts = target.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
                    queue = (targetParts + queue)[...]
                default:
                    throw refuse(entry, "its parent \"\((resolved + [c]).joined(separator: "/"))\" is not a directory")
                }
            }
            return resolved
        }

        mutating func apply(_ header: TarHeader, reader: TarReader) throws {
            let parts = try components(header.name)
            stats.entries += 1
            guard let base = parts.last else {
                // The root itself ("./"): take its attributes.
                if header.type == .directory { directories.append(PendingDirectory(path: root, header: header)) }
                return
            }
            let isWhiteout = base.hasPrefix(LayerExtractor.whiteoutPrefix)
            if isWhiteout { stats.whiteouts += 1 }
            guard let parent = try resolveDirectory(Array(parts.dropLast()), entry: header.name, create: !isWhiteout) else {
                return  // a whiteout under a directory that does not exist: nothing to hide
            }
            if base == LayerExtractor.opaqueWhiteout {
                try removeChildren(of: parent, keeping: written)
                return
            }
            if isWhiteout {
                let victim = String(base.dropFirst(LayerExtractor.whiteoutPrefix.count))
                guard !victim.isEmpty, victim != ".", victim != ".." else { throw refuse(header.name, "invalid whiteout") }
                try removeTree(hostPath(parent + [victim]))
                return
            }
            let rel = parent + [base]
            let path = hostPath(rel)
            written.insert(rel.joined(separator: "/"))
            switch header.type {
            case .directory: try writeDirectory(path, header)
            case .regular: try writeFile(path, header, reader: reader)
            case .symlink:
                try removeExisting(path)
                try check(symlink(header.linkName, path), "create symlink", path)
                if options.applyOwners { try check(lchown(path, uid_t(header.uid), gid_t(header.gid)), "chown", path) }
                setTimes(path, header.mtime)
            case .hardLink: try writeHardLink(path, header)
            case .fifo, .characterDevice, .blockDevice: try writeNode(path, header)
            case .other(let flag):
                throw OCIError.tar(.unsupportedEntry(entry: header.name, kind: "entry of type '\(Character(Unicode.Scalar(flag)))'"))
            }
        }

        mutating func writeDirectory(_ path: String, _ header: TarHeader) throws {
            var st = stat()
            if lstat(path, &st) == 0 {
                if (st.st_mode & S_IFMT) != S_IFDIR {
                    try removeTree(path)
                    try makeDirectory(path)
                }
            } else {
                try makeDirectory(path)
            }
            directories.append(PendingDirectory(path: path, header: header))
        }

        mutating func writeFile(_ path: String, _ header: TarHeader, reader: TarReader) throws {
            try removeExisting(path)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw OCIError.io(operation: "create", path: path, errno: errno) }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try reader.readContent(into: $0) }
                if n == 0 { break }
                var off = 0
                while off < n {
                    let w = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + off, n - off) }
                    if w < 0 {
                        if errno == EINTR { continue }
                        throw OCIError.io(operation: "write", path: path, errno: errno)
                    }
                    off += w
                }
                stats.bytes += Int64(n)
            }
            if options.applyOwners { try check(fchown(fd, uid_t(header.uid), gid_t(header.gid)), "chown", path) }
            try check(fchmod(fd, mode_t(header.mode & 0o7777)), "chmod", path)
            var times = [timespec(tv_sec: Int(header.mtime), tv_nsec: 0), timespec(tv_sec: Int(header.mtime), tv_nsec: 0)]
            try check(futimens(fd, &times), "set times on", path)
        }

        /// A hard link whose target must already be in the tree being extracted, never a directory.
        func writeHardLink(_ path: String, _ header: TarHeader) throws {
            let targetParts = try components(header.linkName, entry: header.name, what: "hard link target")
            guard let targetBase = targetParts.last,
                  let targetParent = try resolveDirectory(Array(targetParts.dropLast()), entry: header.name, create: false)
            else { throw refuse(header.name, "hard link target \"\(header.linkName)\" does not exist in the target") }
            let target = hostPath(targetParent + [targetBase])
            var st = stat()
            guard lstat(target, &st) == 0 else {
                throw refuse(header.name, "hard link target \"\(header.linkName)\" does not exist in the target")
            }
            guard (st.st_mode & S_IFMT) != S_IFDIR else { throw refuse(header.name, "hard link to a directory") }
            if target == path { return }
            try removeExisting(path)
            try check(link(target, path), "create hard link", path)
        }

        /// FIFOs always; device nodes only as root (counted as skipped otherwise).
        mutating func writeNode(_ path: String, _ header: TarHeader) throws {
            try removeExisting(path)
            let kind: mode_t = header.type == .fifo ? S_IFIFO : (header.type == .characterDevice ? S_IFCHR : S_IFBLK)
            if header.type != .fifo && geteuid() != 0 {
                stats.skippedDevices += 1
                return
            }
            let dev = dev_t(cairn_dev_makedev(UInt32(header.devMajor), UInt32(header.devMinor)))
            try check(mknod(path, kind | mode_t(header.mode & 0o7777), dev), "create node", path)
            if options.applyOwners { try check(lchown(path, uid_t(header.uid), gid_t(header.gid)), "chown", path) }
            try check(chmod(path, mode_t(header.mode & 0o7777)), "chmod", path)
            setTimes(path, header.mtime)
        }

        func makeDirectory(_ path: String) throws {
            // Owner-writable while extracting; the layer's mode is applied at the end.
            try check(mkdir(path, 0o755), "create directory", path)
        }

        func setTimes(_ path: String, _ mtime: Int64) {
            var times = [timespec(tv_sec: Int(mtime), tv_nsec: 0), timespec(tv_sec: Int(mtime), tv_nsec: 0)]
            _ = utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
        }

        /// Removes whatever is at `path` unless it is a directory (directories are merged).
        func removeExisting(_ path: String) throws {
            var st = stat()
            guard lstat(path, &st) == 0 else { return }
            try removeTree(path)
        }

        func removeChildren(of parent: [String], keeping: Set<String>) throws {
            let dir = hostPath(parent)
            guard let names = try? FS.listDirectory(dir) else { return }
            for name in names where !keeping.contains((parent + [name]).joined(separator: "/")) {
                try removeTree(dir + "/" + name)
            }
        }

        mutating func finishDirectories() throws {
            // Deepest first, so a read-only parent does not block its children's updates.
            for d in directories.reversed() {
                if options.applyOwners {
                    try check(lchown(d.path, uid_t(d.header.uid), gid_t(d.header.gid)), "chown", d.path)
                }
                try check(chmod(d.path, mode_t(d.header.mode & 0o7777)), "chmod", d.path)
                setTimes(d.path, d.header.mtime)
            }
        }
    }

    /// Removes `path` and everything below it, without following symlinks.
    static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            _ = chmod(path, mode_t(st.st_mode & 0o7777) | 0o700)
            for n in (try? FS.listDirectory(path)) ?? [] { try removeTree(path + "/" + n) }
            try check(rmdir(path), "remove", path)
        } else {
            try check(unlink(path), "remove", path)
        }
    }
}

extension TarReader {
    /// Reads the entries of a layer blob, decompressed as its first bytes say (gzip, zstd, none).
    public convenience init(layerBlob path: String, what: String) throws {
        let compression = try DecompressingSource.sniff(path: path)
        self.init(source: try DecompressingSource(try FileSource(path: path), compression: compression, what: what))
    }
}

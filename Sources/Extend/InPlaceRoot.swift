import CairnBasics
import CCairn
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// The root filesystem of the container the extender runs in, changed in place (platform.md: the
/// extender runs in the build or the run environment, as root; the reference does the same with
/// kaniko). What an instruction changed is found by comparing snapshots of the file metadata
/// before and after it. Volumes and kernel file systems are left out: the paths in `excluded`,
/// and anything on another device than the root.
final class InPlaceRoot: ExtendWorkspace {
    let root: String
    let excluded: Set<String>
    private var snapshot: [String: Entry]?

    /// What a snapshot records of an entry: enough to see any change of contents or metadata.
    struct Entry: Equatable {
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        var size: Int64
        var mtime: timespec
        var ctime: timespec
        var inode: UInt64

        static func == (a: Entry, b: Entry) -> Bool {
            a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.size == b.size && a.inode == b.inode
                && a.mtime.tv_sec == b.mtime.tv_sec && a.mtime.tv_nsec == b.mtime.tv_nsec
                && a.ctime.tv_sec == b.ctime.tv_sec && a.ctime.tv_nsec == b.ctime.tv_nsec
        }
    }

    /// `excluded`: absolute paths in the root (`/layers`, `/workspace`, `/cnb`, …) never recorded.
    init(root: String = "/", excluded: [String]) {
        self.root = root == "/" ? "" : root
        self.excluded = Set(excluded.map { $0.split(separator: "/").joined(separator: "/") })
    }

    var lookupRoots: [String] { [root.isEmpty ? "/" : root] }

    func change(_ body: (String) throws(ExtendError) -> Void) throws(ExtendError) -> LayerSource? {
        let before: [String: Entry]
        if let snapshot { before = snapshot } else { before = try take() }
        try body(root.isEmpty ? "/" : root)
        let after = try take()
        snapshot = after
        var changed: [String] = []
        var deleted: [String] = []
        for (path, entry) in after where before[path] != entry { changed.append(path) }
        for path in before.keys where after[path] == nil {
            // A deleted directory's entries go with it: one whiteout for the directory.
            let parent = path.split(separator: "/").dropLast().joined(separator: "/")
            if parent.isEmpty || after[parent] != nil || before[parent] == nil { deleted.append(path) }
        }
        guard !changed.isEmpty || !deleted.isEmpty else { return nil }
        return .changes(root: root.isEmpty ? "/" : root, changed: changed.sorted(), deleted: deleted.sorted())
    }

    /// Runs `command` as `user` directly (the extender is in the image's container already).
    func run(_ command: [String], environment: [String], workingDirectory: String, user: (uid: Int, gid: Int),
             root: String) throws(ExtendError) -> Int32 {
        guard self.root.isEmpty else { throw .environment("RUN in place needs the extender to run in the image's container (root /)") }
        var path = command[0]
        if !path.contains("/") {
            let searchPath = environment.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? "/usr/bin:/bin"
            path = CairnBasics.searchPath(command[0], in: searchPath) ?? command[0]
        }
        let cArgs = command.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var err: Int32 = 0
        var stage: Int32 = 0
        let fds: [Int32] = [0, 1, 2]
        let pid = cArgs.withUnsafeBufferPointer { argv in
            cEnv.withUnsafeBufferPointer { envp in
                cairn_spawn(path, argv.baseAddress, envp.baseAddress, workingDirectory, Int32(user.uid), Int32(user.gid), 0, fds, 3, &err, &stage)
            }
        }
        guard pid > 0 else {
            throw .environment("cannot run \(command.joined(separator: " ")): \(String(cString: strerror(err))) (step \(stage))")
        }
        return cairn_wait(pid)
    }

    /// Metadata of every entry under the root, by path relative to it, excluded paths left out.
    func take() throws(ExtendError) -> [String: Entry] {
        var out: [String: Entry] = [:]
        var rootStat = stat()
        let top = root.isEmpty ? "/" : root
        guard lstat(top, &rootStat) == 0 else { throw .environment("cannot read \(top): \(String(cString: strerror(errno)))") }
        func visit(_ relative: String) {
            let full = root + "/" + relative
            guard let dir = opendir(full.isEmpty ? "/" : full) else { return }
            defer { closedir(dir) }
            while let e = readdir(dir) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name == "." || name == ".." { continue }
                let rel = relative.isEmpty ? name : relative + "/" + name
                if excluded.contains(rel) { continue }
                var st = stat()
                guard lstat(root + "/" + rel, &st) == 0, st.st_dev == rootStat.st_dev else { continue }
                out[rel] = Entry(mode: st.st_mode, uid: st.st_uid, gid: st.st_gid, size: Int64(st.st_size), mtime: st.st_mtim,
                                 ctime: st.st_ctim, inode: UInt64(st.st_ino))
                if (st.st_mode & S_IFMT) == S_IFDIR { visit(rel) }
            }
        }
        visit("")
        return out
    }
}

/// A layer of the entries an instruction changed in place: each changed path with its parent
/// directories (as they are now), `.wh.<name>` for each deleted one; owners as on disk.
struct ChangeLayer {
    let root: String
    let changed: [String]
    let deleted: [String]

    func write(into store: WriteSession, options o: LayerWriteOptions) throws -> LayerResult {
        let base = root == "/" ? "" : root
        var entries: [(name: String, whiteout: Bool)] = changed.map { ($0, false) }
        for d in deleted {
            let parts = d.split(separator: "/")
            entries.append(((parts.dropLast() + [".wh." + parts.last!]).joined(separator: "/"), true))
        }
        var names = Set(entries.map(\.name))
        for (name, _) in entries {
            var parts = name.split(separator: "/").dropLast()
            while !parts.isEmpty {
                let parent = parts.joined(separator: "/")
                if names.insert(parent).inserted { entries.append((parent, false)) }
                parts = parts.dropLast()
            }
        }
        entries.sort { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
        let (result, _, _) = try store.writeBlob { output in
            try LayerWriter.writeStream(options: o, to: output) { tar in
                var links: [UInt64: String] = [:]
                for (name, whiteout) in entries {
                    if whiteout {
                        try tar.writeHeader(TarHeader(name: name, type: .regular, mode: 0o644, mtime: o.mtime))
                        continue
                    }
                    try Self.writeEntry(base + "/" + name, as: name, tar: tar, options: o, links: &links)
                }
                return entries.count
            }
        }
        return result
    }

    static func writeEntry(_ path: String, as name: String, tar: TarWriter, options o: LayerWriteOptions, links: inout [UInt64: String]) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw OCIError.io(operation: "stat", path: path, errno: errno) }
        let mode = UInt32(st.st_mode) & 0o7777
        var h = TarHeader(name: name, type: .regular, mode: mode, uid: Int(st.st_uid), gid: Int(st.st_gid), mtime: o.mtime)
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            h.type = .directory
            try tar.writeHeader(h)
        case S_IFLNK:
            h.type = .symlink
            h.mode = 0o777
            h.linkName = String(decoding: try FS.readLink(path), as: UTF8.self)
            try tar.writeHeader(h)
        case S_IFREG:
            if st.st_nlink > 1, let first = links[UInt64(st.st_ino)] {
                h.type = .hardLink
                h.linkName = first
                try tar.writeHeader(h)
                return
            }
            if st.st_nlink > 1 { links[UInt64(st.st_ino)] = name }
            h.size = Int64(st.st_size)
            let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw OCIError.io(operation: "open", path: path, errno: errno) }
            defer { close(fd) }
            try tar.writeFile(h, fd: fd, path: path)
        case S_IFIFO:
            h.type = .fifo
            try tar.writeHeader(h)
        default:
            return   // devices and sockets made by a RUN are not kept
        }
    }
}

/// Applies extension Dockerfiles to the container the extender runs in (platform.md, extender:
/// `-kind build` in the build environment, `-kind run` in the run environment, as root). With a
/// `store`, each changed instruction's changes are written to it as a layer (the run image's
/// extension layers); without, files are only changed (the build phase follows in the same
/// container).
public struct InPlaceExtender {
    public var root: String
    public var excluded: [String]
    /// Where changes are recorded as layers; nil records none.
    public var store: ImageStore?
    public var layerOptions: LayerWriteOptions
    public var log: (String) -> Void

    public init(root: String = "/", excluded: [String], store: ImageStore?, layerOptions: LayerWriteOptions,
                log: @escaping (String) -> Void) {
        self.root = root
        self.excluded = excluded
        self.store = store
        self.layerOptions = layerOptions
        self.log = log
    }

    /// The applied result: the image config after the Dockerfiles, the new layers (when recorded)
    /// with one history line per instruction, and whether the run image stays rebasable.
    public struct Result: Sendable {
        public var config: ExecutionConfig
        public var layers: [LayerResult]
        public var history: [History]
        public var rebasable: Bool
    }

    public func extend(config: ExecutionConfig, baseName: String, dockerfiles: [ExtensionDockerfile],
                       kind: ExtendKind) throws(ExtendError) -> Result {
        let workspace: any ExtendWorkspace = store == nil ? UnrecordedRoot(root: root) : InPlaceRoot(root: root, excluded: excluded)
        let applied = try DockerfileSequence(workspace: workspace, store: store, layerOptions: layerOptions, log: log)
            .apply(dockerfiles, config: config, baseName: baseName, kind: kind)
        return Result(config: applied.config, layers: applied.layers, history: applied.history, rebasable: applied.rebasable)
    }
}

/// The container's root changed in place without recording layers (`-kind build`).
final class UnrecordedRoot: ExtendWorkspace {
    let inner: InPlaceRoot
    init(root: String) { inner = InPlaceRoot(root: root, excluded: []) }
    var lookupRoots: [String] { inner.lookupRoots }
    func change(_ body: (String) throws(ExtendError) -> Void) throws(ExtendError) -> LayerSource? {
        try body(inner.root.isEmpty ? "/" : inner.root)
        return nil
    }
    func run(_ command: [String], environment: [String], workingDirectory: String, user: (uid: Int, gid: Int),
             root: String) throws(ExtendError) -> Int32 {
        try inner.run(command, environment: environment, workingDirectory: workingDirectory, user: user, root: root)
    }
}

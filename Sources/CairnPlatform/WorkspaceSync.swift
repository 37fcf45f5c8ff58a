import Foundation
import OCI
// Where a release build finds `stat`'s members (MemberImportVisibility), not only Glibc.
import CoreFoundation

#if canImport(Glibc)
import Glibc
#endif

/// The app's workspace kept between builds of one image name (issue 42), made equal to the app
/// directory each build by copying only what changed. Copying a 250 MB app afresh took 3.4 s on
/// every build, and gave every file a new inode, so the exporter's fingerprint (ctime, inode)
/// never matched and it read the whole app again to find the layer unchanged.
///
/// A file is kept when both sides are as the last sync left them: the app's file has the same
/// type, mode, size, mtime, ctime and inode, and the workspace's the same inode and ctime (any
/// write, chmod or chown by a buildpack changes its ctime, which no process can set back). Else
/// it is copied again (a new file, then renamed into place). What is in the workspace and not in
/// the app (a buildpack's output of the last build) is removed. The record is written last,
/// atomically: after a crash, whatever the interrupted sync changed no longer matches it and is
/// copied again. The result is what `cp -a` then `chown -R` made: modes, mtimes, symbolic links
/// and hard links within the app kept, the CNB user owning everything when run as root.
struct WorkspaceSync {
    struct Stamp: Codable, Equatable {
        var mode: UInt32, size: Int64, mtime: Int64, ctime: Int64, inode: UInt64
        init(_ st: stat) {
            mode = st.st_mode
            size = Int64(st.st_size)
            mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
            ctime = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
            inode = UInt64(st.st_ino)
        }
    }

    /// Per path: the app's entry, and the workspace's (its inode and ctime) after the sync.
    struct Record: Codable, Equatable { var app: Stamp, workspace: Stamp }
    struct State: Codable { var version = 1; var app: String; var owner: [UInt32]?; var entries: [String: Record] }

    /// An app entry that is neither a directory, a regular file nor a symbolic link, or a name
    /// that is not UTF-8: the caller copies the app with `cp -a` instead.
    struct Unsupported: Error { var path: String }

    struct Counts { var copied = 0, kept = 0, removed = 0 }

    let app: String
    let workspace: String
    let statePath: String
    /// uid and gid every entry gets (running as root), or nil to keep the copier's.
    let owner: (uid: UInt32, gid: UInt32)?
    /// Paths (relative, `/`-separated) project.toml leaves out, with everything below them.
    let excluded: Set<String>

    func run() throws -> Counts {
        let entries = try scanApp()
        let previous = loadState()
        var counts = Counts()
        try removeUnwanted(entries, counts: &counts)
        var root = stat()
        guard stat(app, &root) == 0 else { throw io("stat", app) }
        try makeEntry("", kind: S_IFDIR, st: root)
        var linked: [UInt64: String] = [:]
        for (rel, st) in entries {
            let kind = st.st_mode & S_IFMT
            let target = workspace + "/" + rel
            if kind == S_IFDIR {
                try makeEntry(rel, kind: kind, st: st)
                continue
            }
            if let record = previous?.entries[rel], record.app == Stamp(st), let now = lstatOrNil(target), record.workspace == Stamp(now) {
                counts.kept += 1
                if st.st_nlink > 1 { linked[UInt64(st.st_ino)] = linked[UInt64(st.st_ino)] ?? rel }
                continue
            }
            if lstatOrNil(target) != nil { try remove(target) }
            if kind == S_IFREG, st.st_nlink > 1, let first = linked[UInt64(st.st_ino)] {
                guard link(workspace + "/" + first, target) == 0 else { throw io("link", target) }
            } else {
                try makeEntry(rel, kind: kind, st: st)
                if st.st_nlink > 1 { linked[UInt64(st.st_ino)] = rel }
            }
            counts.copied += 1
        }
        try saveState(entries)
        return counts
    }

    /// The app's entries below its root, parents before children, project.toml's exclusions
    /// left out.
    func scanApp() throws -> [(String, stat)] {
        var out: [(String, stat)] = []
        func walk(_ rel: String) throws {
            let dir = rel.isEmpty ? app : app + "/" + rel
            for raw in try FS.entryNames(dir).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                guard let name = String(validating: raw, as: UTF8.self) else { throw Unsupported(path: dir) }
                let child = rel.isEmpty ? name : rel + "/" + name
                if excluded.contains(child) { continue }
                let st = try lstatOrThrow(app + "/" + child)
                let kind = st.st_mode & S_IFMT
                guard kind == S_IFDIR || kind == S_IFREG || kind == S_IFLNK else { throw Unsupported(path: app + "/" + child) }
                out.append((child, st))
                if kind == S_IFDIR { try walk(child) }
            }
        }
        try walk("")
        return out
    }

    /// Removes what the workspace has and the app does not (or has as another kind of entry).
    func removeUnwanted(_ entries: [(String, stat)], counts: inout Counts) throws {
        var wanted: [String: mode_t] = [:]
        for (rel, st) in entries { wanted[rel] = st.st_mode & S_IFMT }
        func walk(_ rel: String) throws {
            let dir = rel.isEmpty ? workspace : workspace + "/" + rel
            for raw in try FS.entryNames(dir) {
                let name = String(decoding: raw, as: UTF8.self)
                let child = rel.isEmpty ? name : rel + "/" + name
                let path = workspace + "/" + child
                guard let st = lstatOrNil(path) else { continue }
                if String(validating: raw, as: UTF8.self) == nil || wanted[child] != st.st_mode & S_IFMT {
                    try remove(path)
                    counts.removed += 1
                } else if st.st_mode & S_IFMT == S_IFDIR {
                    try walk(child)
                }
            }
        }
        if lstatOrNil(workspace).map({ $0.st_mode & S_IFMT != S_IFDIR }) ?? false { try remove(workspace) }
        if lstatOrNil(workspace) == nil { try FS.makeDirectories(workspace) }
        try walk("")
    }

    /// Creates (or, for a directory, updates) the workspace's entry for `rel` like the app's.
    func makeEntry(_ rel: String, kind: mode_t, st: stat) throws {
        let source = rel.isEmpty ? app : app + "/" + rel
        let target = rel.isEmpty ? workspace : workspace + "/" + rel
        let permissions = st.st_mode & 0o7777
        switch kind {
        case S_IFDIR:
            if lstatOrNil(target) == nil { guard mkdir(target, 0o700) == 0 else { throw io("mkdir", target) } }
            try setOwner(target)
            if let now = lstatOrNil(target), now.st_mode & 0o7777 != permissions { guard chmod(target, permissions) == 0 else { throw io("chmod", target) } }
        case S_IFLNK:
            let destination = try FS.readLink(source) + [0]
            guard destination.withUnsafeBufferPointer({ symlink(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), target) }) == 0 else {
                throw io("symlink", target)
            }
            try setOwner(target)
        default:
            try copyFile(source, to: target, st: st)
        }
    }

    /// A new file at `target` with `source`'s bytes, mode and times; owner set before the mode
    /// (chown clears set-user-ID bits).
    func copyFile(_ source: String, to target: String, st: stat) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw io("open", source) }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw io("create", target) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: max(1, min(Int(st.st_size) + 1, 1 << 20)))
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw io("read", source) }
            if n == 0 { break }
            var written = 0
            while written < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, n - written) }
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else { throw io("write", target) }
                written += w
            }
        }
        if let owner { guard fchown(output, owner.uid, owner.gid) == 0 else { throw io("chown", target) } }
        guard fchmod(output, st.st_mode & 0o7777) == 0 else { throw io("chmod", target) }
        var times = [st.st_mtim, st.st_mtim]  // access time as the modification time
        guard futimens(output, &times) == 0 else { throw io("set the times of", target) }
    }

    func setOwner(_ path: String) throws {
        guard let owner, let st = lstatOrNil(path), st.st_uid != owner.uid || st.st_gid != owner.gid else { return }
        guard lchown(path, owner.uid, owner.gid) == 0 else { throw io("chown", path) }
    }

    func remove(_ path: String) throws {
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw PlatformError.invalidFile(path: path, reason: "cannot be removed from the workspace", cause: error)
        }
    }

    func loadState() -> State? {
        guard let data = FileManager.default.contents(atPath: statePath),
              let state = try? JSONDecoder().decode(State.self, from: data),
              state.version == 1, state.app == app, state.owner == owner.map({ [$0.uid, $0.gid] }) else { return nil }
        return state
    }

    func saveState(_ entries: [(String, stat)]) throws {
        var records: [String: Record] = [:]
        for (rel, st) in entries where st.st_mode & S_IFMT != S_IFDIR {
            if let now = lstatOrNil(workspace + "/" + rel) { records[rel] = Record(app: Stamp(st), workspace: Stamp(now)) }
        }
        let state = State(app: app, owner: owner.map { [$0.uid, $0.gid] }, entries: records)
        let dir = (statePath as NSString).deletingLastPathComponent
        try FS.writeAtomically(try JSONEncoder().encode(state), to: statePath, tempDirectory: dir, syncDirectory: false)
    }

    func lstatOrNil(_ path: String) -> stat? {
        var st = stat()
        return lstat(path, &st) == 0 ? st : nil
    }

    func lstatOrThrow(_ path: String) throws -> stat {
        guard let st = lstatOrNil(path) else { throw io("stat", path) }
        return st
    }

    func io(_ operation: String, _ path: String) -> any Error {
        PlatformError.invalidFile(path: path, reason: "cannot \(operation) it while syncing the workspace: \(String(cString: strerror(errno)))")
    }
}

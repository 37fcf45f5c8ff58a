import CCairn
import FoundationEssentials
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// Small filesystem helpers with errors that name the path.
public enum FS {
    /// `st_mode` of `path` itself (lstat: a symbolic link is not followed); nil when it does not exist.
    public static func mode(_ path: String) -> UInt32? {
        var st = stat()
        return lstat(path, &st) == 0 ? UInt32(st.st_mode) : nil
    }

    public static func exists(_ path: String) -> Bool { mode(path) != nil }

    /// Makes `path` (a directory) a parent of short-lived trees: its subdirectories are spread
    /// over the file system's block groups (ext4's "top of hierarchy" attribute, chattr +T).
    /// Why: on ext4 without a journal, creating a file skips every inode of its block group
    /// deleted in the last minutes, one lookup each; build work directories, which are made and
    /// removed by the thousand files, then slowed every later build that placed its files in the
    /// same group (a warm flask-hello build's restore: 1.6-1.7 s, 0.27 s spread). Best effort: a
    /// file system without the attribute, or a directory not ours, is left as it is.
    public static func spreadSubdirectories(_ path: String) {
        _ = cairn_set_topdir(path)
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The raw names in a directory, without `.` and `..`, in no particular order.
    public static func entryNames(_ path: String) throws -> [[UInt8]] {
        guard let dir = opendir(path) else { throw OCIError.io(operation: "list", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix(while: { $0 != 0 })) }
            if name != [0x2e] && name != [0x2e, 0x2e] { names.append(name) }
        }
        return names
    }

    /// A symlink's target as raw bytes.
    public static func readLink(_ path: String) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buf, buf.count - 1)
        guard n >= 0 else { throw OCIError.io(operation: "readlink", path: path, errno: errno) }
        return Array(buf[..<n])
    }

    /// The names in a directory as strings (lossy for names that are not UTF-8).
    public static func listDirectory(_ path: String) throws -> [String] {
        try entryNames(path).map { String(decoding: $0, as: UTF8.self) }
    }

    public static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for c in path.split(separator: "/") {
            current += "/" + c
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw OCIError.io(operation: "create directory", path: current, errno: errno)
            }
        }
    }

    public static func read(_ path: String) throws -> Data {
        try readAll(try FileSource(path: path))
    }

    /// Every byte `src` gives.
    public static func readAll(_ src: any ByteSource) throws -> Data {
        var out = Data()
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try buf.withUnsafeMutableBytes { try src.read(into: $0) }
            if n == 0 { break }
            out.append(contentsOf: buf[..<n])
        }
        return out
    }

    public static func fsyncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }

    /// Writes `data` to `path` atomically: a temp file in `tempDirectory` (same filesystem),
    /// fsynced, renamed over `path`, and the directory fsynced.
    /// With `durable: false` nothing is fsynced: still atomic for readers, not across a crash.
    public static func writeAtomically(_ data: Data, to path: String, tempDirectory: String, syncDirectory: Bool = true, durable: Bool = true) throws {
        let temp = try TempFile(directory: tempDirectory, durable: durable)
        let out = HashingFileOutput(fd: temp.fd, path: temp.path)
        try data.withUnsafeBytes { try out.write($0) }
        try temp.commit(to: path, syncDirectory: syncDirectory)
    }
}

/// A temp file that is removed unless committed by rename.
final class TempFile {
    let path: String
    let fd: Int32
    /// false: `commit` renames without fsyncing the file or the directory (a scratch store).
    let durable: Bool
    private var committed = false

    init(directory: String, durable: Bool = true) throws {
        self.durable = durable
        var template = Array((directory + "/tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw OCIError.io(operation: "create a temp file in", path: directory, errno: errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        self.fd = fd
        self.path = String(cString: template)
    }

    /// fsyncs, renames into place, fsyncs the destination directory (unless the caller does,
    /// once for several files).
    func commit(to destination: String, syncDirectory: Bool = true, synced: Bool = false) throws {
        if !synced && durable { try check(fsync(fd), "sync", path) }
        try check(fchmod(fd, 0o644), "chmod", path)
        try check(rename(path, destination), "rename into place", destination)
        committed = true
        guard syncDirectory && durable else { return }
        let dir = destination.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        FS.fsyncDirectory(dir.isEmpty ? "/" : dir)
    }

    deinit {
        close(fd)
        if !committed { unlink(path) }
    }
}

/// An advisory lock on a file, shared or exclusive, released on scope exit: `flock` excludes
/// other processes, a reader-writer lock the other threads of this one (threads share the
/// descriptor, and flock does not exclude holders of one descriptor from each other). The shared
/// flock is taken by the first thread in and released by the last one out.
public final class FileLock: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let threads = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    private let counter = Lock()
    /// Threads of this process inside a shared `withLock`.
    private var sharedHolders = 0

    public init(path: String) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OCIError.io(operation: "open lock file", path: path, errno: errno) }
        self.fd = fd
        self.path = path
        pthread_rwlock_init(threads, nil)
    }

    deinit {
        pthread_rwlock_destroy(threads)
        threads.deallocate()
        close(fd)
    }

    /// The flock alone, for a holder that owns this FileLock by itself (a `WriteSession`).
    func lock(exclusive: Bool) throws {
        while flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0 {
            if errno != EINTR { throw OCIError.io(operation: "lock", path: path, errno: errno) }
        }
    }

    func unlock() { flock(fd, LOCK_UN) }

    /// Runs `body` holding the lock. Not reentrant for `exclusive`.
    public func withLock<T>(exclusive: Bool, _ body: () throws -> T) throws -> T {
        if exclusive {
            pthread_rwlock_wrlock(threads)
            defer { pthread_rwlock_unlock(threads) }
            try lock(exclusive: true)
            defer { unlock() }
            return try body()
        }
        pthread_rwlock_rdlock(threads)
        defer { pthread_rwlock_unlock(threads) }
        try counter.withLock {
            if sharedHolders == 0 { try lock(exclusive: false) }
            sharedHolders += 1
        }
        defer {
            counter.withLock {
                sharedHolders -= 1
                if sharedHolders == 0 { unlock() }
            }
        }
        return try body()
    }
}

import CCairn
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A process to start: what, with which environment, where, as whom.
public struct ProcessSpec: Sendable {
    public var path: String
    public var arguments: [String]
    public var environment: [String: String]
    public var workingDirectory: String
    /// uid/gid to drop to (only when the lifecycle runs as root).
    public var user: (uid: Int, gid: Int)?

    public init(path: String, arguments: [String] = [], environment: [String: String], workingDirectory: String,
                user: (uid: Int, gid: Int)? = nil) {
        self.path = path
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.user = user
    }
}

/// Runs processes. A non-zero exit is a result, not an error; only failing to start throws.
public enum ProcessRunner {
    /// Runs to completion with stdout and stderr captured together (interleaved as written).
    /// Blocking work happens on its own thread, so many can run at once.
    public static func capture(_ spec: ProcessSpec) async throws -> (status: Int32, output: String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try captureBlocking(spec) })
            }
        }
    }

    /// Runs to completion, its output going to this process's stdout/stderr.
    public static func runInheriting(_ spec: ProcessSpec) throws -> Int32 {
        let pid = try spawn(spec, fds: [-1, 1, 2])
        return cairn_wait(pid)
    }

    static func captureBlocking(_ spec: ProcessSpec) throws -> (status: Int32, output: String) {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else {
            throw LifecycleError.io(operation: "create a pipe for", path: spec.path, reason: String(cString: strerror(errno)))
        }
        // Our ends must not leak into other children spawned concurrently.
        _ = fcntl(pipeFDs[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeFDs[1], F_SETFD, FD_CLOEXEC)
        let pid: Int32
        do {
            pid = try spawn(spec, fds: [-1, pipeFDs[1], pipeFDs[1]])
        } catch {
            close(pipeFDs[0])
            close(pipeFDs[1])
            throw error
        }
        close(pipeFDs[1])
        var output = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(pipeFDs[0], &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output.append(contentsOf: buffer[..<n])
        }
        close(pipeFDs[0])
        return (cairn_wait(pid), String(decoding: output, as: UTF8.self))
    }

    static func spawn(_ spec: ProcessSpec, fds: [Int32]) throws -> Int32 {
        let argv = [spec.path] + spec.arguments
        let envp = spec.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var err: Int32 = 0
        var stage: Int32 = 0
        let pid = withCStrings(argv) { cArgv in
            withCStrings(envp) { cEnvp in
                fds.withUnsafeBufferPointer { fdp in
                    cairn_spawn(spec.path, cArgv, cEnvp, spec.workingDirectory, Int32(spec.user?.uid ?? -1),
                                Int32(spec.user?.gid ?? -1), fdp.baseAddress, Int32(fds.count), &err, &stage)
                }
            }
        }
        if pid < 0 {
            let step = [1: "changing to directory \(spec.workingDirectory)", 2: "setting group \(spec.user?.gid ?? -1)",
                        3: "setting user \(spec.user?.uid ?? -1)", 4: "exec", 5: "fork", 6: "redirecting output"][Int(stage)] ?? "start"
            throw LifecycleError.cannotExecute(path: spec.path, step: step, reason: String(cString: strerror(err)))
        }
        return pid
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// A new private temp directory, owned by `user` when given (buildpacks write into it).
/// - Throws: `LifecycleError.io`.
func makeTempDirectory(prefix: String, user: (uid: Int, gid: Int)?) throws -> String {
    var base = NSTemporaryDirectory()
    while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
    var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
    guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw LifecycleError.io(operation: "create a temp directory in", path: base, reason: String(cString: strerror(errno)))
    }
    let path = String(cString: dir)
    if let user { _ = chown(path, uid_t(user.uid), gid_t(user.gid)) }
    return path
}

/// Creates `path` (and its parents) and gives it to `user` (the CNB user) when set.
func makeOwnedDirectory(_ path: String, user: (uid: Int, gid: Int)?) throws(LifecycleError) {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw LifecycleError.io(operation: "create", path: path, reason: "\(error)")
    }
    if let user { _ = chown(path, uid_t(user.uid), gid_t(user.gid)) }
}

/// As the reference lifecycle's `priv.EnsureOwner`: when running as root, gives `paths` and
/// everything under them to the build image user, so that the next phase — often a separate
/// container running as that user (Tekton, kpack) — can read and write the shared volumes.
/// Entries already owned by the user are left alone (a stat each, no write).
public func ensureOwner(uid: Int, gid: Int, paths: [String]) throws(LifecycleError) {
    guard geteuid() == 0 else { return }
    for root in paths where FileManager.default.fileExists(atPath: root) {
        var failure: (String, Int32)?
        func own(_ path: String) {
            var st = stat()
            guard lstat(path, &st) == 0 else { return }
            if Int(st.st_uid) != uid || Int(st.st_gid) != gid, lchown(path, uid_t(uid), gid_t(gid)) != 0, failure == nil {
                failure = (path, errno)
            }
        }
        own(root)
        if let walker = FileManager.default.enumerator(atPath: root) {
            while let relative = walker.nextObject() as? String { own(root + "/" + relative) }
        }
        if let (path, code) = failure {
            throw .io(operation: "give to \(uid):\(gid)", path: path, reason: String(cString: strerror(code)))
        }
    }
}

import FoundationEssentials
import OCI
import Processes

#if canImport(Glibc)
import Glibc
#endif

extension ChildProcess {
    /// Runs a buildpack's or extension's executable; failing to start it is a lifecycle error
    /// that carries the cause.
    static func runModule(_ spec: ProcessSpec, output: OutputMode = .inherit) async throws(LifecycleError) -> ProcessResult {
        do {
            return try await runDetached(spec, output: output)
        } catch let error as ProcessError {
            throw .cannotExecute(error)
        } catch {
            throw .cannotExecute(.cannotStart(path: spec.path, step: "start", reason: "\(error)"))
        }
    }

    static func runModule(_ spec: ProcessSpec) throws(LifecycleError) -> ProcessResult {
        do {
            return try run(spec)
        } catch let error as ProcessError {
            throw .cannotExecute(error)
        } catch {
            throw .cannotExecute(.cannotStart(path: spec.path, step: "start", reason: "\(error)"))
        }
    }
}

/// A new private temp directory, owned by `user` when given (buildpacks write into it).
/// - Throws: `LifecycleError.io`.
func makeTempDirectory(prefix: String, user: (uid: Int, gid: Int)?) throws -> String {
    // NSTemporaryDirectory's rule: TMPDIR, else /tmp.
    var base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
    var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
    guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw LifecycleError.io(operation: "create a temp directory in", path: base, reason: String(cString: strerror(errno)))
    }
    let path = String(cString: dir)
    try giveTo(user, path)
    return path
}

/// Creates `path` (and its parents) and gives it to `user` (the CNB user) when set.
func makeOwnedDirectory(_ path: String, user: (uid: Int, gid: Int)?) throws(LifecycleError) {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw LifecycleError.io(operation: "create", path: path, reason: "\(error)")
    }
    try giveTo(user, path)
}

/// Gives `path` to `user` (the CNB user, who writes there next) when set; a failure is an error
/// naming the path rather than a permission error in a buildpack later.
func giveTo(_ user: (uid: Int, gid: Int)?, _ path: String) throws(LifecycleError) {
    guard let user else { return }
    guard chown(path, uid_t(user.uid), gid_t(user.gid)) == 0 else {
        throw .io(operation: "give to \(user.uid):\(user.gid)", path: path, reason: String(cString: strerror(errno)))
    }
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
        // Depth first, not following symbolic links (lstat): a link is owned, not what it names.
        var pending = [root]
        while let path = pending.popLast() {
            own(path)
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, let names = try? FS.entryNames(path) else { continue }
            pending += names.map { path + "/" + String(decoding: $0, as: UTF8.self) }
        }
        if let (path, code) = failure {
            throw .io(operation: "give to \(uid):\(gid)", path: path, reason: String(cString: strerror(code)))
        }
    }
}

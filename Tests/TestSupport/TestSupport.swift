import Foundation
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// The package's root directory (found from this file's path, so fixtures keep their modes).
public let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// Where fixtures live.
public let fixturesRoot = packageRoot + "/Tests/Fixtures"

/// The built `cairn` executable (`CAIRN_BIN` overrides).
public let cairnBinary: String = {
    if let p = ProcessInfo.processInfo.environment["CAIRN_BIN"] { return p }
    return packageRoot + "/.build/debug/cairn"
}()

/// A process's outcome.
public struct RunResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var stdoutData: Data
}

/// Runs a program to completion, draining both pipes while it runs.
public func run(_ arguments: [String], cwd: String? = nil, environment: [String: String]? = nil,
                stdin: Data? = nil) throws -> RunResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try which(arguments[0]))
    process.arguments = Array(arguments.dropFirst())
    if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe(), input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = stdin == nil ? FileHandle.nullDevice : input
    try process.run()
    let outBox = DataBox(), errBox = DataBox()
    let group = DispatchGroup()
    for (pipe, box) in [(out, outBox), (err, errBox)] {
        group.enter()
        Thread.detachNewThread {
            box.data = pipe.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
    }
    if let stdin {
        input.fileHandleForWriting.write(stdin)
        try input.fileHandleForWriting.close()
    }
    process.waitUntilExit()
    group.wait()
    return RunResult(status: process.terminationStatus, stdout: String(decoding: outBox.data, as: UTF8.self),
                     stderr: String(decoding: errBox.data, as: UTF8.self), stdoutData: outBox.data)
}

private final class DataBox: @unchecked Sendable {
    var data = Data()
}

/// Runs a shell command line with bash.
public func sh(_ script: String, cwd: String? = nil) throws -> RunResult {
    try run(["/bin/bash", "-c", script], cwd: cwd)
}

/// The full path of a program on PATH.
public func which(_ name: String) throws -> String {
    if name.contains("/") { return name }
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(dir)/\(name)"
        if access(p, X_OK) == 0 { return p }
    }
    throw TestSupportError("\(name) is not installed (run scripts/deps)")
}

/// Whether a program is on PATH (for `.enabled(if:)` traits).
public func toolAvailable(_ name: String) -> Bool { (try? which(name)) != nil }

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A temporary directory removed when the value is released.
public final class TempDir: @unchecked Sendable {
    public let path: String

    public init(_ label: String = "cairn-test") {
        var base = NSTemporaryDirectory()
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        var template = Array("\(base)/\(label)-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(cString: p!)
    }

    deinit {
        _ = try? sh("chmod -R u+rwx '\(path)' 2>/dev/null; rm -rf '\(path)'")
    }

    public func sub(_ name: String) -> String {
        let p = path + "/" + name
        try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }
}

/// Writes a file, creating parent directories.
public func writeFile(_ path: String, _ contents: String, mode: Int = 0o644) throws {
    let dir = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
    chmod(path, mode_t(mode))
}

/// A small tree with the interesting cases: nested dirs, modes, a symlink, a hard link, an
/// empty file, a long path, a long link target, a non-ASCII name and a file bigger than one tar chunk.
public func makeSampleTree(_ root: String) throws {
    try writeFile(root + "/etc/app.conf", "key = value\n")
    try writeFile(root + "/bin/run", "#!/bin/sh\necho hello\n", mode: 0o755)
    try writeFile(root + "/empty", "")
    try writeFile(root + "/dir with space/ünïcødé.txt", "non-ascii name\n")
    let long = (0..<6).map { "segment-number-\($0)-of-a-rather-long-path" }.joined(separator: "/")
    try writeFile(root + "/" + long + "/file-with-a-long-name-" + String(repeating: "x", count: 120), "deep\n")
    var big = [UInt8](repeating: 0, count: 3_000_000)
    for i in big.indices { big[i] = UInt8(truncatingIfNeeded: (i &* 2_654_435_761) >> 13) }
    try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
    try Data(big).write(to: URL(fileURLWithPath: root + "/data/big.bin"))
    symlink("../etc/app.conf", root + "/bin/conf-link")
    // A link target over 100 bytes: GNU tar writes a 'K' record, PAX a linkpath record.
    symlink("../" + long + "/file-with-a-long-name-" + String(repeating: "x", count: 120), root + "/bin/long-link")
    link(root + "/bin/run", root + "/bin/run-hardlink")
    chmod(root + "/etc", 0o750)
}

/// The static launcher and lifecycle (`scripts/build-static`), which images built in the tests
/// carry: they run inside busybox root filesystems.
public let staticBin = ProcessInfo.processInfo.environment["CAIRN_LIFECYCLE_BIN"] ?? packageRoot + "/.build/static-bin"

public func requireStaticBinaries() throws {
    for name in ["launcher", "lifecycle"] where access(staticBin + "/" + name, X_OK) != 0 {
        throw TestSupportError("\(staticBin)/\(name) is missing: run scripts/build-static (scripts/test does)")
    }
    if let stale = staleStaticBinary { throw TestSupportError(stale) }
}

/// A static binary older than the sources it is built from would test old code: refused, once
/// per test process (CAIRN_LIFECYCLE_BIN points elsewhere on purpose, so it is not checked).
let staleStaticBinary: String? = {
    guard ProcessInfo.processInfo.environment["CAIRN_LIFECYCLE_BIN"] == nil else { return nil }
    func mtime(_ path: String) -> Double {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0 }
        return Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
    }
    let built = min(mtime(staticBin + "/launcher"), mtime(staticBin + "/lifecycle"))
    for module in ["CairnBasics", "CNBCore", "Buildpacks", "OCI", "Phases", "Extend", "Sandbox", "Processes", "lifecycle", "launcher", "CCairn"] {
        let dir = packageRoot + "/Sources/" + module
        for rel in FileManager.default.enumerator(atPath: dir)?.compactMap({ $0 as? String }) ?? [] where mtime(dir + "/" + rel) > built {
            return "\(staticBin) is older than Sources/\(module)/\(rel): run scripts/build-static (scripts/test does)"
        }
    }
    return nil
}()

/// A Cairn home with the `tiny` stack (busybox-static + bash-static) made once per test process
/// by `cairn stack create`; tests copy its store or read it.
public final class TinyStack: @unchecked Sendable {
    public let home: String
    public var store: String { home + "/store" }
    public static let buildImage = "tiny/build:latest"
    public static let runImage = "tiny/run:latest"

    private init() throws {
        removeStaleSharedDirectories(prefix: "cairn-tiny-stack-")
        home = NSTemporaryDirectory() + "cairn-tiny-stack-\(getpid())"
        try? FileManager.default.removeItem(atPath: home)
        let r = try run([cairnBinary, "stack", "create", "tiny", "--packages", "busybox-static,bash-static", "--quiet"],
                        environment: ["CAIRN_HOME": home, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"])
        guard r.status == 0 else { throw TestSupportError("cairn stack create failed: \(r.stderr)") }
    }

    nonisolated(unsafe) private static var instance: TinyStack?
    private static let lock = NSLock()

    public static func shared() throws -> TinyStack {
        lock.lock()
        defer { lock.unlock() }
        if let instance { return instance }
        let made = try TinyStack()
        instance = made
        return made
    }
}

/// Shared fixtures live in `<tmp>/<prefix><pid>` for the test process's lifetime; those of test
/// processes that are gone are removed here (there is no suite-wide teardown to do it).
public func removeStaleSharedDirectories(prefix: String) {
    let tmp = NSTemporaryDirectory()
    for name in (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? [] where name.hasPrefix(prefix) {
        guard let pid = Int32(name.dropFirst(prefix.count)), pid != getpid() else { continue }
        if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(atPath: tmp + "/" + name) }
    }
}

/// A Cairn home with a Debian bookworm stack (`debian/build`, `debian/run`, debootstrap minbase)
/// made once per test process; tests copy its store.
public final class DebianStack: @unchecked Sendable {
    public let home: String
    public var store: String { home + "/store" }

    private init() throws {
        removeStaleSharedDirectories(prefix: "cairn-debian-stack-")
        home = NSTemporaryDirectory() + "cairn-debian-stack-\(getpid())"
        try? FileManager.default.removeItem(atPath: home)
        let r = try run([cairnBinary, "stack", "create", "debian", "--debian", "bookworm", "--quiet"],
                        environment: ["CAIRN_HOME": home, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"])
        guard r.status == 0 else { throw TestSupportError("cairn stack create --debian failed: \(r.stderr)") }
    }

    nonisolated(unsafe) private static var instance: DebianStack?
    private static let lock = NSLock()

    public static func shared() throws -> DebianStack {
        lock.lock()
        defer { lock.unlock() }
        if let instance { return instance }
        let made = try DebianStack()
        instance = made
        return made
    }
}

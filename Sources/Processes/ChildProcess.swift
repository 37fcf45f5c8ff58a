import CCairn
import Dispatch
import FoundationEssentials
import CairnBasics

#if canImport(Glibc)
import Glibc
#endif

/// A process to start: what, with which environment, where, as whom, for how long.
public struct ProcessSpec: Sendable {
    public var path: String
    public var arguments: [String]
    /// The whole environment of the child; nil inherits this process's.
    public var environment: [String: String]?
    /// nil keeps this process's working directory.
    public var workingDirectory: String?
    /// uid/gid to drop to before exec (supplementary groups cleared); needs root.
    public var user: (uid: Int, gid: Int)?
    /// Bytes written to the child's stdin (then closed); nil gives it /dev/null.
    public var input: Data?
    /// The child reads this process's stdin (`cairn run -i`); `input` is then ignored.
    public var inheritInput = false
    /// After this long the child is killed (SIGKILL) and the result says `timedOut`.
    public var timeout: Duration?
    /// The work the child belongs to: cancelling the group kills it.
    public var group: ChildGroup?
    /// At most this many processes of the child's user at once (RLIMIT_NPROC): a fork beyond
    /// it fails with EAGAIN in the child or its descendants. Counts every process of that user.
    public var maxProcesses: Int?

    public init(path: String, arguments: [String] = [], environment: [String: String]? = nil,
                workingDirectory: String? = nil, user: (uid: Int, gid: Int)? = nil,
                input: Data? = nil, timeout: Duration? = nil, group: ChildGroup? = nil) {
        self.group = group
        self.path = path
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.user = user
        self.input = input
        self.timeout = timeout
    }
}

/// Where a child's stdout and stderr go.
public enum OutputMode: Sendable {
    /// This process's own stdout and stderr.
    case inherit
    /// One capture of both, interleaved as written (detect output).
    case combined
    /// stdout and stderr captured apart, read concurrently so neither pipe can fill and stall.
    case separate
    /// /dev/null.
    case discard
}

public struct ProcessResult: Sendable {
    /// Exit code, or 128+signal when the child was killed by a signal.
    public var status: Int32
    /// The captured stdout (`.separate`) or both streams (`.combined`).
    public var stdout: Data
    public var stderr: Data
    public var timedOut: Bool

    public var output: String { String(decoding: stdout, as: UTF8.self) }
    public var errorOutput: String { String(decoding: stderr, as: UTF8.self) }
}

public enum ProcessError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The child could not be started; `step` names what failed (exec, chdir, setuid, …).
    case cannotStart(path: String, step: String, reason: String)
    /// A tool ran and failed (`ChildProcess.tool`).
    case failed(what: String, status: Int32, detail: String)
    case timedOut(what: String, after: Duration)

    public var description: String {
        switch self {
        case .cannotStart(let path, let step, let reason): "cannot run \(path) (\(step)): \(reason)"
        case .failed(let what, let status, let detail):
            "\(what) failed (exit status \(status))" + (detail.isEmpty ? "" : ": \(detail)")
        case .timedOut(let what, let after): "\(what) did not finish within \(after) and was killed"
        }
    }
}

/// The one way Cairn runs a process: posix fork/exec through `cairn_spawn` (privilege drop,
/// working directory and environment set in the child), close-on-exec pipes, both outputs read
/// concurrently with poll(2), timeouts, and signal forwarding through `RunningChildren`.
/// A non-zero exit is a result, not an error; only failing to start throws.
public enum ChildProcess {
    /// Runs `spec` to completion. `onSignal` replaces the default forwarding (kill(pid, sig)) of
    /// SIGINT/SIGTERM received by this process while the child runs (see `SignalForwarding`).
    public static func run(_ spec: ProcessSpec, output: OutputMode = .inherit,
                           onSignal: (@Sendable (Int32) -> Void)? = nil) throws -> ProcessResult {
        var pipes = Pipes()
        defer { pipes.closeAll() }
        try pipes.open(for: output, input: spec.input != nil && !spec.inheritInput, path: spec.path)
        var fds = pipes.childFDs(for: output)
        if spec.inheritInput { fds[0] = 0 }
        let pid = try spawn(spec, fds: fds)
        pipes.closeChildEnds()
        spec.group?.add(pid)

        let child = RunningChildren.shared.add(pid: pid, forward: onSignal)
        var timer: (any DispatchSourceTimer)?
        var wake: Int32 = -1
        if let timeout = spec.timeout {
            // On timeout the child is killed and the capture stops at once: a grandchild that
            // still holds the output pipes open must not keep the caller waiting.
            var fds: [Int32] = [-1, -1]
            if cairn_pipe_cloexec(&fds) == 0 { wake = fds[0] }
            let (wakeRead, wakeWrite) = (fds[0], fds[1])
            let t = DispatchSource.makeTimerSource(queue: .global())
            t.schedule(deadline: .now() + .nanoseconds(Int(timeout.components.seconds) * 1_000_000_000
                + Int(timeout.components.attoseconds / 1_000_000_000)))
            t.setEventHandler {
                RunningChildren.shared.timeOut(child)
                if wakeWrite >= 0 { _ = write(wakeWrite, "x", 1) }
            }
            // Closed only after any running event handler has returned.
            t.setCancelHandler { for fd in [wakeRead, wakeWrite] where fd >= 0 { close(fd) } }
            t.resume()
            timer = t
        }
        let (out, err) = pipes.drain(input: spec.input ?? Data(), wake: wake)
        _ = cairn_await_exit(pid)
        spec.group?.remove(pid)
        timer?.cancel()
        let timedOut = RunningChildren.shared.remove(child)
        return ProcessResult(status: cairn_wait(pid), stdout: out, stderr: err, timedOut: timedOut)
    }

    /// `run` on a thread of its own, so that many children can run at once from async code.
    public static func runDetached(_ spec: ProcessSpec, output: OutputMode) async throws -> ProcessResult {
        try await withCheckedThrowingContinuation { continuation in
            startThread(stackSize: 8 << 20) {
                continuation.resume(with: Result { try run(spec, output: output) })
            }
        }
    }

    /// Runs a tool and returns its stdout; a non-zero exit throws `.failed` with its stderr.
    @discardableResult
    public static func tool(_ path: String, _ arguments: [String], environment: [String: String]? = nil,
                            workingDirectory: String? = nil, what: String? = nil) throws -> String {
        let spec = ProcessSpec(path: path, arguments: arguments, environment: environment, workingDirectory: workingDirectory)
        let result = try run(spec, output: .separate)
        guard result.status == 0 else {
            let detail = result.errorOutput.trimmed
            throw ProcessError.failed(what: what ?? ([URL(fileURLWithPath: path).lastPathComponent] + arguments).joined(separator: " "),
                                      status: result.status, detail: String(detail.suffix(2000)))
        }
        return result.output
    }

    static func spawn(_ spec: ProcessSpec, fds: [Int32]) throws -> Int32 {
        let argv = [spec.path] + spec.arguments
        let environment = spec.environment ?? ProcessInfo.processInfo.environment
        let envp = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var err: Int32 = 0
        var stage: Int32 = 0
        let pid = withCStrings(argv) { cArgv in
            withCStrings(envp) { cEnvp in
                fds.withUnsafeBufferPointer { fdp in
                    cairn_spawn(spec.path, cArgv, cEnvp, spec.workingDirectory, Int32(spec.user?.uid ?? -1),
                                Int32(spec.user?.gid ?? -1), spec.maxProcesses ?? 0, fdp.baseAddress, Int32(fds.count), &err, &stage)
                }
            }
        }
        if pid < 0 {
            let step = [1: "changing to directory \(spec.workingDirectory ?? ".")", 2: "setting group \(spec.user?.gid ?? -1)",
                        3: "setting user \(spec.user?.uid ?? -1)", 4: "exec", 5: "fork", 6: "redirecting output",
                        7: "limiting processes to \(spec.maxProcesses ?? 0)"][Int(stage)] ?? "start"
            throw ProcessError.cannotStart(path: spec.path, step: step, reason: String(cString: strerror(err)))
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

/// The parent's ends and the child's ends of the stdin/stdout/stderr pipes of one child, all
/// created close-on-exec (pipe2) so that no other child inherits them.
struct Pipes {
    var stdinWrite: Int32 = -1, stdinRead: Int32 = -1
    var stdoutRead: Int32 = -1, stdoutWrite: Int32 = -1
    var stderrRead: Int32 = -1, stderrWrite: Int32 = -1

    mutating func open(for output: OutputMode, input: Bool, path: String) throws {
        func make() throws -> (Int32, Int32) {
            var fds: [Int32] = [-1, -1]
            guard cairn_pipe_cloexec(&fds) == 0 else {
                throw ProcessError.cannotStart(path: path, step: "creating a pipe", reason: String(cString: strerror(errno)))
            }
            return (fds[0], fds[1])
        }
        if input { (stdinRead, stdinWrite) = try make() }
        switch output {
        case .combined: (stdoutRead, stdoutWrite) = try make()
        case .separate:
            (stdoutRead, stdoutWrite) = try make()
            (stderrRead, stderrWrite) = try make()
        case .inherit, .discard: break
        }
    }

    func childFDs(for output: OutputMode) -> [Int32] {
        switch output {
        case .inherit: [stdinRead, 1, 2]
        case .discard: [stdinRead, -1, -1]
        case .combined: [stdinRead, stdoutWrite, stdoutWrite]
        case .separate: [stdinRead, stdoutWrite, stderrWrite]
        }
    }

    mutating func closeChildEnds() {
        for fd in [stdinRead, stdoutWrite, stderrWrite] where fd >= 0 { close(fd) }
        stdinRead = -1; stdoutWrite = -1; stderrWrite = -1
    }

    mutating func closeAll() {
        closeChildEnds()
        for fd in [stdinWrite, stdoutRead, stderrRead] where fd >= 0 { close(fd) }
        stdinWrite = -1; stdoutRead = -1; stderrRead = -1
    }

    /// Feeds `input` to stdin and reads stdout and stderr until both reach end of file, with one
    /// poll(2) loop: no stream can fill its pipe while another is being read.
    /// Anything readable on `wake` ends the loop early.
    mutating func drain(input: Data, wake: Int32 = -1) -> (Data, Data) {
        var out = Data(), err = Data()
        var pending = input[...]
        if pending.isEmpty, stdinWrite >= 0 { close(stdinWrite); stdinWrite = -1 }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while stdoutRead >= 0 || stderrRead >= 0 || stdinWrite >= 0 {
            var polled = [stdinWrite, stdoutRead, stderrRead, wake].map {
                pollfd(fd: $0, events: Int16($0 == stdinWrite ? POLLOUT : POLLIN), revents: 0)
            }
            let n = poll(&polled, nfds_t(polled.count), -1)
            if n < 0 {
                if errno == EINTR { continue }
                break
            }
            if wake >= 0, polled[3].revents != 0 { break }
            if stdinWrite >= 0, polled[0].revents != 0 {
                let written = pending.withUnsafeBytes { write(stdinWrite, $0.baseAddress, min($0.count, 65536)) }
                if written > 0 { pending = pending.dropFirst(written) }
                if written < 0 && errno == EINTR { continue }
                if written <= 0 || pending.isEmpty { close(stdinWrite); stdinWrite = -1 }
            }
            for (index, fd) in [(1, stdoutRead), (2, stderrRead)] where fd >= 0 && polled[index].revents != 0 {
                let got = read(fd, &buffer, buffer.count)
                if got < 0 && errno == EINTR { continue }
                if got <= 0 {
                    close(fd)
                    if index == 1 { stdoutRead = -1 } else { stderrRead = -1 }
                } else if index == 1 {
                    out.append(contentsOf: buffer[..<got])
                } else {
                    err.append(contentsOf: buffer[..<got])
                }
            }
        }
        return (out, err)
    }
}

import Foundation
import Processes
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The process runner called directly: capture without deadlock, stdin, timeouts, privilege-free
/// start errors, and what a child must not inherit (stray descriptors, ignored signals).
@Suite struct ChildProcessTests {
    private func sh(_ script: String, input: Data? = nil, timeout: Duration? = nil,
                    environment: [String: String]? = nil, workingDirectory: String? = nil) -> ProcessSpec {
        ProcessSpec(path: "/bin/sh", arguments: ["-c", script], environment: environment,
                    workingDirectory: workingDirectory, input: input, timeout: timeout)
    }

    @Test func separateCaptureReadsBothStreamsAtOnce() throws {
        // 4 MiB on each stream, stderr first: a reader that drains stdout before stderr would
        // block forever on the full stderr pipe.
        let script = "head -c 4194304 /dev/zero | tr '\\0' e >&2; head -c 4194304 /dev/zero | tr '\\0' o; exit 3"
        let result = try ChildProcess.run(sh(script), output: .separate)
        #expect(result.status == 3)
        #expect(result.stdout.count == 4_194_304)
        #expect(result.stderr.count == 4_194_304)
        #expect(result.stdout.allSatisfy { $0 == UInt8(ascii: "o") })
        #expect(result.stderr.allSatisfy { $0 == UInt8(ascii: "e") })
    }

    @Test func combinedCaptureKeepsTheOrderOfWrites() throws {
        let result = try ChildProcess.run(sh("echo one; echo two >&2; echo three"), output: .combined)
        #expect(result.output == "one\ntwo\nthree\n")
        #expect(result.stderr.isEmpty)
    }

    @Test func inputIsFedWhileOutputIsRead() throws {
        // 3 MiB through cat: larger than both pipe buffers together, so writing all input before
        // reading any output would deadlock.
        let input = Data((0..<3_145_728).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let result = try ChildProcess.run(ProcessSpec(path: "/bin/cat", input: input), output: .separate)
        #expect(result.status == 0)
        #expect(result.stdout == input)
    }

    @Test func environmentAndWorkingDirectoryAreTheSpecs() throws {
        let dir = FileManager.default.temporaryDirectory.path
        let result = try ChildProcess.run(sh("echo \"$ONLY:$HOME\"; pwd -P", environment: ["ONLY": "this"],
                                             workingDirectory: dir), output: .separate)
        let resolved = URL(fileURLWithPath: dir).resolvingSymlinksInPath().path
        #expect(result.output == "this:\n\(resolved)\n")
    }

    @Test func timeoutKillsTheChildAndSaysSo() throws {
        let start = ContinuousClock.now
        let result = try ChildProcess.run(sh("sleep 30", timeout: .milliseconds(300)), output: .separate)
        #expect(result.timedOut)
        #expect(result.status == 128 + SIGKILL)
        #expect(ContinuousClock.now - start < .seconds(10))
        let quick = try ChildProcess.run(sh("true", timeout: .seconds(30)), output: .discard)
        #expect(!quick.timedOut && quick.status == 0)
    }

    @Test func aMissingProgramIsAStartErrorNamingItsPath() throws {
        #expect(throws: ProcessError.self) { try ChildProcess.run(ProcessSpec(path: "/nonexistent/tool")) }
        do {
            _ = try ChildProcess.run(ProcessSpec(path: "/bin/true", workingDirectory: "/nonexistent/dir"))
            Issue.record("expected an error")
        } catch let ProcessError.cannotStart(path, step, _) {
            #expect(path == "/bin/true")
            #expect(step.contains("/nonexistent/dir"))
        }
    }

    @Test func toolThrowsWithItsStderrOnFailure() throws {
        #expect(try ChildProcess.tool("/bin/sh", ["-c", "echo out"]) == "out\n")
        do {
            try ChildProcess.tool("/bin/sh", ["-c", "echo bad thing >&2; exit 4"], what: "the check")
            Issue.record("expected an error")
        } catch let ProcessError.failed(what, status, detail) {
            #expect(what == "the check" && status == 4 && detail == "bad thing")
        }
    }

    @Test func childrenInheritNoStrayDescriptors() throws {
        // A descriptor opened without O_CLOEXEC (as a library might) must not reach the child.
        let fd = open("/dev/null", O_RDONLY)
        #expect(fd > 2)
        defer { close(fd) }
        let result = try ChildProcess.run(sh("if [ -e /proc/self/fd/\(fd) ]; then echo open; else echo closed; fi"),
                                          output: .separate)
        #expect(result.output == "closed\n")
    }

    @Test func concurrentChildrenDoNotHoldEachOthersPipes() async throws {
        // Captures run while long-lived siblings are being spawned from other threads: had a
        // sibling inherited a capture's write end, that capture would end only when the sibling
        // does (15 s). Every capture ends while the sleepers still run.
        let sleepersDone = Flag()
        async let sleepers: Void = {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 { group.addTask { _ = try await ChildProcess.runDetached(self.sh("sleep 15"), output: .separate) } }
                try await group.waitForAll()
            }
            sleepersDone.set()
        }()
        try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<20 { group.addTask { try await ChildProcess.runDetached(self.sh("echo \(i)"), output: .separate).output } }
            var outputs: [String] = []
            for try await output in group { outputs.append(output) }
            #expect(outputs.count == 20)
        }
        #expect(!sleepersDone.value, "a capture waited for a sibling that held its pipe")
        try await sleepers
    }

    @Test func signalsIgnoredHereAreDefaultInTheChild() throws {
        // The executables ignore SIGINT/SIGTERM to forward them; an ignored signal would stay
        // ignored across exec, and the child could not be stopped. SIGUSR2 stands in for them.
        let previous = signal(SIGUSR2, SIG_IGN)
        defer { signal(SIGUSR2, previous) }
        let result = try ChildProcess.run(sh("kill -USR2 $$; echo survived"), output: .separate)
        #expect(result.status == 128 + SIGUSR2)
        #expect(result.output.isEmpty)
    }
}

/// A flag set from another task.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var set_ = false
    var value: Bool { lock.withLock { set_ } }
    func set() { lock.withLock { set_ = true } }
}

import Buildpacks
import FoundationEssentials
import Phases
import Processes

#if canImport(Glibc)
import Glibc
#endif

// Multi-call: invoked as `detector`/`builder` (a link named after the phase) or as
// `lifecycle <phase> ...`. The dispatch table is here and only here.
/// Not a phase: `lifecycle cairn-run-as UID GID COMMAND [ARGS...]` drops to UID/GID (no
/// supplementary groups) and executes COMMAND with the same environment. `cairn build` starts
/// its sandbox as root and runs the phases the spec runs as the CNB user (detector, builder)
/// through it, so any builder's lifecycle runs them unprivileged.
let runAsCommand = "cairn-run-as"

func runAs(_ arguments: [String]) -> Never {
    guard arguments.count >= 3, let uid = UInt32(arguments[0]), let gid = UInt32(arguments[1]), uid != 0 else {
        fail("usage: lifecycle \(runAsCommand) UID GID COMMAND [ARGS...] (UID not 0)", usageExit)
    }
    guard setgroups(0, nil) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
        fail("\(runAsCommand): cannot drop to \(uid):\(gid): \(String(cString: strerror(errno)))", 1)
    }
    let command = Array(arguments.dropFirst(2))
    var argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) }
    argv.append(nil)
    execv(command[0], argv)
    fail("\(runAsCommand): cannot execute \(command[0]): \(String(cString: strerror(errno)))", 1)
}

/// The command of each phase (the compiler checks that every phase has one).
func command(_ phase: LifecyclePhase) -> any AsyncParsableCommand.Type {
    switch phase {
    case .analyzer: AnalyzerCommand.self
    case .detector: DetectorCommand.self
    case .restorer: RestorerCommand.self
    case .extender: ExtenderCommand.self
    case .builder: BuildPhaseCommand.self
    case .exporter: ExporterCommand.self
    case .rebaser: RebaserCommand.self
    case .creator: CreatorCommand.self
    }
}

/// Flags that take no value, in every phase (Go's bool flags of the reference lifecycle).
let booleanFlags: Set<String> = ["daemon", "layout", "skip-layers", "skip-restore", "parallel", "force", "no-color", "version"]

/// Usage errors exit in platform.md's generic range (the reference uses 3, invalid arguments).
let usageExit: Int32 = 3

func fail(_ message: String, _ code: Int32) -> Never {
    StandardStream.error.write("ERROR: \(message)\n")
    exit(code)
}

/// Runs one phase: `CNB_PLATFORM_API` first (exit 11 before any other input is looked at), then
/// the Go-style arguments, then the phase. Parse errors exit 3; a phase's own errors carry its code.
func runPhaseCommand(_ type: any AsyncParsableCommand.Type, _ arguments: [String]) async -> Never {
    do { _ = try platformAPI(ProcessInfo.processInfo.environment) } catch {
        fail("\(error)", error.exitCode(phase: .detect))
    }
    if arguments.contains(where: { $0 == "-version" || $0 == "--version" }) {
        print(cairnVersion)
        exit(0)
    }
    let canonical: [String]
    do { canonical = try GoFlags.normalize(arguments, booleans: booleanFlags) } catch {
        fail("failed to parse arguments: \(error)", usageExit)
    }
    let parsed: (any AsyncParsableCommand)?
    do { parsed = try CommandLineReader.parse(type, canonical) } catch {
        fail("failed to parse arguments: \(error)", usageExit)
    }
    guard let command = parsed else { exit(0) }  // -help
    do {
        try await command.run()
        exit(0)
    } catch let e as ExitCode {
        exit(e.rawValue)
    } catch {
        fail("\(error)", 1)
    }
}

let invokedAs = URL(fileURLWithPath: CommandLine.arguments[0]).lastPathComponent
var arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == runAsCommand { runAs(Array(arguments.dropFirst())) }
var phase = LifecyclePhase(rawValue: invokedAs)
if phase == nil {
    guard let first = arguments.first, let named = LifecyclePhase(rawValue: first) else {
        let known = LifecyclePhase.allCases.map(\.rawValue).sorted().joined(separator: ", ")
        let name = arguments.first.map { "unknown phase \"\($0)\"" } ?? "no phase given"
        StandardStream.error.write("""
            lifecycle: \(name). Usage: lifecycle <phase> [flags], or run through a link named after the phase.
            Phases: \(known)\n
            """)
        exit(1)
    }
    phase = named
    arguments.removeFirst()
}
// Signals reach the buildpacks' processes (as PID 1 of a phase container the lifecycle would
// otherwise ignore SIGTERM), and the phase ends with their status.
SignalForwarding.install()
// Not a top-level `await`: an async main ends in dispatch_main, whose pthread_exit unwinds the
// main thread, and in this static binary the first unwind sorts every frame description entry
// of the binary (libgcc's registered-objects path): 8 ms of CPU at every phase's start, a fifth
// of a registry rebase's CPU in `perf`. The phase runs as a detached task (the main actor is
// never used) and ends the process with exit(); the main thread only waits.
func start(_ type: any AsyncParsableCommand.Type, _ arguments: [String]) -> Never {
    Task.detached { await runPhaseCommand(type, arguments) }
    while true { pause() }
}
start(command(phase!), arguments)

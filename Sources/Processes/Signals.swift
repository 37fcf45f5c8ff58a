import Dispatch
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// The children `ChildProcess` is running, so that a signal this process receives can be passed
/// on to them and a timeout can kill one. A child leaves the set after it has exited but before
/// it is reaped, so its pid is never reused while it is here.
public final class RunningChildren: @unchecked Sendable {
    public static let shared = RunningChildren()

    struct Child {
        let pid: Int32
        let forward: (@Sendable (Int32) -> Void)?
        var timedOut = false
    }

    public struct Handle: Sendable { let id: Int }

    private let lock = Lock()
    private var children: [Int: Child] = [:]
    private var nextID = 0

    func add(pid: Int32, forward: (@Sendable (Int32) -> Void)?) -> Handle {
        lock.withLock {
            nextID += 1
            children[nextID] = Child(pid: pid, forward: forward)
            return Handle(id: nextID)
        }
    }

    /// Removes the child; returns whether its timeout killed it.
    func remove(_ handle: Handle) -> Bool {
        lock.withLock { children.removeValue(forKey: handle.id)?.timedOut ?? false }
    }

    func timeOut(_ handle: Handle) {
        lock.withLock {
            guard let child = children[handle.id] else { return }
            children[handle.id]?.timedOut = true
            kill(child.pid, SIGKILL)
        }
    }

    /// Passes `sig` to every running child (its own forwarder, or kill(pid, sig)); returns false
    /// when there is none.
    public func forward(_ sig: Int32) -> Bool {
        let current = lock.withLock { Array(children.values) }
        for child in current {
            if let forward = child.forward { forward(sig) } else { kill(child.pid, sig) }
        }
        return !current.isEmpty
    }
}

/// Installed once by an executable (never by library code): SIGINT and SIGTERM are passed to
/// the children running at that moment, which then end and let their callers clean up
/// (unmount, delete containers) and exit with their status. With no child running, the signal
/// ends this process as it would have by default.
public enum SignalForwarding {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    private static let lock = Lock()
    nonisolated(unsafe) private static var forwarded: Int32?

    /// The signal forwarded to a child, if one was: a command that then fails exits 128 + it,
    /// as a shell reports an interrupted command (130 for Ctrl-C).
    public static var received: Int32? { lock.withLock { forwarded } }

    public static func install() {
        guard sources.isEmpty else { return }
        let queue = DispatchQueue(label: "cairn.signals")
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                if RunningChildren.shared.forward(sig) {
                    lock.withLock { forwarded = sig }
                    return
                }
                signal(sig, SIG_DFL)
                raise(sig)
                // Still here (PID 1 ignores default-action signals): exit as the signal would.
                exit(128 + sig)
            }
            source.resume()
            sources.append(source)
        }
    }
}

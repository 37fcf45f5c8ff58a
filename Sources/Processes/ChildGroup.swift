import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// Children that belong to one piece of work (the bin/detect runs of one detection): `cancel()`
/// kills those running and any started afterwards, so nothing outlives the work that needed it.
public final class ChildGroup: @unchecked Sendable {
    private let lock = Lock()
    private var pids: Set<Int32> = []
    private var cancelled = false

    public init() {}

    public var isCancelled: Bool { lock.withLock { cancelled } }

    /// Kills (SIGKILL) every child of the group now running, and every one started later.
    public func cancel() {
        lock.withLock {
            cancelled = true
            for pid in pids { kill(pid, SIGKILL) }
        }
    }

    /// Called right after spawn; a child started after `cancel()` is killed at once.
    func add(_ pid: Int32) {
        lock.withLock {
            pids.insert(pid)
            if cancelled { kill(pid, SIGKILL) }
        }
    }

    /// Called after the child has exited and before it is reaped: its pid cannot be reused while
    /// it is in the set.
    func remove(_ pid: Int32) {
        _ = lock.withLock { pids.remove(pid) }
    }
}

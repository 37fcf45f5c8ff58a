import FoundationEssentials
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// A one-line byte counter per layer being written, on a terminal only (stdout is the log).
enum LayerProgress {
    static let onTerminal = isatty(1) == 1

    static func make(_ what: String) -> (@Sendable (Int64) -> Void)? {
        guard onTerminal else { return nil }
        let last = LockedBox(Date.distantPast)
        return { bytes in
            let now = Date()
            guard last.swap(if: { now.timeIntervalSince($0) > 0.2 }, now) else { return }
            StandardStream.output.write("\r  writing layer '\(what)': \(bytes >> 20) MiB\u{1b}[K")
        }
    }

    static func clear(_ progress: (@Sendable (Int64) -> Void)?) {
        if progress != nil { StandardStream.output.write("\r\u{1b}[K") }
    }
}

/// A value behind a lock.
final class LockedBox<T>: @unchecked Sendable {
    private var value: T
    private let lock = Lock()
    init(_ value: T) { self.value = value }
    /// Replaces the value with `new` when `condition` holds for the current one.
    func swap(if condition: (T) -> Bool, _ new: T) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard condition(value) else { return false }
        value = new
        return true
    }
}

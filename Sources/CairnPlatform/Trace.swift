import Foundation

/// Per-step timings of a command, on stderr, when `CAIRN_TRACE` is set (to anything but "" or
/// "0"): `[trace] <step> <ms> ms`. For finding where a command's time goes without a profiler;
/// off, a step costs one flag check.
public enum Trace {
    public static let enabled: Bool = {
        let value = ProcessInfo.processInfo.environment["CAIRN_TRACE"] ?? ""
        return !value.isEmpty && value != "0"
    }()

    /// Runs `body`; with tracing on, says how long it took.
    public static func step<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        defer { report(name, since: start) }
        return try body()
    }

    /// The async form of `step`.
    public static func step<T>(_ name: String, _ body: () async throws -> T) async rethrows -> T {
        guard enabled else { return try await body() }
        let start = DispatchTime.now().uptimeNanoseconds
        defer { report(name, since: start) }
        return try await body()
    }

    static func report(_ name: String, since start: UInt64) {
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000_000
        FileHandle.standardError.write(Data(String(format: "[trace] %@ %.2f ms\n", name, ms).utf8))
    }
}

/// Directories removed on another thread while the command goes on (a build's work directory
/// while the image is signed); `during` waits for them before it returns or throws, so nothing
/// is left behind.
public final class BackgroundRemovals: Sendable {
    let group = DispatchGroup()

    init() {}

    /// Runs `body` with a removal queue, then waits (without blocking a thread) for its removals.
    public static func during<T>(_ body: (BackgroundRemovals) async throws -> T) async throws -> T {
        let removals = BackgroundRemovals()
        do {
            let value = try await body(removals)
            await removals.finished()
            return value
        } catch {
            await removals.finished()
            throw error
        }
    }

    public func remove(_ path: String) {
        DispatchQueue.global().async(group: group) {
            Trace.step("removed in the background: \(path)") { try? FileManager.default.removeItem(atPath: path) }
        }
    }

    func finished() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in group.notify(queue: .global()) { done.resume() } }
    }
}

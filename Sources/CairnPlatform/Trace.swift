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

import FoundationEssentials
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// Phase logging with the platform's levels (`-log-level` / `CNB_LOG_LEVEL`).
public struct Logger: Sendable {
    public enum Level: Int, Sendable, Comparable, CaseIterable {
        case debug, info, warn, error
        public init?(name: String) {
            switch name.lowercased() {
            case "debug": self = .debug
            case "info": self = .info
            case "warn", "warning": self = .warn
            case "error": self = .error
            default: return nil
            }
        }
        public static func < (l: Level, r: Level) -> Bool { l.rawValue < r.rawValue }
    }

    public var level: Level
    public init(level: Level = .info) { self.level = level }

    public func debug(_ s: @autoclosure () -> String) { if level <= .debug { emit(s(), to: .output) } }
    public func info(_ s: @autoclosure () -> String) { if level <= .info { emit(s(), to: .output) } }
    public func warn(_ s: @autoclosure () -> String) { if level <= .warn { emit("Warning: " + s(), to: .error) } }
    public func error(_ s: @autoclosure () -> String) { emit("ERROR: " + s(), to: .error) }

    private func emit(_ s: String, to stream: StandardStream) {
        stream.write(s.hasSuffix("\n") ? s : s + "\n")
    }
}

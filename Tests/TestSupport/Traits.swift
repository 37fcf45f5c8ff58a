import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Conditions whose skip says why in the test report.
extension Trait where Self == ConditionTrait {
    /// Runs only when every program is on PATH; skipped, the report names the missing ones.
    public static func requires(_ tools: String...) -> Self {
        let missing = tools.filter { !toolAvailable($0) }
        return .enabled(if: missing.isEmpty, Comment(rawValue: "needs \(missing.joined(separator: ", ")) on PATH (scripts/deps installs it)"))
    }

    /// Runs only as root; skipped, the report says what needs root.
    public static func requiresRoot(_ why: String) -> Self {
        .enabled(if: geteuid() == 0, Comment(rawValue: "runs only as root: \(why)"))
    }
}

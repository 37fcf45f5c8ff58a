/// The environment-file rules (buildpack.md, Environment Variable Modification Rules), once, for
/// the lifecycle (build environment) and the launcher (launch environment). File access is the
/// caller's: the lifecycle reads with Foundation, the launcher with Glibc.
public enum EnvFiles {
    /// What a file's suffix asks for.
    public enum Action: String, Sendable {
        case override, `default`, append, prepend, delim
    }

    /// Names in the order files are applied: ascending by bytes, as the reference lists a directory.
    public static func sorted(_ names: [String]) -> [String] {
        names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// Applies the regular files `names` of one env directory to `variables`, in byte order:
    /// `NAME.override|default|append|prepend`, a bare `NAME` taking `defaultAction`, `NAME.delim`
    /// the delimiter of that directory's append and prepend for NAME. A file with another suffix
    /// is not an env file; one `read` returns nil for is skipped.
    public static func apply<E: Error>(names: [String], read: (String) throws(E) -> String?, to variables: inout [String: String],
                             defaultAction: Action) throws(E) {
        for file in sorted(names) {
            let parts = file.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard !name.isEmpty else { continue }
            let action: Action
            if parts.count > 1 {
                guard let a = Action(rawValue: String(parts[1])) else { continue }
                action = a
            } else {
                action = defaultAction
            }
            guard action != .delim, let value = try read(file) else { continue }
            let existing = variables[name] ?? ""
            let delimiter = existing.isEmpty || !names.contains(name + ".delim") ? "" : (try read(name + ".delim") ?? "")
            switch action {
            case .override: variables[name] = value
            case .default: if existing.isEmpty { variables[name] = value }
            case .append: variables[name] = existing + delimiter + value
            case .prepend: variables[name] = value + delimiter + existing
            case .delim: break
            }
        }
    }

    /// `value` before `existing` in a `:`-separated path list, with no dangling separator.
    public static func prependingPath(_ value: String, to existing: String?) -> String {
        guard let existing, !existing.isEmpty else { return value }
        return value + ":" + existing
    }
}

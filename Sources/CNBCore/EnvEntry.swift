/// `NAME=VALUE` entries: an image config's `Env`, the process environment, `--env` flags.
public enum EnvEntry {
    /// The entry split at its first `=` (the value may hold more); nil without `=` or with an
    /// empty name.
    public static func split(_ entry: String) -> (name: String, value: String)? {
        guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else { return nil }
        return (String(entry[..<eq]), String(entry[entry.index(after: eq)...]))
    }

    /// Entries as a dictionary, a later entry winning; entries that do not split are skipped.
    public static func dictionary<S: Sequence>(_ entries: S) -> [String: String] where S.Element == String {
        var out: [String: String] = [:]
        for entry in entries {
            if let (name, value) = split(entry) { out[name] = value }
        }
        return out
    }
}

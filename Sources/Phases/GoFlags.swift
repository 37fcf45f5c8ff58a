/// Command-line arguments as Go's `flag` package reads them, which is how every platform
/// (pack, kpack, Tekton) passes them to a lifecycle: `-name value`, `-name=value`, `--name`,
/// empty values (`-run-image=`, meaning "not given"), booleans as `-name`, `-name=true`,
/// `-name=false`, and parsing that stops at the first argument that is not a flag.
public enum GoFlags {
    /// A usage error in the arguments (exit in the generic range, platform.md).
    public struct UsageError: Error, CustomStringConvertible, Hashable, Sendable {
        public let description: String
    }

    /// Rewrites Go-style arguments into the canonical form the phase parsers take: every flag as
    /// `--name=value` or `--name`, empty values and false booleans left out (as not given), and
    /// `--` before the first positional argument, after which nothing is a flag.
    ///
    /// - Parameter booleans: the names of the flags that take no value.
    public static func normalize(_ arguments: [String], booleans: Set<String>) throws(UsageError) -> [String] {
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            i += 1
            if arg == "--" {
                out.append("--")
                out += arguments[i...]
                return out
            }
            guard arg.hasPrefix("-"), arg != "-" else {
                out.append("--")
                out += arguments[(i - 1)...]
                return out
            }
            let body = arg.hasPrefix("--") ? arg.dropFirst(2) : arg.dropFirst()
            guard !body.isEmpty, !body.hasPrefix("-") else { throw UsageError(description: "bad flag syntax: \(arg)") }
            let name: Substring
            let inlineValue: Substring?
            if let eq = body.firstIndex(of: "=") {
                name = body[..<eq]
                inlineValue = body[body.index(after: eq)...]
            } else {
                name = body
                inlineValue = nil
            }
            if ["h", "help"].contains(name) {
                out.append("--help")
                continue
            }
            if booleans.contains(String(name)) {
                guard let inlineValue else {
                    out.append("--" + name)
                    continue
                }
                guard let value = parseBool(inlineValue) else {
                    throw UsageError(description: "invalid boolean value \"\(inlineValue)\" for -\(name): expected true or false")
                }
                if value { out.append("--" + name) }
                continue
            }
            let value: Substring
            if let inlineValue {
                value = inlineValue
            } else {
                guard i < arguments.count else { throw UsageError(description: "flag needs an argument: -\(name)") }
                value = Substring(arguments[i])
                i += 1
            }
            if !value.isEmpty { out.append("--\(name)=\(value)") }
        }
        return out
    }

    /// Go's `strconv.ParseBool`.
    public static func parseBool(_ s: Substring) -> Bool? {
        switch s {
        case "1", "t", "T", "true", "TRUE", "True": return true
        case "0", "f", "F", "false", "FALSE", "False": return false
        default: return nil
        }
    }
}

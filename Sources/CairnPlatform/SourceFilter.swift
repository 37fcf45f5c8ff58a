import Foundation

/// project.toml's `include` or `exclude` (project-descriptor.md: gitignore-style patterns),
/// applied to the workspace copy of an app, never to the app directory itself.
///
/// Patterns follow gitignore: `#` comments, `!` re-includes, a trailing `/` matches only
/// directories, a pattern with a `/` elsewhere is anchored at the app root (a leading `/` too),
/// one without matches at any depth; `*` and `?` stay within a path segment, `**` crosses them,
/// `[…]` is a character class. A path is matched when it or a directory above it is. The
/// last pattern that matches decides. Hand-written: Foundation has no gitignore matcher, and
/// the rules above are a screenful of regular expressions.
public struct SourceFilter: Sendable {
    public enum Mode: String, Sendable { case include, exclude }

    struct Rule: @unchecked Sendable {
        var regex: NSRegularExpression
        var negated: Bool
        var directoryOnly: Bool
    }

    public let mode: Mode
    let rules: [Rule]

    /// - Throws: `PlatformError.invalidArgument` naming the pattern that cannot be read.
    public init(mode: Mode, patterns: [String], file: String) throws {
        self.mode = mode
        rules = try patterns.compactMap { try Self.rule($0, file: file, mode: mode) }
    }

    static func rule(_ raw: String, file: String, mode: Mode) throws -> Rule? {
        var p = raw.trimmingCharacters(in: .whitespaces)
        guard !p.isEmpty, !p.hasPrefix("#") else { return nil }
        let negated = p.hasPrefix("!")
        if negated { p.removeFirst() }
        if p.hasPrefix("\\#") || p.hasPrefix("\\!") { p.removeFirst() }
        let directoryOnly = p.hasSuffix("/")
        while p.hasSuffix("/") { p.removeLast() }
        let anchored = p.contains("/")
        while p.hasPrefix("/") { p.removeFirst() }
        guard !p.isEmpty else {
            throw PlatformError.invalidArgument("\(file) [io.buildpacks] \(mode.rawValue) pattern \"\(raw)\"", reason: "matches nothing: expected a path pattern")
        }
        let body = globToRegex(p)
        do {
            let regex = try NSRegularExpression(pattern: (anchored ? "^" : "^(?:.*/)?") + body + "$")
            return Rule(regex: regex, negated: negated, directoryOnly: directoryOnly)
        } catch {
            throw PlatformError.invalidArgument("\(file) [io.buildpacks] \(mode.rawValue) pattern \"\(raw)\"", reason: "not a valid pattern", cause: error)
        }
    }

    static func globToRegex(_ glob: String) -> String {
        var out = ""
        var chars = Array(glob)[...]
        while let c = chars.popFirst() {
            switch c {
            case "*" where chars.first == "*":
                chars.removeFirst()
                if chars.first == "/" {
                    chars.removeFirst()
                    out += "(?:.*/)?"
                } else {
                    out += ".*"
                }
            case "*": out += "[^/]*"
            case "?": out += "[^/]"
            case "[":
                if let close = chars.firstIndex(of: "]") {
                    var set = String(chars[chars.startIndex..<close])
                    if set.hasPrefix("!") { set = "^" + set.dropFirst() }
                    out += "[" + set.replacingOccurrences(of: "\\", with: "\\\\") + "]"
                    chars = chars[(close + 1)...]
                } else {
                    out += "\\["
                }
            case "\\":
                if let next = chars.popFirst() { out += NSRegularExpression.escapedPattern(for: String(next)) }
            default: out += NSRegularExpression.escapedPattern(for: String(c))
            }
        }
        return out
    }

    /// Whether the patterns match `path` itself (relative, `/`-separated); nil when none does.
    func matches(_ path: String, isDirectory: Bool) -> Bool? {
        var decided: Bool?
        let range = NSRange(path.startIndex..., in: path)
        for rule in rules where !rule.directoryOnly || isDirectory {
            if rule.regex.firstMatch(in: path, range: range) != nil { decided = !rule.negated }
        }
        return decided
    }

    /// Applies the filter to a copy of the app: removes what `exclude` matches, or what
    /// `include` does not. Returns the number of paths removed.
    public func apply(to root: String) throws -> Int {
        var removed = 0
        try walk(root, "", parentMatched: false) { path in
            try FileManager.default.removeItem(atPath: root + "/" + path)
            removed += 1
        }
        return removed
    }

    /// The paths (relative, `/`-separated) `apply` would remove from a copy of `root`, which is
    /// not changed: the workspace sync leaves them out (everything below them too).
    public func excludedPaths(in root: String) throws -> Set<String> {
        var paths = Set<String>()
        try walk(root, "", parentMatched: false) { paths.insert($0) }
        return paths
    }

    /// Returns whether anything is left in `relative` (a directory).
    @discardableResult
    private func walk(_ root: String, _ relative: String, parentMatched: Bool, drop: (String) throws -> Void) throws -> Bool {
        let fm = FileManager.default
        var kept = false
        for name in try fm.contentsOfDirectory(atPath: root + "/" + relative).sorted() {
            let path = relative.isEmpty ? name : relative + "/" + name
            let full = root + "/" + path
            let isDirectory = (try? fm.attributesOfItem(atPath: full)[.type] as? FileAttributeType) == .typeDirectory
            let matched = matches(path, isDirectory: isDirectory) ?? parentMatched
            switch mode {
            case .exclude:
                if matched {
                    try drop(path)
                } else {
                    kept = true
                    if isDirectory { try walk(root, path, parentMatched: false, drop: drop) }
                }
            case .include:
                // A directory stays while it is included or something inside it is.
                let keep = isDirectory ? try walk(root, path, parentMatched: matched, drop: drop) || matched : matched
                if keep {
                    kept = true
                } else {
                    try drop(path)
                }
            }
        }
        return kept
    }
}

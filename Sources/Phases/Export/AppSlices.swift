import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// The app directory split by slices (buildpack.md, launch.toml `[[slices]]`).
enum AppSlices {
    /// One include set per slice that matched something, then the rest (always one set, even
    /// when empty). Each set holds matched paths and their parents; a path belongs to the first
    /// slice whose glob matches it or one of its parents. No slices: the whole directory (`nil`).
    static func split(_ appDirectory: String, _ slices: [LaunchFile.Slice]) throws(LifecycleError) -> [Set<String>?] {
        guard !slices.isEmpty else { return [nil] }
        let all: [(path: String, isDir: Bool)]
        do { all = try walk(appDirectory) } catch { throw .io(operation: "read", path: appDirectory, reason: "\(error)") }
        var owner: [String: Int] = [:]
        for (i, slice) in slices.enumerated() {
            let patterns = slice.paths.map { relative($0, to: appDirectory) }
            for entry in all where owner[entry.path] == nil && matches(entry.path, patterns) {
                owner[entry.path] = i
            }
        }
        var sets = [Set<String>](repeating: [], count: slices.count + 1)
        for (n, entry) in all.enumerated() {
            let i = owner[entry.path] ?? slices.count
            // An unowned directory with entries below it comes along as their parent, wherever they go.
            let hasChildren = n + 1 < all.count && all[n + 1].path.hasPrefix(entry.path + "/")
            if entry.isDir && owner[entry.path] == nil && hasChildren { continue }
            var p = entry.path
            sets[i].insert(p)
            while let slash = p.lastIndex(of: "/") {
                p = String(p[..<slash])
                sets[i].insert(p)
            }
        }
        var out: [Set<String>?] = sets.dropLast().filter { !$0.isEmpty }
        out.append(sets.last!)
        return out
    }

    /// Every entry below `directory`, depth first in name order, as relative paths.
    static func walk(_ directory: String) throws -> [(path: String, isDir: Bool)] {
        var all: [(path: String, isDir: Bool)] = []
        func visit(_ dir: String, _ inner: String) throws {
            for name in try FS.listDirectory(dir).sorted() {
                let rel = inner + name
                let isDir = FS.isDirectory(dir + "/" + name)
                all.append((rel, isDir))
                if isDir { try visit(dir + "/" + name, rel + "/") }
            }
        }
        try visit(directory, "")
        return all
    }

    /// A slice path relative to the app directory (slices may name it absolutely or with `./`).
    static func relative(_ path: String, to appDirectory: String) -> String {
        var p = path
        if p.hasPrefix(appDirectory + "/") { p = String(p.dropFirst(appDirectory.count + 1)) }
        while p.hasPrefix("./") { p = String(p.dropFirst(2)) }
        return p
    }

    /// Whether `path` or one of its parents matches one of the globs.
    static func matches(_ path: String, _ patterns: [String]) -> Bool {
        var candidate = path
        while true {
            if patterns.contains(where: { fnmatch($0, candidate, FNM_PATHNAME) == 0 }) { return true }
            guard let slash = candidate.lastIndex(of: "/") else { return false }
            candidate = String(candidate[..<slash])
        }
    }
}

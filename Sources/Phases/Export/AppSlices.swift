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

    /// Files of at least `minimumBytes` get a layer each (issue 42), after the buildpacks' slices
    /// (a file one of them names stays in it): editing the rest of the app then rewrites only
    /// the rest, and an unchanged large file's layer is reused by its fingerprint without being
    /// read — jib splits dependencies from classes for the same reason. At most `limit`, in path
    /// order. `CAIRN_LARGE_FILE_LAYER_MB` sets the size (default 64; 0: none).
    static func largeFileSlices(_ appDirectory: String, minimumBytes: Int64, limit: Int = 16) throws(LifecycleError) -> [LaunchFile.Slice] {
        guard minimumBytes > 0 else { return [] }
        let all: [(path: String, isDir: Bool)]
        do { all = try walk(appDirectory) } catch { throw .io(operation: "read", path: appDirectory, reason: "\(error)") }
        var out: [LaunchFile.Slice] = []
        for entry in all where !entry.isDir && out.count < limit {
            var st = stat()
            guard lstat(appDirectory + "/" + entry.path, &st) == 0, st.st_mode & S_IFMT == S_IFREG, Int64(st.st_size) >= minimumBytes else { continue }
            out.append(LaunchFile.Slice(paths: [escapeGlob(entry.path)]))
        }
        return out
    }

    static func largeFileMinimum(_ environment: [String: String]) throws(LifecycleError) -> Int64 {
        guard let text = environment["CAIRN_LARGE_FILE_LAYER_MB"], !text.isEmpty else { return 64 << 20 }
        guard let mb = Int64(text), mb >= 0, mb < 1 << 40 else {
            throw .invalidArgument("CAIRN_LARGE_FILE_LAYER_MB", reason: "\"\(text)\" is not a size in MB (0 turns large-file layers off)")
        }
        return mb << 20
    }

    /// `path` as a glob matching only itself (fnmatch escapes).
    static func escapeGlob(_ path: String) -> String {
        var out = ""
        for c in path {
            if c == "*" || c == "?" || c == "[" || c == "\\" { out.append("\\") }
            out.append(c)
        }
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

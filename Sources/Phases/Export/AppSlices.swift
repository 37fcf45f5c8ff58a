import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// The app directory split by slices (buildpack.md, launch.toml `[[slices]]`).
enum AppSlices {
    /// An entry below the app directory: its relative path, whether it is a directory (a link to
    /// one counts, as the walk follows it), and its size when it is a regular file.
    typealias Entry = (path: String, isDir: Bool, fileSize: Int64?)

    /// One include set per slice that matched something, then the rest (always one set, even
    /// when empty). Each set holds matched paths and their parents; a path belongs to the first
    /// slice whose glob matches it or one of its parents. The slices are `slices`, then one per
    /// file of at least `largeFiles` bytes (`largeFileSlices`; 0: none), found by the same walk.
    /// No slices: the whole directory (`nil`).
    /// `stats` gets the walk's lstat of every entry, for the slices' fingerprints.
    static func split(_ appDirectory: String, _ slices: [LaunchFile.Slice], largeFiles: Int64 = 0,
                      stats: Fingerprint.StatCache? = nil) throws(LifecycleError) -> [Set<String>?] {
        guard !slices.isEmpty || largeFiles > 0 else { return [nil] }
        let all: [Entry]
        do { all = try walk(appDirectory, stats: stats) } catch { throw .io(operation: "read", path: appDirectory, reason: "\(error)") }
        let given = slices.count
        let large = largeFilePaths(all, minimumBytes: largeFiles)
        let slices = slices + large.map { LaunchFile.Slice(paths: [escapeGlob($0)]) }
        guard !slices.isEmpty else { return [nil] }
        var owner: [String: Int] = [:]
        for (i, slice) in slices.enumerated() {
            if i >= given {
                // A large file's slice names that one regular file: owned by path, not by
                // matching its glob against every entry (20,000 entries x 7 slices of fnmatch
                // calls were most of a warm export's time).
                if owner[large[i - given]] == nil { owner[large[i - given]] = i }
                continue
            }
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
            // A parent already in the set has its own parents there too: stop at it (each
            // directory's chain is added once, not once per entry below it).
            while let slash = p.lastIndex(of: "/") {
                p = String(p[..<slash])
                if !sets[i].insert(p).inserted { break }
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
    static func largeFileSlices(_ all: [Entry], minimumBytes: Int64, limit: Int = 16) -> [LaunchFile.Slice] {
        largeFilePaths(all, minimumBytes: minimumBytes, limit: limit).map { LaunchFile.Slice(paths: [escapeGlob($0)]) }
    }

    /// The files `largeFileSlices` makes slices of, in the same order.
    static func largeFilePaths(_ all: [Entry], minimumBytes: Int64, limit: Int = 16) -> [String] {
        guard minimumBytes > 0 else { return [] }
        var out: [String] = []
        for entry in all where out.count < limit {
            guard let size = entry.fileSize, size >= minimumBytes else { continue }
            out.append(entry.path)
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

    /// Every entry below `directory`, depth first in name order, as relative paths (one lstat
    /// each; a symbolic link is followed to see whether it leads to a directory).
    static func walk(_ directory: String, stats: Fingerprint.StatCache? = nil) throws -> [Entry] {
        var all: [Entry] = []
        func visit(_ dir: String, _ inner: String) throws {
            for name in try FS.listDirectory(dir).sorted() {
                let rel = inner + name
                let path = dir + "/" + name
                var st = stat()
                let found = lstat(path, &st) == 0
                if found { stats?.entries[rel] = st }
                let kind = st.st_mode & S_IFMT
                let isDir = found && (kind == S_IFDIR || (kind == S_IFLNK && FS.isDirectory(path)))
                all.append((rel, isDir, found && kind == S_IFREG ? Int64(st.st_size) : nil))
                if isDir { try visit(path, rel + "/") }
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

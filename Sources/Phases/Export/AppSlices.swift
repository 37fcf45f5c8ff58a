import Buildpacks
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// The app directory split by slices (buildpack.md, launch.toml `[[slices]]`).
enum AppSlices {
    /// An entry below the app directory, as the walk found it.
    struct Entry: Sendable {
        /// Relative to the app directory.
        var path: String
        /// Its lstat: a link is not followed (the layer holds the link, not what it leads to).
        var st: stat
        /// The index of its directory's entry; -1 at the top.
        var parent: Int
        var isDir: Bool { st.st_mode & S_IFMT == S_IFDIR }
        /// Its size when it is a regular file.
        var fileSize: Int64? { st.st_mode & S_IFMT == S_IFREG ? Int64(st.st_size) : nil }
    }

    /// The app's layers, found by one walk: each layer's fingerprint comes from the walk's lstats
    /// (no second walk, no set lookups: a 20,000-file app's warm export reads nothing else),
    /// and a layer's include set is made only when the layer is written.
    struct Slicing: Sendable {
        let directory: String
        let entries: [Entry]
        /// Per layer, its entries' indices in walk order; the last layer is the rest. nil: one
        /// layer, the whole directory (no slices).
        let members: [[Int]]?
        var count: Int { members?.count ?? 1 }

        /// The paths layer `i` holds, or nil for the whole directory.
        func include(_ i: Int) -> Set<String>? {
            members.map { Set($0[i].map { entries[$0].path }) }
        }

        /// `Fingerprint.of(directory, include: include(i))`, from the walk's lstats.
        func fingerprint(_ i: Int) throws -> String {
            var d = DigestingCounter()
            func add(_ e: Entry) throws { try Fingerprint.update(&d, rel: e.path, path: directory + "/" + e.path, e.st) }
            if let members { for n in members[i] { try add(entries[n]) } } else { for e in entries { try add(e) } }
            return d.finalize().description
        }
    }

    /// One layer per slice that matched something, then the rest (always one, even when
    /// empty). A layer holds matched paths and their parents; a path belongs to the first slice
    /// whose glob matches it or one of its parents. The slices are `slices`, then one per file
    /// of at least `largeFiles` bytes (`largeFileIndices`; 0: none), found by the same walk.
    static func slicing(_ appDirectory: String, _ slices: [LaunchFile.Slice], largeFiles: Int64 = 0) throws(LifecycleError) -> Slicing {
        let all: [Entry]
        do { all = try walk(appDirectory) } catch let e as LifecycleError { throw e } catch {
            throw .io(operation: "read", path: appDirectory, reason: "\(error)")
        }
        let large = largeFileIndices(all, minimumBytes: largeFiles)
        let rest = slices.count + large.count
        guard rest > 0 else { return Slicing(directory: appDirectory, entries: all, members: nil) }
        var owner = [Int](repeating: rest, count: all.count)
        for (i, slice) in slices.enumerated() {
            let patterns = slice.paths.map { relative($0, to: appDirectory) }
            for n in all.indices where owner[n] == rest && matches(all[n].path, patterns) { owner[n] = i }
        }
        // A large file's layer is that one file, owned by its index (not by matching a glob of
        // its name against every entry: 20,000 entries x 7 files were most of a warm export).
        for (j, n) in large.enumerated() where owner[n] == rest { owner[n] = slices.count + j }
        var marked = [[Bool]](repeating: [], count: rest + 1)
        for n in all.indices {
            let i = owner[n]
            // An unowned directory with entries below it comes along as their parent, wherever they go.
            if i == rest && all[n].isDir && n + 1 < all.count && all[n + 1].parent == n { continue }
            if marked[i].isEmpty { marked[i] = [Bool](repeating: false, count: all.count) }
            // A parent already marked has its own parents marked too: stop at it.
            var p = n
            while p >= 0 && !marked[i][p] { marked[i][p] = true; p = all[p].parent }
        }
        func indices(_ flags: [Bool]) -> [Int] { flags.indices.filter { flags[$0] } }
        var members = marked.dropLast().filter { !$0.isEmpty }.map(indices)
        members.append(indices(marked[rest]))
        return Slicing(directory: appDirectory, entries: all, members: members)
    }

    /// Files of at least `minimumBytes` get a layer each (issue 42), after the buildpacks' slices
    /// (a file one of them names stays in it): editing the rest of the app then rewrites only
    /// the rest, and an unchanged large file's layer is reused by its fingerprint without being
    /// read — jib splits dependencies from classes for the same reason. At most `limit`, in path
    /// order. `CAIRN_LARGE_FILE_LAYER_MB` sets the size (default 64; 0: none).
    static func largeFileIndices(_ all: [Entry], minimumBytes: Int64, limit: Int = 16) -> [Int] {
        guard minimumBytes > 0 else { return [] }
        var out: [Int] = []
        for n in all.indices where out.count < limit {
            guard let size = all[n].fileSize, size >= minimumBytes else { continue }
            out.append(n)
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

    /// Every entry below `directory`, depth first, names in `Fingerprint`'s order, as relative
    /// paths (one lstat each; links are not followed).
    static func walk(_ directory: String) throws -> [Entry] {
        var all: [Entry] = []
        func visit(_ dir: String, _ inner: String, _ parent: Int) throws {
            for name in Fingerprint.sorted(try FS.listDirectory(dir)) {
                let path = dir + "/" + name
                var st = stat()
                guard lstat(path, &st) == 0 else { throw LifecycleError.io(operation: "stat", path: path, reason: String(cString: strerror(errno))) }
                all.append(Entry(path: inner + name, st: st, parent: parent))
                if all[all.count - 1].isDir { try visit(path, inner + name + "/", all.count - 1) }
            }
        }
        try visit(directory, "", -1)
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

import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// Copies build-context files into an image root for COPY and ADD: destinations resolved inside
/// the root (symlinks of the image never lead out of it), new parents created, every copied entry
/// owned by `owner` and, with `--chmod`, given `mode`.
struct FileCopier {
    let root: String
    let owner: (uid: Int, gid: Int)
    let mode: mode_t?

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    func copyFile(_ source: String, to destination: String) throws(ExtendError) {
        var target = RootPath(root: root).resolve(destination)
        if Self.isDirectory(target) { target += "/" + URL(fileURLWithPath: source).lastPathComponent }
        try makeParents(of: target)
        try copyEntry(source, to: target)
    }

    func copyContents(of directory: String, to destination: String) throws(ExtendError) {
        let target = RootPath(root: root).resolve(destination)
        try makeParents(of: target + "/.")
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted() } catch {
            throw .environment("cannot read \(directory): \(error)")
        }
        for name in names { try copyEntry(directory + "/" + name, to: target + "/" + name) }
    }

    /// Unpacks a tar archive (plain, gzip or zstd) into `destination`.
    func unpack(_ archive: String, into destination: String) throws(ExtendError) {
        let target = RootPath(root: root).resolve(destination)
        try makeParents(of: target + "/.")
        do { _ = try LayerExtractor.apply(blobPath: archive, to: target, layerName: archive) } catch {
            throw .environment("cannot unpack \(archive): \(error)")
        }
    }

    /// Copies one entry (a file, a symlink, or a directory with everything below it).
    private func copyEntry(_ source: String, to target: String) throws(ExtendError) {
        var st = stat()
        guard lstat(source, &st) == 0 else { throw .environment("cannot read \(source): \(String(cString: strerror(errno)))") }
        if Self.existsNotDirectory(target) || ((st.st_mode & S_IFMT) != S_IFDIR && Self.isDirectoryNoFollow(target)) {
            try? FileManager.default.removeItem(atPath: target)
        }
        do {
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                if !Self.isDirectoryNoFollow(target) { try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false) }
                for name in try FileManager.default.contentsOfDirectory(atPath: source).sorted() {
                    try copyEntry(source + "/" + name, to: target + "/" + name)
                }
            case S_IFLNK:
                try FileManager.default.createSymbolicLink(atPath: target, withDestinationPath: try FileManager.default.destinationOfSymbolicLink(atPath: source))
            case S_IFREG:
                try FileManager.default.copyItem(atPath: source, toPath: target)
            default:
                return   // devices, fifos and sockets of a context are not copied
            }
        } catch let e as ExtendError {
            throw e
        } catch {
            throw .environment("cannot copy \(source) into the image: \(error)")
        }
        // COPY --chown / the build user: a file left owned by someone else would change the image.
        guard lchown(target, uid_t(owner.uid), gid_t(owner.gid)) == 0 else {
            throw .environment("cannot give \(target) to \(owner.uid):\(owner.gid): \(String(cString: strerror(errno)))")
        }
        if (st.st_mode & S_IFMT) != S_IFLNK, chmod(target, mode ?? (st.st_mode & 0o7777)) != 0 {
            throw .environment("cannot set the mode of \(target): \(String(cString: strerror(errno)))")
        }
    }

    private func makeParents(of target: String) throws(ExtendError) {
        let parent = URL(fileURLWithPath: target).deletingLastPathComponent().path
        do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
            throw .environment("cannot create \(parent) in the image: \(error)")
        }
    }

    static func isDirectoryNoFollow(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func existsNotDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFDIR
    }
}

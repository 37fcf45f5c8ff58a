import FoundationEssentials
import OCI
import Sandbox

#if canImport(Glibc)
import Glibc
#endif

/// An image being extended, as overlayfs layers over its unpacked base: each instruction that may
/// change files gets a fresh upper directory mounted over the base and the uppers before it, so
/// what it changed (whiteouts and opaque directories included) is exactly its upper directory.
/// The base is never written. Needs root (overlay mounts).
final class OverlayStack: ExtendWorkspace {
    let base: String
    let scratch: String
    /// Upper directories of the layers so far, bottom first.
    private(set) var uppers: [String] = []
    private var counter = 0

    init(base: String, scratch: String) throws(ExtendError) {
        guard geteuid() == 0 else {
            throw .environment("""
                applying image extension Dockerfiles needs root (overlay mounts and runc); \
                run as root, or use a builder without extensions
                """)
        }
        self.base = base
        self.scratch = scratch
        do { try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true) } catch {
            throw .environment("cannot create \(scratch): \(error)")
        }
    }

    /// Mounts a new upper directory over the stack and calls `body` with the merged root. Keeps
    /// the upper as a layer when `body` changed something; returns it (nil when nothing changed).
    func change(_ body: (String) throws(ExtendError) -> Void) throws(ExtendError) -> LayerSource? {
        counter += 1
        // Short names: the mount options (every lower directory) must fit in one page.
        let upper = scratch + "/\(counter)"
        let work = scratch + "/w\(counter)"
        let merged = scratch + "/m\(counter)"
        for d in [upper, work, merged] {
            do { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) } catch {
                throw .environment("cannot create \(d): \(error)")
            }
        }
        let lower = (uppers.reversed() + [base]).joined(separator: ":")
        let options = "lowerdir=\(lower),upperdir=\(upper),workdir=\(work)"
        guard options.utf8.count < 4000 else {
            throw .environment("too many layers for one overlay mount (\(uppers.count)); combine RUN instructions")
        }
        guard mount("overlay", merged, "overlay", 0, options) == 0 else {
            throw .environment("cannot mount an overlay on \(merged): \(String(cString: strerror(errno)))")
        }
        var failure: ExtendError?
        do { try body(merged) } catch { failure = error }
        umount2(merged, Int32(MNT_DETACH))
        try? FileManager.default.removeItem(atPath: work)
        try? FileManager.default.removeItem(atPath: merged)
        if let failure {
            try? FileManager.default.removeItem(atPath: upper)
            throw failure
        }
        let changed = !((try? FileManager.default.contentsOfDirectory(atPath: upper)) ?? []).isEmpty
        guard changed else {
            try? FileManager.default.removeItem(atPath: upper)
            return nil
        }
        uppers.append(upper)
        return .overlayUpper(upper)
    }

    /// Not mounted between instructions: user lookups read the uppers, then the base.
    var lookupRoots: [String] { uppers.reversed() + [base] }

    /// Runs the command with runc over the merged root, host network (package managers need it).
    func run(_ command: [String], environment: [String], workingDirectory: String, user: (uid: Int, gid: Int),
             root: String) throws(ExtendError) -> Int32 {
        let points = ["/etc/resolv.conf", "/etc/hosts", "/proc", "/dev", "/sys", "/tmp", "/etc"]
        let existed = Set(points.filter { FS.exists(root + $0) })
        let bundle = RuncBundle(directory: scratch + "/bundle", rootfs: root,
                                process: ContainerProcess(args: command, env: environment, cwd: workingDirectory, uid: user.uid, gid: user.gid))
        let status: Int32
        do {
            try bundle.write()
            status = try bundle.run(id: "cairn-extend-\(getpid())-\(UUID().uuidString.prefix(8))")
        } catch {
            throw .environment("cannot run \(command.joined(separator: " ")) with runc: \(error)")
        }
        try? FileManager.default.removeItem(atPath: scratch + "/bundle")
        // Mount points runc made in a root that lacked them are not the command's doing.
        for point in points where !existed.contains(point) {
            let path = root + point
            if rmdir(path) != 0 {
                var st = stat()
                if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && st.st_size == 0 { unlink(path) }
            }
        }
        return status
    }


    /// Removes the upper directories.
    func remove() {
        try? FileManager.default.removeItem(atPath: scratch)
    }
}

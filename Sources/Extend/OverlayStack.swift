import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An image being extended, as overlayfs layers over its unpacked base: each instruction that may
/// change files gets a fresh upper directory mounted over the base and the uppers before it, so
/// what it changed (whiteouts and opaque directories included) is exactly its upper directory.
/// The base is never written. Needs root (overlay mounts).
final class OverlayStack {
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
    func withNewLayer(_ body: (String) throws(ExtendError) -> Void) throws(ExtendError) -> String? {
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
        return upper
    }

    /// Removes the upper directories.
    func remove() {
        try? FileManager.default.removeItem(atPath: scratch)
    }
}

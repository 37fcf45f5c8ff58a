import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// What one instruction changed, to be written as a layer.
enum LayerSource {
    /// An overlayfs upper directory.
    case overlayUpper(String)
    /// Paths (relative to `root`) that are new or changed, and paths that were deleted.
    case changes(root: String, changed: [String], deleted: [String])
}

/// Where Dockerfile instructions change files and run commands: over overlay layers of an
/// unpacked image on the host (`OverlayStack`), or in place in the container the extender runs
/// in (`InPlaceRoot`), as platform.md's extender runs in the build or run environment.
protocol ExtendWorkspace: AnyObject {
    /// Calls `body` with the root an instruction changes; returns what it changed (nil: nothing).
    func change(_ body: (String) throws(ExtendError) -> Void) throws(ExtendError) -> LayerSource?
    /// Runs a RUN command over `root` as `user`; returns its exit status.
    func run(_ command: [String], environment: [String], workingDirectory: String, user: (uid: Int, gid: Int),
             root: String) throws(ExtendError) -> Int32
    /// Roots to read the image's current `/etc/passwd` and `/etc/group` from, topmost first.
    var lookupRoots: [String] { get }
}

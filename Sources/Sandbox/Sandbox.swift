import CairnBasics
import FoundationEssentials
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// Errors of running things in a root filesystem.
public enum SandboxError: Error, CustomStringConvertible, Sendable {
    case toolMissing(tool: String, package: String, purpose: String)
    case failed(what: String, status: Int32, detail: String)

    public var description: String {
        switch self {
        case .toolMissing(let tool, let package, let purpose):
            return "\(tool) is not installed (needed to \(purpose)); install it with: apt-get install -y \(package)"
        case .failed(let what, let status, let detail):
            return "\(what) failed with status \(status)\(detail.isEmpty ? "" : ": " + detail)"
        }
    }
}

/// Finds an executable on PATH.
public func findExecutable(_ name: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
    // Host tools: an empty PATH entry (the working directory) is not searched; the sbin
    // directories are, last, since a non-root PATH often lacks them.
    searchPath(name, in: (environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") + ":/usr/sbin:/sbin",
               emptyIsCurrent: false)
}

/// A bind mount into the sandbox.
public struct Mount: Sendable, Hashable {
    public var source: String
    public var target: String
    public var writable: Bool
    public init(_ source: String, at target: String, writable: Bool = true) {
        self.source = source
        self.target = target
        self.writable = writable
    }
}

/// A bubblewrap invocation: a root filesystem (read-only, or a throwaway overlay), bind mounts,
/// fresh /proc, /dev and /tmp, a clean environment, and new PID/IPC/UTS (and optionally network)
/// namespaces. Knows nothing about buildpacks.
public struct Bubblewrap: Sendable {
    public var rootfs: String
    public var mounts: [Mount] = []
    public var environment: [String: String] = [:]
    public var workingDirectory = "/"
    public var network = true
    /// Bind the root writable (the caller gives a throwaway copy-on-write view); else read-only.
    public var writableRoot = false
    /// When not root on the host, the uid/gid to appear as inside a new user namespace.
    public var mapUser: (uid: Int, gid: Int)?
    /// As root on the host: start bubblewrap as this user (setpriv), in a user namespace where it
    /// is this user, for phases the spec runs as the CNB user.
    public var runAs: (uid: Int, gid: Int)?
    /// At most this many processes of the sandbox's users (RLIMIT_NPROC, inherited by every
    /// process in it, also after a drop to the build user): a fork bomb fails its forks instead
    /// of filling the host's process table. Clamped to this process's own hard limit.
    public var maxProcesses: Int?
    /// The sandboxed command reads this process's stdin (`cairn run -i`).
    public var interactive = false

    public init(rootfs: String) { self.rootfs = rootfs }

    public static func locate() throws -> String {
        guard let path = findExecutable("bwrap") else {
            throw SandboxError.toolMissing(tool: "bwrap", package: "bubblewrap", purpose: "run builds in a sandbox")
        }
        return path
    }

    /// The mount points every sandbox gets from bubblewrap itself.
    static let systemMountPoints = ["/proc", "/dev", "/tmp"]

    /// The argument vector for `bwrap`, ending in `command`.
    ///
    /// Base images need no mount points of their own (FROM-scratch images, bare `--rootfs`
    /// directories): when the root lacks one that bwrap would have to create in a read-only
    /// bind, the root is composed instead on bwrap's own tmpfs, each top-level entry of the image
    /// bound (or linked) at its place, so the missing directories are made on the tmpfs.
    public func arguments(_ command: [String]) -> [String] {
        var a: [String] = []
        let targets = Self.systemMountPoints + mounts.map(\.target)
        let missing = targets.contains { !Self.directoryExists(rootfs + $0) }
        if missing && !writableRoot {
            a += composedRoot()
        } else {
            a += [writableRoot ? "--bind" : "--ro-bind", rootfs, "/"]
        }
        a += ["--proc", "/proc", "--dev", "/dev", "--perms", "01777", "--tmpfs", "/tmp"]
        // Directories above a mount point that the root lacks are made on the tmpfs root with the
        // usual mode (bwrap alone would make them 0700: only root could pass through).
        var made = Set<String>()
        for m in mounts {
            var parent = URL(fileURLWithPath: m.target).deletingLastPathComponent().path
            var chain: [String] = []
            while parent != "/" && !Self.directoryExists(rootfs + parent) && !made.contains(parent) {
                chain.append(parent)
                parent = URL(fileURLWithPath: parent).deletingLastPathComponent().path
            }
            for dir in chain.reversed() where made.insert(dir).inserted { a += ["--perms", "0755", "--dir", dir] }
        }
        for m in mounts { a += [m.writable ? "--bind" : "--ro-bind", m.source, m.target] }
        for file in ["/etc/resolv.conf", "/etc/hosts"] where network && FileManager.default.fileExists(atPath: file) {
            if FileManager.default.fileExists(atPath: rootfs + file) { a += ["--ro-bind-try", file, file] }
        }
        a += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"]
        if !network { a += ["--unshare-net"] }
        if let mapUser { a += ["--unshare-user", "--uid", "\(mapUser.uid)", "--gid", "\(mapUser.gid)"] }
        a += ["--clearenv"]
        for (k, v) in environment.sorted(by: { $0.key < $1.key }) { a += ["--setenv", k, v] }
        a += ["--chdir", workingDirectory, "--"]
        return a + command
    }

    /// The image's top-level entries placed on bwrap's tmpfs root: directories and files bound
    /// read-only, symbolic links recreated.
    func composedRoot() -> [String] {
        var a: [String] = []
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: rootfs)) ?? []).sorted()
        for name in entries {
            let path = rootfs + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFLNK {
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) { a += ["--symlink", target, "/" + name] }
            } else if (st.st_mode & S_IFMT) == S_IFDIR || (st.st_mode & S_IFMT) == S_IFREG {
                a += ["--ro-bind", path, "/" + name]
            }
        }
        return a
    }

    static func directoryExists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Runs `command` in the sandbox with stdout/stderr inherited; returns its exit status.
    /// A writable root (a throwaway copy-on-write view) gets the mount points it lacks.
    public func run(_ command: [String]) throws -> Int32 {
        try run(command, timeout: nil).status
    }

    /// `run`, killed after `timeout`: bwrap goes with SIGKILL, and with it (--die-with-parent,
    /// --unshare-pid) every process in the sandbox. The result says whether that happened.
    public func run(_ command: [String], timeout: Duration?) throws -> ProcessResult {
        if writableRoot {
            for point in Self.systemMountPoints + mounts.map(\.target) where !Self.directoryExists(rootfs + point) {
                try? FileManager.default.createDirectory(atPath: rootfs + point, withIntermediateDirectories: true)
            }
        }
        // A bubblewrap sandbox cannot be entered as root and then left: the drop to the build
        // user happens before bwrap starts (cairn_spawn: setgroups, setgid, setuid).
        var sandbox = self
        var user: (uid: Int, gid: Int)?
        if let runAs, geteuid() == 0 {
            sandbox.mapUser = runAs
            user = (runAs.uid, runAs.gid)
        }
        var spec = ProcessSpec(path: try Self.locate(), arguments: sandbox.arguments(command),
                               environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], user: user, timeout: timeout)
        if let maxProcesses {
            var limit = rlimit()
            getrlimit(__rlimit_resource_t(__RLIMIT_NPROC.rawValue), &limit)
            spec.maxProcesses = limit.rlim_max == rlim_t.max ? maxProcesses : min(maxProcesses, Int(limit.rlim_max))
        }
        spec.inheritInput = interactive
        return try ChildProcess.run(spec)
    }
}

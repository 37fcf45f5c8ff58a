import Dispatch
import FoundationEssentials
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// A process to run from an image config.
public struct ContainerProcess: Sendable {
    public var args: [String]
    public var env: [String]
    public var cwd: String
    public var uid: Int
    public var gid: Int
    public var terminal = false
    public init(args: [String], env: [String], cwd: String, uid: Int, gid: Int) {
        self.args = args
        self.env = env
        self.cwd = cwd
        self.uid = uid
        self.gid = gid
    }
}

/// An OCI runtime bundle for `runc`: config.json over a root filesystem, host network,
/// new PID/IPC/UTS/mount namespaces, default capabilities of a container.
public struct RuncBundle: Sendable {
    public var directory: String
    public var rootfs: String
    public var process: ContainerProcess
    public var hostname = "cairn"

    public init(directory: String, rootfs: String, process: ContainerProcess) {
        self.directory = directory
        self.rootfs = rootfs
        self.process = process
    }

    public static func locate() throws -> String {
        guard let path = findExecutable("runc") else {
            throw SandboxError.toolMissing(tool: "runc", package: "runc", purpose: "run images")
        }
        return path
    }

    /// The runtime-spec config (opencontainers/runtime-spec config.md): the fields Cairn sets.
    struct RuntimeConfig: Encodable {
        struct Process: Encodable {
            struct User: Encodable { var uid, gid: Int }
            struct Capabilities: Encodable { var bounding, effective, permitted: [String] }
            struct RLimit: Encodable { var type: String; var hard, soft: Int }
            var terminal: Bool
            var user: User
            var args, env: [String]
            var cwd: String
            var capabilities: Capabilities
            var rlimits: [RLimit]
            var noNewPrivileges: Bool
        }
        struct Root: Encodable { var path: String; var readonly: Bool }
        struct Mount: Encodable {
            var destination, type, source: String
            var options: [String]?
        }
        struct Linux: Encodable {
            struct Namespace: Encodable { var type: String }
            var namespaces: [Namespace]
            var maskedPaths, readonlyPaths: [String]
        }
        var ociVersion: String
        var process: Process
        var root: Root
        var hostname: String
        var mounts: [Mount]
        var linux: Linux
    }

    func config() -> RuntimeConfig {
        let caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
                    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
        typealias M = RuntimeConfig.Mount
        var mounts = [
            M(destination: "/proc", type: "proc", source: "proc"),
            M(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            M(destination: "/dev/pts", type: "devpts", source: "devpts",
              options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
            M(destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            M(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            M(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
            M(destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"]),
        ]
        for file in ["/etc/resolv.conf", "/etc/hosts"] where FileManager.default.fileExists(atPath: file) {
            mounts.append(M(destination: file, type: "bind", source: file, options: ["rbind", "ro"]))
        }
        return RuntimeConfig(
            ociVersion: "1.0.2",
            process: .init(terminal: process.terminal, user: .init(uid: process.uid, gid: process.gid), args: process.args,
                           env: process.env, cwd: process.cwd,
                           capabilities: .init(bounding: caps, effective: caps, permitted: caps),
                           rlimits: [.init(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024)], noNewPrivileges: true),
            root: .init(path: rootfs, readonly: false),
            hostname: hostname,
            mounts: mounts,
            // No network namespace: the container shares the host network.
            linux: .init(namespaces: ["pid", "ipc", "uts", "mount"].map { .init(type: $0) },
                         maskedPaths: ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
                         readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]))
    }

    public func write() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(config()).write(to: URL(fileURLWithPath: directory + "/config.json"), options: .atomic)
    }

    /// Runs the bundle in the foreground as container `id`. SIGINT/SIGTERM are passed to the
    /// container; if it has not stopped 5 s later it is killed. The container is deleted after.
    /// - Returns: the container process's exit status.
    /// Runs the container in the foreground; `interactive` gives it this process's stdin (with
    /// `process.terminal`, runc puts it on a new pseudo-terminal).
    public func run(id: String, interactive: Bool = false) throws -> Int32 {
        let runc = try Self.locate()
        defer { _ = try? ChildProcess.tool(runc, ["delete", "--force", id]) }
        var spec = ProcessSpec(path: runc, arguments: ["run", "--bundle", directory, id])
        spec.inheritInput = interactive
        return try ChildProcess.run(spec) { sig in
            _ = try? ChildProcess.tool(runc, ["kill", id, sig == SIGINT ? "INT" : "TERM"])
            DispatchQueue.global().asyncAfter(deadline: .now() + 5) {
                _ = try? ChildProcess.tool(runc, ["kill", id, "KILL"])
            }
        }.status
    }
}

/// A copy-on-write view of a directory: an overlay mount whose writes go to a scratch upper
/// directory (root only).
public struct OverlayMount: Sendable {
    public let target: String
    let scratch: String

    public init(lower: String, scratch: String) throws {
        self.scratch = scratch
        target = scratch + "/merged"
        for d in ["upper", "work", "merged"] {
            try FileManager.default.createDirectory(atPath: scratch + "/" + d, withIntermediateDirectories: true)
        }
        let options = "lowerdir=\(lower),upperdir=\(scratch)/upper,workdir=\(scratch)/work"
        guard mount("overlay", target, "overlay", 0, options) == 0 else {
            throw SandboxError.failed(what: "mount overlay on \(target)", status: errno, detail: String(cString: strerror(errno)))
        }
    }

    public func remove() {
        umount2(target, Int32(MNT_DETACH))
        try? FileManager.default.removeItem(atPath: scratch)
    }
}

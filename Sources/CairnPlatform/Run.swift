import Buildpacks
import Foundation
import OCI
import Sandbox

#if canImport(Glibc)
import Glibc
#endif

/// What `cairn run` was asked to do.
public struct RunRequest: Sendable {
    public var image: String
    public var processType: String?
    public var args: [String] = []
    public var env: [String] = []
    public var runtime: Runtime = .auto
    /// `--entrypoint`: replaces the image's Entrypoint (`args` then replace its Cmd), as docker's.
    public var entrypoint: String?
    /// `-i`: the container reads this process's stdin.
    public var interactive = false
    /// `-t`: on a pseudo-terminal (runc); needs `interactive`.
    public var tty = false

    /// `runc` when usable (root and installed), else bubblewrap.
    public enum Runtime: String, Sendable, CaseIterable {
        case auto, runc, bwrap
    }

    public init(image: String) { self.image = image }
}

/// `cairn run`: the image's unpacked root (cached per digest) under a copy-on-write overlay,
/// an OCI runtime bundle from the image config, run by `runc` on the host network; bubblewrap
/// when runc cannot be used (not root, or runc missing).
public struct ImageRunner {
    public var store: ImageStore
    public var home: String
    public var log: (String) -> Void

    public init(store: ImageStore, home: String, log: @escaping (String) -> Void) {
        self.store = store
        self.home = home
        self.log = log
    }

    /// The container process an image config describes (OCI image-spec config: Entrypoint +
    /// Cmd, user arguments replacing Cmd).
    public static func process(_ config: ImageConfig, rootfs: String, request: RunRequest) throws -> ContainerProcess {
        let exec = config.config ?? ExecutionConfig()
        var entrypoint = exec.entrypoint ?? []
        var cmd = exec.cmd ?? []
        if let type = request.processType {
            // A link to the launcher, absolute inside the image: check the link itself.
            guard (try? FileManager.default.attributesOfItem(atPath: rootfs + CNBPath.processDir + "/" + type)) != nil else {
                let known = (try? FileManager.default.contentsOfDirectory(atPath: rootfs + CNBPath.processDir))?.sorted() ?? []
                throw PlatformError.image(reference: request.image, reason: "has no process type \(type)" + (known.isEmpty ? "" : " (it has: \(known.joined(separator: ", ")))"))
            }
            entrypoint = [CNBPath.processDir + "/" + type]
            cmd = []
        }
        if let given = request.entrypoint {
            guard request.processType == nil else { throw PlatformError.invalidArgument("--entrypoint", reason: "replaces the process: give it or --process, not both") }
            entrypoint = [given]
            cmd = []
        }
        if !request.args.isEmpty { cmd = request.args }
        if request.processType == nil, request.entrypoint == nil, cmd.isEmpty, entrypoint == [CNBPath.launcher] {
            // A buildpacks image without a default process: the launcher would exit 82.
            let known = (try? FileManager.default.contentsOfDirectory(atPath: rootfs + CNBPath.processDir))?.sorted() ?? []
            throw PlatformError.image(reference: request.image, reason: "has no default process: choose one with --process"
                                      + (known.isEmpty ? "" : " (it has: \(known.joined(separator: ", ")))") + ", or give a command after --")
        }
        let args = entrypoint + cmd
        guard !args.isEmpty else { throw PlatformError.image(reference: request.image, reason: "has no Entrypoint or Cmd and no command was given") }
        var env = exec.env ?? []
        for kv in request.env {
            guard let (name, _) = EnvEntry.split(kv) else { throw PlatformError.invalidArgument("--env \(kv)", reason: "expected NAME=VALUE") }
            env.removeAll { $0.hasPrefix(name + "=") }
            env.append(kv)
        }
        let (uid, gid) = try resolveUser(exec.user ?? "", rootfs: rootfs)
        var process = ContainerProcess(args: args, env: env, cwd: exec.workingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/", uid: uid, gid: gid)
        process.terminal = request.tty
        return process
    }

    /// `User` as `uid[:gid]` or `name[:group]`, names looked up in the image's /etc files.
    static func resolveUser(_ user: String, rootfs: String) throws -> (Int, Int) {
        guard !user.isEmpty else { return (0, 0) }
        let parts = user.split(separator: ":", maxSplits: 1).map(String.init)
        func lookup(_ file: String, _ name: String, field: Int) -> Int? {
            guard let text = try? String(contentsOfFile: rootfs + file, encoding: .utf8) else { return nil }
            for line in text.split(separator: "\n") {
                let f = line.split(separator: ":", omittingEmptySubsequences: false)
                if f.count > field, f[0] == name { return Int(f[field]) }
            }
            return nil
        }
        guard let uid = Int(parts[0]) ?? lookup("/etc/passwd", parts[0], field: 2) else {
            throw PlatformError.image(reference: "the image", reason: "has no user \(parts[0]) in its /etc/passwd")
        }
        var gid = uid
        if parts.count > 1 {
            guard let g = Int(parts[1]) ?? lookup("/etc/group", parts[1], field: 2) else {
                throw PlatformError.image(reference: "the image", reason: "has no group \(parts[1]) in its /etc/group")
            }
            gid = g
        } else if let text = try? String(contentsOfFile: rootfs + "/etc/passwd", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let f = line.split(separator: ":", omittingEmptySubsequences: false)
                if f.count > 3, Int(f[2]) == uid, let g = Int(f[3]) { gid = g }
            }
        }
        return (uid, gid)
    }

    /// Runs the image in the foreground; returns the process's exit status.
    public func run(_ request: RunRequest) throws -> Int32 {
        let image: StoredImage
        do { image = try store.resolve(request.image) } catch { throw PlatformError.notInStore(what: "image", reference: request.image, cause: error) }
        let rootfs = try RootfsCache(home: home).rootfs(of: image, in: store, log: log)
        let process = try Self.process(image.config, rootfs: rootfs, request: request)
        let scratch = home + "/run/" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let root = geteuid() == 0
        let useRunc: Bool
        switch request.runtime {
        case .runc:
            guard root else { throw PlatformError.needsRoot(option: "--runtime runc", reason: "runc creates the container's namespaces and mounts") }
            _ = try RuncBundle.locate()
            useRunc = true
        case .bwrap:
            useRunc = false
        case .auto:
            useRunc = root && (try? RuncBundle.locate()) != nil
            if !useRunc { log("runc is not usable here (needs root and runc); running with bubblewrap") }
        }
        // Copy-on-write over the cached root (root only); otherwise the root is read-only.
        let overlay = root ? try OverlayMount(lower: rootfs, scratch: scratch + "/rootfs") : nil
        defer { overlay?.remove() }
        if useRunc, let overlay {
            let bundle = RuncBundle(directory: scratch + "/bundle", rootfs: overlay.target, process: process)
            try bundle.write()
            return try bundle.run(id: "cairn-" + String(UUID().uuidString.prefix(8)).lowercased(), interactive: request.interactive)
        }
        var sandbox = Bubblewrap(rootfs: overlay?.target ?? rootfs)
        sandbox.writableRoot = overlay != nil
        sandbox.workingDirectory = process.cwd
        sandbox.environment.merge(EnvEntry.dictionary(process.env)) { $1 }
        sandbox.mapUser = (process.uid, process.gid)
        sandbox.interactive = request.interactive
        return try sandbox.run(process.args)
    }
}

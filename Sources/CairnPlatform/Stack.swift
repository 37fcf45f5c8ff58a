import Buildpacks
import Foundation
import OCI
import Phases
import Processes
import Sandbox

#if canImport(Glibc)
import Glibc
#endif

/// Where a stack's root filesystem comes from.
public enum StackSource: Sendable {
    /// Debian packages unpacked with `dpkg-deb -x` (no maintainer scripts, no host state).
    case packages([String])
    /// Directories: the build image's root, and optionally a different run image root.
    case directories(build: String, run: String?)
    /// A full Debian root filesystem made by `debootstrap --variant=minbase`.
    case debian(suite: String, mirror: String)
}

/// A stack: a build image and a run image that share a contract — same OS, architecture,
/// distribution and target ID (platform.md, Build Image, Run Image, Target Data).
public struct StackCreator {
    public var store: ImageStore
    public var log: (String) -> Void
    /// The CNB user of the build image, and the (different) user of the run image.
    public var buildUser = (uid: 1000, gid: 1000)
    public var runUser = (uid: 1001, gid: 1001)

    public init(store: ImageStore, log: @escaping (String) -> Void) {
        self.store = store
        self.log = log
    }

    public static func buildReference(_ name: String) -> String { "\(name)/build:latest" }
    public static func runReference(_ name: String) -> String { "\(name)/run:latest" }

    @discardableResult
    public func create(name: String, source: StackSource) throws -> (build: StoredImage, run: StoredImage) {
        let buildRef = Self.buildReference(name)
        let runRef = Self.runReference(name)
        do {
            _ = try ImageStore.storedName(buildRef)
        } catch {
            throw PlatformError.invalidArgument("stack name \"\(name)\"", reason: "cannot be used in an image name (\(buildRef)): use lowercase letters, digits, '.', '_', '-' and '/'", cause: error)
        }
        let scratch = FileManager.default.temporaryDirectory.path + "/cairn-stack-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)

        let (buildRoot, runRoot) = try prepareRoots(source, scratch: scratch)

        let distro = osRelease(buildRoot + "/etc/os-release") ?? osRelease("/etc/os-release")
        let targetID = "io.cairn.stacks." + name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "-" }.map(String.init).joined()
        var epochOptions = try LayerWriteOptions.fromEnvironment(ProcessInfo.processInfo.environment)
        epochOptions.uid = 0
        epochOptions.gid = 0
        let created = epochOptions.mtime == LayerWriteOptions.normalizedTime ? normalizedCreated : rfc3339(epochOptions.mtime)
        let session = try store.beginWriteSession()

        func baseLayer(_ root: String) throws -> LayerResult {
            var o = epochOptions
            let me = Int(getuid())
            // Files unpacked by an unprivileged user are recorded as root's, as dpkg would install them.
            o.owner = { _, uid, gid in (uid == me ? 0 : uid, gid == Int(getgid()) ? 0 : gid) }
            log("Writing the root filesystem layer from \(root)")
            return try session.writeLayer(directory: root, options: o)
        }
        let base = try baseLayer(buildRoot)
        let runBase = try runRoot.map(baseLayer) ?? base

        let buildExtras = try userLayer(scratch: scratch + "/build-extras", root: buildRoot, user: buildUser, build: true)
        let runExtras = try userLayer(scratch: scratch + "/run-extras", root: runRoot ?? buildRoot, user: runUser, build: false)

        let labels = baseLabels(targetID: targetID, distro: distro, source: source)
        let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        let build = try session.commitImage(
            base: nil, layers: [base, buildExtras],
            history: [History(created: created, createdBy: "cairn stack create: root filesystem"),
                      History(created: created, createdBy: "cairn stack create: CNB user \(buildUser.uid), /cnb, /workspace, /layers")],
            created: created, reference: buildRef
        ) { config in
            config.config = ExecutionConfig(
                user: "\(buildUser.uid):\(buildUser.gid)",
                env: ["PATH=" + path, "HOME=/home/cnb", "\(CNBEnv.userID)=\(buildUser.uid)", "\(CNBEnv.groupID)=\(buildUser.gid)"],
                workingDir: "/", labels: labels)
        }
        var runLabels = labels
        runLabels[CNBLabel.rebasable] = "true"
        let run = try session.commitImage(
            base: nil, layers: [runBase, runExtras],
            history: [History(created: created, createdBy: "cairn stack create: root filesystem"),
                      History(created: created, createdBy: "cairn stack create: run user \(runUser.uid)")],
            created: created, reference: runRef
        ) { config in
            config.config = ExecutionConfig(user: "\(runUser.uid):\(runUser.gid)", env: ["PATH=" + path, "HOME=/home/cnb"],
                                            workingDir: "/", labels: runLabels)
        }
        return (build, run)
    }

    /// The build root (and a different run root, if any) of `source`, made under `scratch` when
    /// Cairn makes it.
    func prepareRoots(_ source: StackSource, scratch: String) throws -> (build: String, run: String?) {
        var buildRoot = scratch + "/rootfs"
        var runRoot: String?
        switch source {
        case .packages(let packages):
            guard !packages.isEmpty else { throw PlatformError.invalidArgument("--packages", reason: "names no package") }
            try unpackPackages(packages, into: buildRoot, scratch: scratch)
        case .directories(let build, let run):
            for dir in [build] + (run.map { [$0] } ?? []) where !FS.isDirectory(dir) {
                throw PlatformError.notADirectory(what: "root filesystem", path: dir)
            }
            buildRoot = build
            runRoot = run
        case .debian(let suite, let mirror):
            guard let debootstrap = findExecutable("debootstrap") else {
                throw SandboxError.toolMissing(tool: "debootstrap", package: "debootstrap", purpose: "make a Debian stack")
            }
            guard geteuid() == 0 else { throw PlatformError.needsRoot(option: "--debian", reason: "debootstrap creates device files and chroots") }
            log("Running debootstrap \(suite) (this takes a few minutes; its progress follows)")
            // Its "I: Retrieving/Validating/Extracting/Installing …" lines are the progress; they go
            // to stderr as they come (debootstrap writes them to stdout, which holds our result).
            let spec = ProcessSpec(path: "/bin/sh", arguments: ["-c", "exec \"$0\" \"$@\" 1>&2", debootstrap, "--variant=minbase", suite, buildRoot, mirror])
            let status = try ChildProcess.run(spec, output: .inherit).status
            guard status == 0 else {
                throw PlatformError.toolFailed(command: "debootstrap \(suite)", output: "exit status \(status); its output is above",
                                               hint: "check the mirror \(mirror) and the suite name")
            }
        }
        return (buildRoot, runRoot)
    }

    /// The labels both images carry: target identity (also as the deprecated stack id), maintainer,
    /// description and distribution.
    func baseLabels(targetID: String, distro: (name: String, version: String)?, source: StackSource) -> [String: String] {
        var labels: [String: String] = [
            CNBLabel.baseID: targetID,
            CNBLabel.stackID: targetID,
            CNBLabel.stackMixins: "[]",
            CNBLabel.baseMaintainer: "Cairn",
            CNBLabel.baseDescription: describe(source),
        ]
        if let distro {
            labels[CNBLabel.baseDistroName] = distro.name
            labels[CNBLabel.baseDistroVersion] = distro.version
        }
        return labels
    }

    func describe(_ source: StackSource) -> String {
        switch source {
        case .packages(let p): return "Cairn stack from Debian packages: " + p.joined(separator: ", ")
        case .directories: return "Cairn stack from root filesystem directories"
        case .debian(let suite, _): return "Cairn stack: Debian \(suite) (debootstrap minbase)"
        }
    }

    /// Downloads packages with `apt-get download` and unpacks each with `dpkg-deb -x`; adds the
    /// links a busybox or bash-static root needs (`/bin/sh`, busybox applets, `/bin/bash`).
    func unpackPackages(_ packages: [String], into root: String, scratch: String) throws {
        guard let aptGet = findExecutable("apt-get"), let dpkgDeb = findExecutable("dpkg-deb") else {
            throw SandboxError.toolMissing(tool: "apt-get/dpkg-deb", package: "apt dpkg", purpose: "unpack Debian packages")
        }
        let debs = scratch + "/debs"
        try FileManager.default.createDirectory(atPath: debs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        log("Downloading \(packages.joined(separator: ", "))")
        let result = try ChildProcess.run(ProcessSpec(path: aptGet, arguments: ["download", "-q"] + packages, workingDirectory: debs),
                                          output: .separate)
        guard result.status == 0 else {
            throw PlatformError.toolFailed(command: "apt-get download \(packages.joined(separator: " "))", output: result.errorOutput.trimmingCharacters(in: .whitespacesAndNewlines), hint: "is the package name right, and has `apt-get update` run?")
        }
        // dpkg's status file lists what is installed, as on any Debian system: `cairn audit` and
        // scanners (syft, grype, trivy) read the packages of the image from it.
        var status = ""
        for deb in try FileManager.default.contentsOfDirectory(atPath: debs).sorted() where deb.hasSuffix(".deb") {
            log("Unpacking \(deb)")
            try ChildProcess.tool(dpkgDeb, ["-x", debs + "/" + deb, root])
            status += Self.statusStanza(control: try ChildProcess.tool(dpkgDeb, ["-f", debs + "/" + deb])) + "\n"
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/var/lib/dpkg", withIntermediateDirectories: true)
        try Data(status.utf8).write(to: URL(fileURLWithPath: root + "/var/lib/dpkg/status"))
        for dir in ["bin", "etc", "tmp", "var/tmp", "usr/bin", "root", "home", "proc", "sys", "dev"] {
            try fm.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
        }
        chmod(root + "/tmp", 0o1777)
        chmod(root + "/var/tmp", 0o1777)
        if fm.fileExists(atPath: root + "/bin/bash-static") && !exists(root + "/bin/bash") {
            symlink("bash-static", root + "/bin/bash")
        }
        if fm.fileExists(atPath: root + "/bin/busybox") {
            // busybox is static: list its applets on the host with their usual paths (bin/sh,
            // usr/bin/env, sbin/…) and link each one the packages did not provide, so scripts
            // starting with `#!/usr/bin/env bash` find env where every distribution has it.
            let list = try ChildProcess.tool(root + "/bin/busybox", ["--list-full"])
            for applet in list.split(separator: "\n").map(String.init) where !applet.isEmpty && !applet.contains("..") {
                let path = root + "/" + applet
                guard !exists(path) else { continue }
                let dir = (path as NSString).deletingLastPathComponent
                try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
                symlink(dir == root + "/bin" ? "busybox" : "/bin/busybox", path)
            }
        }
        if !exists(root + "/usr/bin/env") && exists(root + "/bin/env") { symlink("/bin/env", root + "/usr/bin/env") }
        if !exists(root + "/etc/os-release"), fm.fileExists(atPath: "/etc/os-release") {
            // The packages are the host distribution's; say so for target data.
            try? fm.copyItem(atPath: "/etc/os-release", toPath: root + "/etc/os-release")
        }
    }

    /// A package's control fields as a dpkg status entry: `Status` after `Package`.
    static func statusStanza(control: String) -> String {
        var lines = control.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        let at = (lines.firstIndex { $0.hasPrefix("Package:") } ?? -1) + 1
        lines.insert("Status: install ok installed", at: at)
        return lines.joined(separator: "\n") + "\n"
    }

    /// Whether `path` exists, a dangling symbolic link included (lstat).
    func exists(_ path: String) -> Bool {
        FS.exists(path)
    }

    /// The per-image layer: /etc/passwd and /etc/group with the user added, its home, and on the
    /// build image the /cnb layout and the directories the lifecycle writes.
    func userLayer(scratch: String, root: String, user: (uid: Int, gid: Int), build: Bool) throws -> LayerResult {
        let fm = FileManager.default
        try fm.createDirectory(atPath: scratch + "/etc", withIntermediateDirectories: true)
        var passwd = (try? String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)) ?? "root:x:0:0:root:/root:/bin/sh\n"
        var group = (try? String(contentsOfFile: root + "/etc/group", encoding: .utf8)) ?? "root:x:0:\n"
        if !passwd.hasSuffix("\n") { passwd += "\n" }
        if !group.hasSuffix("\n") { group += "\n" }
        passwd += "cnb:x:\(user.uid):\(user.gid):CNB user:/home/cnb:/bin/sh\n"
        group += "cnb:x:\(user.gid):\n"
        try passwd.write(toFile: scratch + "/etc/passwd", atomically: true, encoding: .utf8)
        try group.write(toFile: scratch + "/etc/group", atomically: true, encoding: .utf8)
        var owned = ["home/cnb"]
        try fm.createDirectory(atPath: scratch + "/home/cnb", withIntermediateDirectories: true)
        if build {
            for dir in ["cnb/buildpacks", "cnb/extensions", "workspace", "layers", "platform"] {
                try fm.createDirectory(atPath: scratch + "/" + dir, withIntermediateDirectories: true)
            }
            owned += ["workspace", "layers"]
        }
        var o = try LayerWriteOptions.fromEnvironment(ProcessInfo.processInfo.environment)
        let ownedSet = Set(owned)
        let u = user
        o.owner = { path, _, _ in ownedSet.contains(path) ? (u.uid, u.gid) : (0, 0) }
        return try store.beginWriteSession().writeLayer(directory: scratch, options: o)
    }
}

/// `ID` and `VERSION_ID` of an os-release file.
func osRelease(_ path: String) -> (name: String, version: String)? { BuildTarget.osRelease(path) }

import Foundation
import OCI
import Processes
import Sandbox

/// The app source into the workspace (a directory copied, a zip or jar unpacked), pack's build
/// options checked before any work, and what the build leaves for the user (`--sbom-output-dir`).
extension BuildRunner {
    /// File endings `--path` takes as an archive of the app (pack takes zip and jar files).
    static let sourceArchiveSuffixes = [".zip", ".jar"]

    /// The app path is a directory or a zip/jar file; `--workspace` and `--volume` targets are
    /// usable paths that do not overlap each other.
    /// - Throws: `PlatformError` naming the path or option and what was expected.
    func checkSource(_ request: BuildRequest) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: request.appPath, isDirectory: &isDir) else {
            throw PlatformError.notADirectory(what: "app path", path: request.appPath)
        }
        if !isDir.boolValue && !Self.sourceArchiveSuffixes.contains(where: { request.appPath.lowercased().hasSuffix($0) }) {
            throw PlatformError.invalidArgument("--path \(request.appPath)", reason: "expected a directory, or a zip or jar file of the app")
        }
        if let workspace = request.workspace { try BuildRequest.checkContainerPath(workspace, option: "--workspace \(workspace)") }
        let app = request.appDirectory
        for (n, volume) in request.volumes.enumerated() {
            let overlaps = { (a: String, b: String) in a == b || a.hasPrefix(b + "/") || b.hasPrefix(a + "/") }
            if overlaps(volume.target, app) {
                throw PlatformError.invalidArgument("--volume …:\(volume.target)", reason: "overlaps the app directory \(app)")
            }
            if let other = request.volumes[..<n].first(where: { overlaps($0.target, volume.target) }) {
                throw PlatformError.invalidArgument("--volume …:\(volume.target)", reason: "overlaps another volume at \(other.target)")
            }
        }
    }

    /// Each `--volume` and `--workspace` target can be made in the builder's root: it is there
    /// already, or its first component is not (bubblewrap then makes it on a fresh root), since
    /// nothing can be made inside the builder's read-only directories.
    func checkMountTargets(_ request: BuildRequest, rootfs: String) throws {
        let targets = request.volumes.map { ("--volume …:\($0.target)", $0.target) } + (request.workspace.map { [("--workspace \($0)", $0)] } ?? [])
        for (option, target) in targets {
            let first = "/" + (target.split(separator: "/").first.map(String.init) ?? "")
            if FileManager.default.fileExists(atPath: rootfs + target) || !FileManager.default.fileExists(atPath: rootfs + first) { continue }
            throw PlatformError.invalidArgument(option, reason: "the builder has \(first) but not \(target), and cannot get it (read-only); choose an existing directory or a new top-level one")
        }
    }

    /// The workspace the build mounts. An app directory is synced into the image name's kept
    /// workspace (`<home>/workspaces/<name>/app`, WorkspaceSync): only what changed is copied,
    /// and an unchanged app keeps its inodes, so the exporter reuses its layer without reading it.
    /// A fresh copy in the work directory instead for a zip or jar, an app with entries the sync
    /// does not copy (devices, sockets, names that are not UTF-8), or while another build of the
    /// same name holds the kept workspace.
    func prepareWorkspace(_ context: inout BuildContext) throws {
        let request = context.request
        let owner = geteuid() == 0 ? (uid: UInt32(context.uid), gid: UInt32(context.gid)) : nil
        if FS.isDirectory(request.appPath), let kept = try lockKeptWorkspace(request.image) {
            // --clear-cache starts from nothing here too: the app is copied in full.
            if request.clearCache { try? FileManager.default.removeItem(atPath: kept.path + "/state.json") }
            let app = URL(fileURLWithPath: request.appPath).resolvingSymlinksInPath().path
            let sync = WorkspaceSync(app: app, workspace: kept.path + "/app", statePath: kept.path + "/state.json", owner: owner,
                                     excluded: try request.sourceFilter?.excludedPaths(in: app) ?? [])
            do {
                let counts = try sync.run()
                if let filter = request.sourceFilter { log("project.toml \(filter.mode.rawValue): \(sync.excluded.count) path\(sync.excluded.count == 1 ? "" : "s") left out of the workspace") }
                log("Synced \(request.appPath) into the workspace: \(counts.copied) copied, \(counts.kept) unchanged, \(counts.removed) removed")
                context.workspace = kept.path + "/app"
                context.workspaceLock = kept.lock
                return
            } catch let unsupported as WorkspaceSync.Unsupported {
                log("\(unsupported.path) cannot be synced (not a file, directory or symbolic link, or a name that is not UTF-8): copying the app afresh")
                close(kept.lock)
            } catch {
                close(kept.lock)
                throw error
            }
        }
        context.workspace = context.work + "/workspace"
        try FS.makeDirectories(context.workspace)
        try copySource(request.appPath, to: context.workspace)
        if let filter = request.sourceFilter {
            let removed = try filter.apply(to: context.workspace)
            log("project.toml \(filter.mode.rawValue): \(removed) path\(removed == 1 ? "" : "s") left out of the workspace")
        }
        if let owner { try ChildProcess.tool("/bin/chown", ["-R", "\(owner.uid):\(owner.gid)", context.workspace]) }
    }

    /// The kept workspace of `image`, locked (flock) for this build; nil while another holds it.
    func lockKeptWorkspace(_ image: String) throws -> (path: String, lock: Int32)? {
        let path = home + "/workspaces/" + HomePrune.cacheName(image)
        try FS.makeDirectories(path)
        let fd = open(path + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PlatformError.invalidFile(path: path + "/lock", reason: "cannot be opened: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            log("Another build of \(image) is using its kept workspace: copying the app afresh")
            return nil
        }
        return (path, fd)
    }

    /// Copies the app directory into `workspace`, or unpacks the app's zip or jar file there.
    func copySource(_ appPath: String, to workspace: String) throws {
        if FS.isDirectory(appPath) {
            log("Copying \(appPath) to the workspace")
            try ChildProcess.tool("/bin/cp", ["-a", appPath.hasSuffix("/") ? appPath + "." : appPath + "/.", workspace + "/"])
            return
        }
        guard let unzip = findExecutable("unzip") else {
            throw SandboxError.toolMissing(tool: "unzip", package: "unzip", purpose: "unpack a zip or jar file given as --path")
        }
        log("Unpacking \(appPath) into the workspace")
        do {
            // -o: no questions; unzip itself refuses entries that would land outside the directory.
            try ChildProcess.tool(unzip, ["-q", "-o", appPath, "-d", workspace])
        } catch {
            throw PlatformError.invalidFile(path: appPath, reason: "cannot be unpacked as a zip file", cause: error)
        }
    }

    /// `--sbom-output-dir`: the SBOM files the lifecycle left in `<layers>/sbom` (launch, build
    /// and cache, per buildpack and layer), copied before the work directory goes.
    func copySBOMs(_ context: BuildContext) throws {
        guard let target = context.request.sbomOutputDirectory else { return }
        let fm = FileManager.default
        try fm.createDirectory(atPath: target, withIntermediateDirectories: true)
        let source = context.work + "/layers/sbom"
        guard FS.isDirectory(source) else {
            log("No SBOM files to copy to \(target): the buildpacks wrote none")
            return
        }
        try ChildProcess.tool("/bin/cp", ["-R", source + "/.", target + "/"])
        log("Copied the build's SBOM files to \(target)")
    }
}

extension BuildRunner.BuildContext {
    /// The exporter's (and creator's) options from pack-style flags: the default process type.
    var exportArguments: [String] {
        request.defaultProcess.map { ["-process-type", $0] } ?? []
    }
}

import Buildpacks
import FoundationEssentials
import OCI
import Sandbox

#if canImport(Glibc)
import Glibc
#endif

/// One Dockerfile an extension generated, and what it is applied with.
public struct ExtensionDockerfile: Sendable {
    public var extensionID: String
    /// The Dockerfile (`<generated>/<id>/<kind>.Dockerfile`); errors name it.
    public var path: String
    /// The build context: `context.<kind>`, else `context`, else the app directory.
    public var contextDirectory: String
    /// `[[<kind>.args]]` of the extension's extend-config.toml.
    public var args: [String: String]

    public init(extensionID: String, path: String, contextDirectory: String, args: [String: String] = [:]) {
        self.extensionID = extensionID
        self.path = path
        self.contextDirectory = contextDirectory
        self.args = args
    }
}

/// A step of an applied Dockerfile: a layer (what an instruction changed) or a config change.
struct AppliedStep {
    var layer: LayerSource?
    var createdBy: String
}

/// Applies the instructions of one Dockerfile (image_extension.md, Dockerfile Requirements: ARG,
/// FROM, RUN, COPY, ADD, ENV, LABEL, USER, WORKDIR, SHELL) to an image: files through an
/// `ExtendWorkspace`, one layer per instruction that changes files (as Docker does, so a later
/// extension's layers are not mixed with an earlier one's and unchanged instructions give
/// unchanged layers); the config (env, user, working directory, labels) in `config`.
struct DockerfileApplier {
    let dockerfile: ExtensionDockerfile
    let workspace: any ExtendWorkspace
    var config: ExecutionConfig
    /// Build args given to this Dockerfile: the extension's plus `base_image`, `build_id`,
    /// `user_id`, `group_id`.
    let buildArgs: [String: String]
    /// The ARGs declared after FROM, with their values (visible to RUN as environment).
    var args: [String: String] = [:]
    /// The ARGs declared before FROM (visible to FROM only).
    var globalArgs: [String: String] = [:]
    var shell = ["/bin/sh", "-c"]
    var seenFrom = false
    var steps: [AppliedStep] = []

    init(dockerfile: ExtensionDockerfile, workspace: any ExtendWorkspace, config: ExecutionConfig, buildArgs: [String: String]) {
        self.dockerfile = dockerfile
        self.workspace = workspace
        self.config = config
        self.buildArgs = buildArgs
    }

    static let allowed: Set<String> = ["ARG", "FROM", "RUN", "COPY", "ADD", "ENV", "LABEL", "USER", "WORKDIR", "SHELL"]

    mutating func apply() throws(ExtendError) {
        let text: String
        do { text = try String(contentsOfFile: dockerfile.path, encoding: .utf8) } catch {
            throw .environment("cannot read \(dockerfile.path): \(error)")
        }
        let parsed: Dockerfile
        do { parsed = try Dockerfile(parsing: text, file: dockerfile.path) } catch { throw .syntax("\(error)") }
        // Every instruction is checked before any runs: a bad line fails before anything changes.
        for i in parsed.instructions where !Self.allowed.contains(i.keyword) {
            throw .instruction(file: dockerfile.path, line: i.line, instruction: i.keyword,
                               message: "not allowed in an image extension Dockerfile (allowed: \(Self.allowed.sorted().joined(separator: ", ")))")
        }
        for i in parsed.instructions {
            do {
                try apply(i)
            } catch {
                throw error.at(file: dockerfile.path, line: i.line, instruction: "\(i.keyword) \(i.arguments)")
            }
        }
    }

    /// The variables instruction arguments are expanded with: the image's environment, then ARGs.
    var variables: [String: String] {
        var v: [String: String] = seenFrom ? args : globalArgs
        v.merge(EnvEntry.dictionary(config.env ?? [])) { $1 }
        return v
    }

    mutating func apply(_ i: Dockerfile.Instruction) throws(ExtendError) {
        let summary = "\(i.keyword) \(i.arguments)"
        switch i.keyword {
        case "ARG":
            for word in try Words.split(i.arguments) {
                let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
                var value = buildArgs[parts[0]]
                if value == nil && parts.count > 1 { value = try Words.expand(parts[1], variables) }
                if seenFrom { args[parts[0]] = value ?? "" } else { globalArgs[parts[0]] = value ?? "" }
            }
        case "FROM":
            // The base is chosen before applying (`${base_image}`, or the image a run.Dockerfile
            // switches to, already the base); later instructions see only ARGs declared after it.
            seenFrom = true
        case "ENV":
            var env = config.env ?? []
            for (key, value) in try Words.keyValues(i.arguments) {
                let expanded = try Words.expand(value, variables)
                env.removeAll { $0.hasPrefix(key + "=") }
                env.append(key + "=" + expanded)
                config.env = env
            }
        case "LABEL":
            var labels = config.labels ?? [:]
            for (key, value) in try Words.keyValues(i.arguments) { labels[try Words.expand(key, variables)] = try Words.expand(value, variables) }
            config.labels = labels
        case "USER":
            let user = try Words.expand(i.arguments.trimmingSpaces, variables)
            guard !user.isEmpty else { throw .syntax("USER needs a user") }
            config.user = user
        case "SHELL":
            guard let form = Words.jsonArray(i.arguments), !form.isEmpty else { throw .syntax("SHELL needs the JSON form, e.g. [\"/bin/bash\", \"-c\"]") }
            shell = form
        case "WORKDIR":
            let dir = try Words.expand(i.arguments.trimmingSpaces, variables)
            let absolute = dir.hasPrefix("/") ? dir : (config.workingDir ?? "/") + "/" + dir
            config.workingDir = absolute
            let layer = try workspace.change { root throws(ExtendError) in try makeDirectory(absolute, in: root) }
            steps.append(AppliedStep(layer: layer, createdBy: summary))
            return
        case "RUN":
            let layer = try workspace.change { root throws(ExtendError) in try run(i, in: root) }
            steps.append(AppliedStep(layer: layer, createdBy: summary))
            return
        case "COPY", "ADD":
            let layer = try workspace.change { root throws(ExtendError) in try copy(i, in: root) }
            steps.append(AppliedStep(layer: layer, createdBy: summary))
            return
        default:
            throw .unsupported("not allowed in an image extension Dockerfile")
        }
        steps.append(AppliedStep(layer: nil, createdBy: summary))
    }

    // MARK: RUN

    /// Runs the command over the root being changed, as the current user, with the image's
    /// environment and the ARGs, in the working directory.
    func run(_ i: Dockerfile.Instruction, in root: String) throws(ExtendError) {
        let command = Words.jsonArray(i.arguments) ?? (shell + [i.arguments])
        let ids = try RootPath(root: root).ids(user: config.user.flatMap { $0.isEmpty ? nil : $0 } ?? "0")
        let cwd = config.workingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/"
        try makeDirectory(cwd, in: root)
        var env = args.filter { name, _ in !(config.env ?? []).contains { $0.hasPrefix(name + "=") } }.map { "\($0.key)=\($0.value)" }.sorted()
        env = (config.env ?? []) + env
        if !env.contains(where: { $0.hasPrefix("PATH=") }) { env.append("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") }
        let status = try workspace.run(command, environment: env, workingDirectory: cwd, user: ids, root: root)
        guard status == 0 else {
            throw .runFailed(file: dockerfile.path, line: i.line, command: i.arguments, status: status)
        }
    }


    func makeDirectory(_ path: String, in root: String) throws(ExtendError) {
        let target = RootPath(root: root).resolve(path)
        do { try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true) } catch {
            throw .environment("cannot create \(path) in the image: \(error)")
        }
    }

    // MARK: COPY, ADD

    /// Copies files of the build context into the image: `[--chown=u:g] [--chmod=mode] src… dest`
    /// (JSON form too). A destination ending in `/`, or several sources, is a directory; a
    /// directory source copies its contents. ADD also unpacks a local tar archive; URLs are refused.
    func copy(_ i: Dockerfile.Instruction, in root: String) throws(ExtendError) {
        var words: [String]
        if let form = Words.jsonArray(i.arguments) { words = form } else { words = try Words.split(i.arguments) }
        var chown: String?
        var chmod: mode_t?
        while let flag = words.first, flag.hasPrefix("--") {
            words.removeFirst()
            if flag.hasPrefix("--chown=") {
                chown = try Words.expand(String(flag.dropFirst(8)), variables)
            } else if flag.hasPrefix("--chmod=") {
                guard let m = mode_t(flag.dropFirst(8), radix: 8), m <= 0o7777 else { throw .syntax("--chmod needs an octal mode, found \(flag.dropFirst(8))") }
                chmod = m
            } else if flag.hasPrefix("--from") {
                throw .unsupported("--from is not allowed (an extension Dockerfile has one stage; copy from its context)")
            } else if flag != "--link" {
                throw .unsupported("unsupported flag \(flag)")
            }
        }
        words = try words.map { w throws(ExtendError) in try Words.expand(w, variables) }
        guard words.count >= 2, let destination = words.last else { throw .syntax("\(i.keyword) needs a source and a destination") }
        let owner = try chown.map { c throws(ExtendError) in try RootPath(root: root).ids(user: c) } ?? (0, 0)
        var sources: [String] = []
        for pattern in words.dropLast() {
            if pattern.contains("://") { throw .unsupported("\(i.keyword) from a URL is not supported (local files of the context only)") }
            sources += try contextFiles(pattern)
        }
        let cwd = config.workingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/"
        let destAbsolute = destination.hasPrefix("/") ? destination : cwd + "/" + destination
        let intoDirectory = destination.hasSuffix("/") || sources.count > 1
        let copier = FileCopier(root: root, owner: owner, mode: chmod)
        for source in sources {
            let name = URL(fileURLWithPath: source).lastPathComponent
            if i.keyword == "ADD", let archive = try? Self.isTarArchive(source), archive {
                try copier.unpack(source, into: destAbsolute)
            } else if FileCopier.isDirectory(source) {
                try copier.copyContents(of: source, to: destAbsolute)
            } else {
                try copier.copyFile(source, to: intoDirectory ? destAbsolute + "/" + name : destAbsolute)
            }
        }
    }

    /// Context paths matching `pattern` (globs in the last component); never outside the context.
    func contextFiles(_ pattern: String) throws(ExtendError) -> [String] {
        let context = dockerfile.contextDirectory
        let normalized = URL(fileURLWithPath: context + "/" + pattern).standardized.path
        guard normalized == context || normalized.hasPrefix(context + "/") else {
            throw .syntax("\(pattern) is outside the build context")
        }
        let parent = URL(fileURLWithPath: normalized).deletingLastPathComponent().path
        let last = URL(fileURLWithPath: normalized).lastPathComponent
        guard last.contains(where: { "*?[".contains($0) }) else {
            guard FS.exists(normalized) else { throw .syntax("\(pattern) does not exist in the build context \(context)") }
            return [normalized]
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).sorted()
        let matched = names.filter { fnmatch(last, $0, 0) == 0 }.map { parent + "/" + $0 }
        guard !matched.isEmpty else { throw .syntax("\(pattern) matches nothing in the build context \(context)") }
        return matched
    }

    static func isTarArchive(_ path: String) throws -> Bool {
        guard !FileCopier.isDirectory(path) else { return false }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 512) }
        let head = buffer.prefix(max(0, n))
        if head.starts(with: [0x1f, 0x8b]) || head.starts(with: [0x28, 0xb5, 0x2f, 0xfd]) { return true }
        return head.count >= 262 && String(decoding: head[257..<262], as: UTF8.self) == "ustar"
    }
}

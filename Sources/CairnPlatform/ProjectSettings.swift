import Buildpacks
import Foundation

/// What an app's project.toml (project-descriptor.md, schema 0.2, or the legacy 0.1 form with
/// the same settings in `[build]`) asks of `cairn build`, as pack reads it: `[io.buildpacks] builder`, `include`/`exclude`, `[[io.buildpacks.build.env]]`
/// and `[[io.buildpacks.group]]` (ids, directories relative to the app, inline scripts).
/// Flags win: `--builder`, `--buildpack` replace the file's builder and group, `--env` values
/// come after the file's (so they override). `pre`/`post` groups go before/after every group of
/// the order (the file's or the flags' group, else each of the builder's).
public struct ProjectSettings: Sendable {
    public var file: String
    public var builder: String?
    /// `NAME=VALUE`, in the file's order.
    public var env: [String] = []
    /// Buildpack references as `--buildpack` takes them: `id`, `id@version` or a directory.
    public var buildpacks: [String] = []
    /// `[[io.buildpacks.pre.group]]` and `post`: references as `buildpacks` holds them.
    public var pre: [String] = []
    public var post: [String] = []
    public var filter: SourceFilter?
    /// Inline-script buildpacks written for this build (removed by `cleanUp`).
    var inlineDirectory: String?

    /// The descriptor at `descriptor`, else `appPath/project.toml`; nil when there is none.
    /// - Throws: `PlatformError.inFile` naming the file and field that cannot be read.
    public static func load(appPath: String, descriptor: String?, scratch: String) throws -> ProjectSettings? {
        let file = descriptor ?? appPath + "/project.toml"
        guard FileManager.default.fileExists(atPath: file) else {
            if let descriptor { throw PlatformError.missingFile(what: "project descriptor", path: descriptor) }
            return nil
        }
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw PlatformError.invalidFile(path: file, reason: "cannot be read as UTF-8 text", cause: error)
        }
        let project: ProjectDescriptor
        do { project = try TOMLFile.decode(ProjectDescriptor.self, from: text, file: file) } catch {
            throw PlatformError.invalidFile(path: file, reason: "is not a project descriptor (schema 0.2 or the legacy 0.1)", cause: error)
        }
        var settings = ProjectSettings(file: file)
        let found: ProjectDescriptor.Buildpacks?
        do { found = try project.buildpacksSettings() } catch {
            throw PlatformError.invalidFile(path: file, reason: "is not a valid project descriptor", cause: error)
        }
        guard let io = found else { return settings }
        settings.builder = io.builder
        settings.env = (io.build?.env ?? []).map { "\($0.name)=\($0.value)" }
        if let include = io.include {
            settings.filter = try SourceFilter(mode: .include, patterns: include, file: file)
        } else if let exclude = io.exclude {
            settings.filter = try SourceFilter(mode: .exclude, patterns: exclude, file: file)
        }
        // Inline scripts are numbered across group, pre and post: each gets its own directory.
        let all = (io.group ?? []) + (io.pre?.group ?? []) + (io.post?.group ?? [])
        let references = try all.enumerated().map { n, entry in try settings.reference(entry, index: n, appPath: appPath, scratch: scratch) }
        let (groupCount, preCount) = ((io.group ?? []).count, (io.pre?.group ?? []).count)
        settings.buildpacks = Array(references[..<groupCount])
        settings.pre = Array(references[groupCount..<(groupCount + preCount)])
        settings.post = Array(references[(groupCount + preCount)...])
        return settings
    }

    mutating func reference(_ entry: ProjectDescriptor.Buildpacks.Entry, index: Int, appPath: String, scratch: String) throws -> String {
        if let script = entry.script {
            guard let id = entry.id else {
                throw PlatformError.inFile(path: file, .invalidArgument("[[io.buildpacks.group]] #\(index + 1)", reason: "an inline script needs an id"))
            }
            let dir = inlineDirectory ?? scratch + "/inline-buildpacks-" + UUID().uuidString
            inlineDirectory = dir
            return try Self.writeInline(id: id, script: script, into: dir + "/\(index)")
        }
        if let uri = entry.uri {
            // A directory or file relative to the app (pack resolves it so); else a registry image.
            let local = uri.hasPrefix("/") ? uri : appPath + "/" + (uri.hasPrefix("file://") ? String(uri.dropFirst(7)) : uri)
            return FileManager.default.fileExists(atPath: local) ? URL(fileURLWithPath: local).standardizedFileURL.path : uri
        }
        guard let id = entry.id else { return "" }
        return entry.version.map { "\(id)@\($0)" } ?? id
    }

    /// A buildpack directory whose bin/build runs the inline script with its shell; bin/detect passes.
    static func writeInline(id: String, script: ProjectDescriptor.Buildpacks.Entry.Script, into dir: String) throws -> String {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        let descriptor = "api = \"\(script.api)\"\n\n[buildpack]\nid = \(TOMLText.quoted(id))\nversion = \"0.0.0\"\n\n[[targets]]\nos = \"linux\"\n"
        try descriptor.write(toFile: dir + "/buildpack.toml", atomically: true, encoding: .utf8)
        try "#!/bin/sh\nexit 0\n".write(toFile: dir + "/bin/detect", atomically: true, encoding: .utf8)
        try "#!\(script.shell)\n\(script.inline)\n".write(toFile: dir + "/bin/build", atomically: true, encoding: .utf8)
        for exe in ["detect", "build"] { try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir + "/bin/" + exe) }
        return dir
    }

    public func cleanUp() {
        if let inlineDirectory { try? FileManager.default.removeItem(atPath: inlineDirectory) }
    }
}

import ArgumentParser
import Buildpacks
import CairnPlatform
import CNBCore
import Foundation
import OCI

/// `$CAIRN_HOME/config.toml`'s top-level settings (pack's names): `default-builder-image`.
/// The `[trust]` table is TrustConfig's.
struct CairnConfig {
    static let defaultBuilderKey = "default-builder-image"
    var defaultBuilder: String?

    static func load() throws -> CairnConfig {
        guard let value = try TrustConfig.table()[defaultBuilderKey] else { return CairnConfig() }
        guard let name = value.string else { throw CLIError("\(TrustConfig.path): \(defaultBuilderKey) must be a string (an image name)") }
        return CairnConfig(defaultBuilder: name)
    }

    /// Sets (or with nil removes) the default builder, keeping the rest of the file as it was:
    /// a top-level key goes before the first table, so it is written as the first line.
    static func setDefaultBuilder(_ name: String?) throws {
        let path = TrustConfig.path
        let old = FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
        _ = try load()  // a file that cannot be read is said, not overwritten
        var lines = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let firstTable = lines.firstIndex { $0.trimmingCharacters(in: .whitespaces).hasPrefix("[") } ?? lines.count
        lines = lines.enumerated().filter { n, line in
            n >= firstTable || !line.trimmingCharacters(in: .whitespaces).hasPrefix(defaultBuilderKey)
        }.map(\.element)
        if let name { lines.insert("\(defaultBuilderKey) = \(TOMLText.quoted(name))", at: 0) }
        let text = lines.joined(separator: "\n")
        try FileManager.default.createDirectory(atPath: cairnHome(), withIntermediateDirectories: true)
        try FS.writeAtomically(Data((text.hasSuffix("\n") || text.isEmpty ? text : text + "\n").utf8), to: path, tempDirectory: cairnHome())
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Settings in $CAIRN_HOME/config.toml.", subcommands: [DefaultBuilder.self])
}

struct DefaultBuilder: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "default-builder",
        abstract: "Show or set the builder `cairn build` uses without --builder or a project.toml builder (pack's config default-builder).",
        discussion: "Examples:\n  cairn config default-builder cairn/builder\n  cairn config default-builder\n  cairn config default-builder --unset")

    @Argument(help: "The builder image to use by default.") var builder: String?
    @Flag(help: "Remove the default builder.") var unset = false

    func run() async throws {
        try await reportingErrors {
            if unset {
                try CairnConfig.setDefaultBuilder(nil)
                print("Removed the default builder")
            } else if let builder {
                try validImageName(builder, what: "builder")
                try CairnConfig.setDefaultBuilder(builder)
                print("Builder \(builder) is now the default builder")
            } else if let current = try CairnConfig.load().defaultBuilder {
                print(current)
            } else {
                throw CLIError("no default builder set; set one with `cairn config default-builder NAME`")
            }
        }
    }
}

/// `--env NAME` (the value from this environment) and `--env-file` as pack and docker read them.
enum EnvFile {
    /// `NAME=VALUE` as given, or `NAME` with its value here (empty when unset, as pack).
    static func entry(_ text: String, environment: [String: String]) -> String {
        text.contains("=") ? text : text + "=" + (environment[text] ?? "")
    }

    /// The entries of an env file: one per line, blank lines and `#` comments skipped.
    /// - Throws: CLIError naming the file and line of an entry without a name.
    static func read(_ path: String, environment: [String: String]) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("--env-file \(path): no readable file") }
        var entries: [String] = []
        for (n, raw) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let name = line.split(separator: "=", maxSplits: 1).first, !name.isEmpty, !name.contains(" ") else {
                throw CLIError("--env-file \(path), line \(n + 1): expected NAME=VALUE or NAME")
            }
            entries.append(entry(line, environment: environment))
        }
        return entries
    }
}

import ArgumentParser
import Buildpacks
import Foundation
import OCI
import Processes
import Trust
#if canImport(Glibc)
import Glibc
#endif

@main
struct Cairn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn",
        abstract: "Cloud Native Buildpacks without a daemon: source to OCI image, patchable and auditable.",
        version: "cairn \(cairnVersion) (lifecycle and launcher \(cairnVersion); Platform API \(SupportedAPIs.platform.first!)-\(SupportedAPIs.platform.last!), "
            + "Buildpack API \(SupportedAPIs.buildpack.first!)-\(SupportedAPIs.buildpack.last!))",
        subcommands: [
            StackCommand.self, BuilderCommand.self, BuildpackCommand.self, Build.self, Run.self, Import.self, Images.self, Inspect.self, Rmi.self,
            Prune.self, StoreCommand.self, Pull.self, Push.self, Login.self, Rebase.self, PatchCommand.self, SBOM.self, AuditCommand.self, LifecycleCommand.self,
            ExtendImage.self, KeyCommand.self, Sign.self, Verify.self, Save.self, FleetCommand.self, ConfigCommand.self, SystemCommand.self,
        ]
    )

    /// SIGINT/SIGTERM go to the running child (a sandboxed phase, a container) so that it ends
    /// and cairn cleans up after it; installed here, never by the libraries.
    static func main() async {
        SignalForwarding.install()
        do {
            var command: any ParsableCommand
            do { command = try parseAsRoot() } catch {
                if let unknown = unknownSubcommand(CommandLine.arguments.dropFirst()) {
                    FileHandle.standardError.write(Data("cairn: error: \(unknown)\n".utf8))
                    Foundation.exit(64)  // EX_USAGE, as ArgumentParser's own usage errors
                }
                throw error
            }
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    /// For a mistyped command (`cairn buidl`, `cairn audit vuln`) that failed to parse: what was
    /// meant, by edit distance among the subcommands at that level; nil when the words name
    /// commands.
    static func unknownSubcommand(_ arguments: ArraySlice<String>) -> String? {
        var command: any ParsableCommand.Type = Cairn.self
        var path = "cairn"
        // Only the words before the first option: after one, a word may be its value.
        for word in arguments.prefix(while: { !$0.hasPrefix("-") }) {
            let subcommands = command.configuration.subcommands
            guard !subcommands.isEmpty else { return nil }
            if let next = subcommands.first(where: { $0._commandName == word || $0.configuration.aliases.contains(word) }) {
                command = next
                path += " " + word
                continue
            }
            let names = subcommands.map { $0._commandName }
            let near = names.map { ($0, editDistance($0, word)) }.filter { $0.1 <= max(2, word.count / 3) }.min { $0.1 < $1.1 }
            return "unknown command \"\(word)\" for \"\(path)\"" + (near.map { "; did you mean \"\(path) \($0.0)\"?" } ?? "")
                + " (commands: \(names.joined(separator: ", ")))"
        }
        return nil
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let (x, y) = (Array(a), Array(b))
        var row = Array(0...y.count)
        for i in 1...max(x.count, 1) where !x.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in 1...max(y.count, 1) where !y.isEmpty {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (x[i - 1] == y[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return x.isEmpty ? y.count : row[y.count]
    }
}

/// Options every command that touches the local store takes.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The image store (an OCI image layout). Default: $CAIRN_HOME/store, CAIRN_HOME defaulting to ~/.local/share/cairn.")
    var store: String?

    func open() throws -> ImageStore {
        let root = store ?? ImageStore.defaultRoot(environment: ProcessInfo.processInfo.environment)
        // Moving a name retires the old image's signature and attestation names, as prune would.
        return try ImageStore(root: root, artifactSubject: Cosign.subject(ofStoredName:))
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

/// An error the CLI reports as one line.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Where a command's result goes: stdout, or (`separated`) the original stdout while everything
/// else written to stdout from then on, by cairn or its children, goes to stderr.
struct ResultOutput {
    let descriptor: Int32

    static let standard = ResultOutput(descriptor: 1)

    static func separated() -> ResultOutput {
        fflush(nil)  // every C stream: what print() buffered goes where it was meant to
        let saved = dup(1)
        guard saved >= 0, dup2(2, 1) >= 0 else { return .standard }
        return ResultOutput(descriptor: saved)
    }

    func write(_ line: String) {
        fflush(nil)  // every C stream: what print() buffered goes where it was meant to
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
    }

    func write(jsonObject: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: jsonObject, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        write(String(decoding: data, as: UTF8.self))
    }
}

/// Refuses a name that would make an invalid image reference, before any work is done.
func validImageName(_ reference: String, what: String) throws {
    // Upper case would make the first part a registry host (`Tiny/run` is image `run` on host `Tiny`).
    do {
        _ = try ImageStore.storedName(reference)
        guard !reference.contains(where: \.isUppercase) else { throw CLIError("upper case") }
    } catch {
        throw CLIError("\(what): not a valid image name (\(reference)): expected lowercase letters, digits and . _ - separators, as in OCI image names")
    }
}

/// Runs `body`, turning any error into a one-line message on stderr and exit code 1.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("cairn: error: \(error)\n".utf8))
        // Interrupted (Ctrl-C, SIGTERM): the shell's status for it, 130 or 143.
        throw ExitCode(SignalForwarding.received.map { 128 + $0 } ?? 1)
    }
}

/// Human-readable byte counts (powers of 1000, as `docker images`).
func formatBytes(_ n: Int64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var v = Double(n)
    var i = 0
    while v >= 1000 && i < units.count - 1 {
        v /= 1000
        i += 1
    }
    return i == 0 ? "\(n) B" : String(format: v < 10 ? "%.2f %@" : "%.1f %@", v, units[i])
}

/// `--format json` output of a Codable result: the same style as `printJSON` (pretty, sorted
/// keys, slashes as they are).
func printEncoded<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

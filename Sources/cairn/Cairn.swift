import ArgumentParser
import Foundation
import OCI
import Processes

@main
struct Cairn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn",
        abstract: "Cloud Native Buildpacks without a daemon: source to OCI image, patchable and auditable.",
        subcommands: [
            StackCommand.self, BuilderCommand.self, BuildpackCommand.self, Build.self, Run.self, Import.self, Images.self, Inspect.self, Rmi.self,
            Prune.self, StoreCommand.self, Pull.self, Push.self, Login.self, Rebase.self, PatchCommand.self, SBOM.self, AuditCommand.self, LifecycleCommand.self,
            ExtendImage.self, KeyCommand.self, Sign.self, Verify.self, Save.self,
        ]
    )

    /// SIGINT/SIGTERM go to the running child (a sandboxed phase, a container) so that it ends
    /// and cairn cleans up after it; installed here, never by the libraries.
    static func main() async {
        SignalForwarding.install()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Options every command that touches the local store takes.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The image store (an OCI image layout). Default: $CAIRN_HOME/store, CAIRN_HOME defaulting to ~/.local/share/cairn.")
    var store: String?

    func open() throws -> ImageStore {
        let root = store ?? ImageStore.defaultRoot(environment: ProcessInfo.processInfo.environment)
        return try ImageStore(root: root)
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

/// Runs `body`, turning any error into a one-line message on stderr and exit code 1.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("cairn: error: \(error)\n".utf8))
        throw ExitCode(1)
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

func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

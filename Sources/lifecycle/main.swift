import ArgumentParser
import Buildpacks
import Foundation
import Lifecycle

// Multi-call: invoked as `detector`/`builder` (a link named after the phase) or as
// `lifecycle <phase> ...`. The dispatch table is here and only here.
let phases: [String: (([String]) async -> Never)] = [
    "detector": { await DetectorCommand.main($0); exit(0) },
    "builder": { await BuilderCommand.main($0); exit(0) },
    "analyzer": { await AnalyzerCommand.main($0); exit(0) },
    "restorer": { await RestorerCommand.main($0); exit(0) },
    "exporter": { await ExporterCommand.main($0); exit(0) },
    "creator": { await CreatorCommand.main($0); exit(0) },
    "rebaser": { await RebaserCommand.main($0); exit(0) },
]

let invokedAs = URL(fileURLWithPath: CommandLine.arguments[0]).lastPathComponent
var arguments = Array(CommandLine.arguments.dropFirst())
var phase = invokedAs
if phases[phase] == nil {
    guard let first = arguments.first, phases[first] != nil else {
        let known = phases.keys.sorted().joined(separator: ", ")
        let name = arguments.first.map { "unknown phase \"\($0)\"" } ?? "no phase given"
        FileHandle.standardError.write(Data("""
            lifecycle: \(name). Usage: lifecycle <phase> [flags], or run through a link named after the phase.
            Phases: \(known)\n
            """.utf8))
        exit(1)
    }
    phase = first
    arguments.removeFirst()
}
await phases[phase]!(arguments)

import ArgumentParser
import CNBCore
import Foundation
import Inventory

struct AuditVEX: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vex",
        abstract: "Write a VEX document (OpenVEX or CycloneDX) for an indexed image: what affects it, and what to do.",
        discussion: """
            Each advisory and package the inventory finds in the image is `affected` (with the version to update to), or \
            `under_investigation` where whether the installed version is affected cannot be told. Nothing is said of what \
            was not found: no `not_affected` statement is made for an image whose packages could not all be read.
            Examples:
              cairn audit vex myapp:latest --output myapp.openvex.json
              cairn audit vex registry.example.com/team/app:1 --document cyclonedx
            """)

    @Argument(help: "The image, by the name the inventory has it under (see `cairn audit vulns`).") var image: String
    @Option(help: "openvex (OpenVEX 0.2.0) or cyclonedx (CycloneDX 1.5 VEX).") var document: String = "openvex"
    @Option(help: "The file to write (default: standard output).") var output: String?
    @Option(help: "The document's author (OpenVEX).") var author: String = "Cairn"
    @OptionGroup var inventory: InventoryOptions

    func run() async throws {
        try await reportingErrors {
            guard ["openvex", "cyclonedx"].contains(document) else { throw CLIError("--document \(document): expected openvex or cyclonedx") }
            let (image, document, author) = (image, document, author)
            let data = try await inventory.open().run { inv -> Data in
                let (subject, statements) = try inv.vexStatements(image: image)
                return document == "openvex"
                    ? try VEXDocument.openVEX(statements, author: author, tooling: "cairn " + cairnVersion)
                    : try VEXDocument.cycloneDX(statements, image: subject, tooling: cairnVersion)
            }
            if let output {
                try data.write(to: URL(fileURLWithPath: output), options: .atomic)
                FileHandle.standardError.write(Data("Wrote \(output)\n".utf8))
            } else {
                FileHandle.standardOutput.write(data + Data("\n".utf8))
            }
        }
    }
}

/// The statements of VEX documents given with `--vex`.
func readVEX(_ paths: [String]) throws -> [VEXStatement] {
    try paths.flatMap { path -> [VEXStatement] in
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("--vex \(path): cannot be read") }
        return try VEXReader.read(data, path: path)
    }
}

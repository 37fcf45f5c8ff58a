import ArgumentParser
import Foundation
import Inventory
import OCI

struct AuditAdvisories: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "advisories",
        abstract: "Vulnerability advisories (OSV) in the inventory.",
        subcommands: [Import.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Load OSV records from JSON files, JSON lines (.jsonl), directories of them or zip archives (as OSV publishes them per ecosystem).",
            discussion: "A record already imported is replaced by the new one unless the one imported was modified later (OSV's `modified`); a withdrawn record matches nothing. Ecosystems matched: PyPI, npm, Debian[:release], Go, Maven.")

        @Argument(help: "JSON files, directories or .zip archives.") var paths: [String] = []
        @Option(help: "CISA's Known Exploited Vulnerabilities catalog (known_exploited_vulnerabilities.json or .csv); replaces the one imported before.")
        var kev: String?
        @Option(help: "FIRST's EPSS scores (the daily CSV: cve,epss,percentile; .csv.gz too); replaces those imported before.")
        var epss: String?
        @OptionGroup var inventory: InventoryOptions

        func run() async throws {
            try await reportingErrors {
                try inventory.refuse(.csv, for: "audit advisories import")
                guard !paths.isEmpty || kev != nil || epss != nil else {
                    throw CLIError("advisories import: give at least one file, directory or zip, or --kev/--epss")
                }
                let inv = try await inventory.open()
                if kev != nil || epss != nil { try await importExploitData(inv) }
                guard !paths.isEmpty else { return }
                var records: [OSVRecord] = []
                for path in paths { try OSVReader.read(path) { records.append($0) } }
                let read = records
                let done = try await inv.run { inv in
                    var done = 0
                    // Batches keep memory and transaction size bounded for ecosystem dumps.
                    for start in stride(from: 0, to: read.count, by: 1000) {
                        done += try inv.importAdvisories(Array(read[start..<min(start + 1000, read.count)]))
                    }
                    try inv.optimize()
                    return done
                }
                if inventory.format == .json { try printJSON(["imported": done, "read": records.count]) } else {
                    print("\(done) advisories imported" + (done < records.count ? " (\(records.count - done) older than the ones imported before: kept those)" : ""))
                }
            }
        }

        func importExploitData(_ inv: Inventory) async throws {
            let kevEntries = try kev.map { try ExploitData.readKEV(try readMaybeCompressed($0), path: $0) }
            let scores = try epss.map { try ExploitData.readEPSS(try readMaybeCompressed($0), path: $0) }
            let written = try await inv.run { try $0.importExploitData(kev: kevEntries, epss: scores) }
            if inventory.format == .table {
                if kev != nil { FileHandle.standardError.write(Data("\(written.kev) KEV entries imported\n".utf8)) }
                if epss != nil { FileHandle.standardError.write(Data("\(written.epss) EPSS scores imported\n".utf8)) }
            }
        }
    }
}

/// A file's bytes, gunzipped when it is gzip (EPSS is published as .csv.gz).
func readMaybeCompressed(_ path: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("\(path): cannot be read") }
    guard data.starts(with: [0x1f, 0x8b]) else { return data }
    return try FS.readAll(try DecompressingSource(MemorySource(Array(data)), compression: .gzip, what: path))
}

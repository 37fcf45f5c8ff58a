import ArgumentParser
import Foundation
import Inventory

struct AuditExposure: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exposure",
        abstract: "Per image name, how long it was exposed to an advisory: from its publication (or the image's creation, if later) until an index run saw the name on a fixed image.",
        discussion: "Times are those of `cairn audit index` runs: re-index after a rebase or rebuild to close the window.\nExample:\n  cairn audit exposure CVE-2023-30861")

    @Argument(help: "The advisory (its id or an alias: CVE-…, GHSA-…).") var advisory: String
    @OptionGroup var inventory: InventoryOptions

    func run() async throws {
        try await reportingErrors {
            let advisory = advisory
            let windows = try await inventory.open().run { try $0.exposure(advisory: advisory) }
            let open = windows.filter { $0.until == nil }.count
            try printRows(windows, columns: [
                ("IMAGE", \.image), ("FROM", \.from), ("UNTIL", { $0.until ?? "still exposed" }), ("DAYS", { String(format: "%.1f", $0.days) }),
                ("FIXED BY", { $0.fixedBy ?? "-" }), ("DIGEST", \.digest),
            ], format: inventory.format, summary: "\(windows.count) windows of exposure, \(open) still open") { out in
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                out.bytes += Array(try encoder.encode(windows))
            }
        }
    }
}

/// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
func parseDate(_ text: String) throws -> Date {
    let f = ISO8601DateFormatter()
    if let d = f.date(from: text) { return d }
    f.formatOptions = [.withFullDate]
    if let d = f.date(from: text) { return d }
    throw CLIError("--as-of \(text): expected a date (2026-03-01) or an RFC 3339 time (2026-03-01T12:00:00Z)")
}

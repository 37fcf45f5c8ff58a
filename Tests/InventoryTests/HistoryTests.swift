import Foundation
import Testing
import TestSupport
@testable import Inventory

/// Time (issue 39): a name moved to a fixed image by a later index run (a rebuild or rebase,
/// then `audit index`) is vulnerable as of a date before, not after; its window of exposure runs
/// from the advisory's publication until the run that saw the fix; a name still on an affected
/// image is still exposed; both databases.
@Test(arguments: backends) func asOfAndExposureFollowTheNamesAcrossIndexRuns(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    func day(_ text: String) -> Date { OSVRecord.time(text + "T00:00:00Z")! }
    var advisory = InventoryFixture.flaskAdvisory
    advisory.published = "2026-01-05T00:00:00Z"
    try f.inventory.importAdvisories([advisory])

    let january = try f.inventory.beginRun(source: "test", at: day("2026-01-10"))
    try f.inventory.add(InventoryFixture.app("sha256:a", flask: "2.2.0", bp: "1.0.0", run: nil), location: "store", names: ["app:latest", "pinned:1"], run: january)
    let march = try f.inventory.beginRun(source: "test", at: day("2026-03-10"))
    try f.inventory.add(InventoryFixture.app("sha256:b", flask: "2.3.3", bp: "1.0.0", run: nil), location: "store", names: ["app:latest"], run: march)

    func affected(asOf date: Date?) throws -> [String] {
        try f.inventory.vulnerabilities(asOf: date).filter { $0.status == nil }.map { "\($0.image) \($0.digest)" }
    }
    #expect(try affected(asOf: day("2026-02-01")) == ["app:latest sha256:a", "pinned:1 sha256:a"])
    #expect(try affected(asOf: nil) == ["pinned:1 sha256:a"], "today app:latest is the fixed image")
    #expect(try affected(asOf: day("2026-01-01")).isEmpty, "before the first index run nothing is known")
    #expect(try f.inventory.vulnerabilities(asOf: day("2026-02-01")).filter { $0.status == "unknown" }.map(\.image) == ["app:latest", "pinned:1"],
            "unknown images as of then, under their names then")

    let windows = try f.inventory.exposure(advisory: "CVE-2023-30861")
    #expect(windows.map { "\($0.image) \($0.from) \($0.until ?? "open") \($0.fixedBy ?? "-") \($0.days)" }
            == ["app:latest 2026-01-05T00:00:00Z 2026-03-10T00:00:00Z sha256:b 64.0", "pinned:1 2026-01-05T00:00:00Z open - \(windows.last?.days ?? -1)"])
    #expect((windows.last?.days ?? 0) > 300, "still open: until now")

    // The pinned name removed (its location listed in full without it): its window closes.
    let may = try f.inventory.beginRun(source: "test", at: day("2026-05-01"))
    try f.inventory.bind(location: "store", name: "app:latest", digest: "sha256:b", run: may)
    try f.inventory.forgetNames(location: "store", notSeenIn: may)
    #expect(try f.inventory.exposure(advisory: "GHSA-m2qf-hxjv-5gpq").last.map { "\($0.image) \($0.until ?? "open") \($0.fixedBy ?? "-")" }
            == "pinned:1 2026-05-01T00:00:00Z -")
    #expect(throws: InventoryError.self) { try f.inventory.exposure(advisory: "CVE-0000-0000") }
}

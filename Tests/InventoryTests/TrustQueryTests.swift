import Foundation
import Testing
import TestSupport
@testable import Inventory

/// The trust answers from records alone, the same on SQLite and PostgreSQL: unsigned, another
/// builder, a buildpackage's images; unchecked images stay listed; a new record replaces the
/// old one for its (image, key).
@Test(arguments: backends) func trustQuestionsAnswerFromTheRecordedStatus(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    try f.index(advisoriesFirst: true)
    let inv = f.inventory
    let run = try inv.beginRun(source: "trust")
    var a = TrustRecord(digest: "sha256:a", key: "k1")
    a.signed = true
    a.provenance = true
    a.builder = "team/builder"
    a.builderDigest = "sha256:b1"
    a.sources = [("tests/python@1.0.0", "team/python:1", "sha256:p1")]
    var b = TrustRecord(digest: "sha256:b", key: "k1")
    b.detail = "b is not signed"
    #expect(try inv.recordTrust([a, b, TrustRecord(digest: "sha256:unknown", key: "k1")], run: run) == 2, "an image not indexed is skipped")

    func ask(_ edit: (inout TrustQuestion) -> Void) throws -> [String] {
        var q = TrustQuestion(key: "k1")
        edit(&q)
        return try inv.trust(q).map { "\($0.image) \($0.status) \($0.reasons.joined(separator: "; "))" }
    }
    #expect(try ask { _ in } == ["a:latest signed ", "b:latest unsigned "])
    #expect(try ask { $0.unsigned = true } == ["b:latest unsigned unsigned: b is not signed"])
    #expect(try ask { $0.builderNot = "sha256:b1" } == ["b:latest unsigned no verified provenance names its builder"])
    #expect(try ask { $0.builderNot = "team/other" } == [
        "a:latest signed built by team/builder@sha256:b1", "b:latest unsigned no verified provenance names its builder",
    ])
    #expect(try ask { $0.fromBuildpackage = "sha256:p1" } == ["a:latest signed builder took tests/python@1.0.0 from team/python:1 (sha256:p1)"])
    #expect(try ask { $0.fromBuildpackage = "sha256:p2" }.isEmpty)
    // Another key was never used: everything is unchecked, even for a narrow question.
    #expect(try inv.trust(TrustQuestion(key: "k2")).map(\.status) == ["unchecked", "unchecked"])
    var q2 = TrustQuestion(key: "k2")
    q2.fromBuildpackage = "sha256:p1"
    #expect(try inv.trust(q2).count == 2)

    // Signed later: the new record replaces the old, sources included.
    b.signed = true
    a.sources = []
    try inv.recordTrust([a, b], run: try inv.beginRun(source: "trust"))
    #expect(try ask { $0.unsigned = true }.isEmpty)
    #expect(try ask { $0.fromBuildpackage = "sha256:p1" }.isEmpty)
}

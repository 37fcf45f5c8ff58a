import Foundation
@testable import Phases
import Testing

/// Where the exporter finds the extended run image under `<extended>/run`: the layout itself
/// (Cairn's extender and platform), or its one subdirectory (the reference's `run/sha256:<hex>/`).
@Test func theExporterFindsTheExtendedRunImageInEitherForm() throws {
    let root = FileManager.default.temporaryDirectory.path + "/extended-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: root) }
    let fm = FileManager.default

    let flat = root + "/flat/run"
    try fm.createDirectory(atPath: flat + "/blobs", withIntermediateDirectories: true)
    try Data("{}".utf8).write(to: URL(fileURLWithPath: flat + "/index.json"))
    #expect(Exporter.extendedLayout(flat) == flat)

    let nested = root + "/nested/run"
    let inner = nested + "/sha256:" + String(repeating: "a", count: 64)
    try fm.createDirectory(atPath: inner, withIntermediateDirectories: true)
    try Data("{}".utf8).write(to: URL(fileURLWithPath: inner + "/index.json"))
    #expect(Exporter.extendedLayout(nested) == inner)

    // Two candidates, or one without an index.json: neither form, so no image (the caller says so).
    try fm.createDirectory(atPath: nested + "/other", withIntermediateDirectories: true)
    #expect(Exporter.extendedLayout(nested) == nil)
    let empty = root + "/empty/run"
    try fm.createDirectory(atPath: empty + "/sha256:x", withIntermediateDirectories: true)
    #expect(Exporter.extendedLayout(empty) == nil)
    #expect(Exporter.extendedLayout(root + "/missing/run") == nil)
}

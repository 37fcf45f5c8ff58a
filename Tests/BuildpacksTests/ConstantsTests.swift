import Foundation
import Testing
import TestSupport

/// Spec constants live in one file (Sources/CNBCore/Constants.swift, shared with the launcher);
/// a `"CNB_` or `"io.buildpacks.` string literal anywhere else in Sources is drift waiting to happen.
@Test func specConstantsAreDeclaredOnce() throws {
    let sources = packageRoot + "/Sources"
    let allowed = sources + "/CNBCore/Constants.swift"
    var offenders: [String] = []
    let files = FileManager.default.enumerator(atPath: sources)?.compactMap { $0 as? String } ?? []
    for rel in files where rel.hasSuffix(".swift") {
        let path = sources + "/" + rel
        guard path != allowed else { continue }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where line.contains("\"CNB_") || line.contains("\"io.buildpacks.") {
            offenders.append("\(rel):\(n + 1): \(line.trimmingCharacters(in: .whitespaces))")
        }
    }
    #expect(offenders.isEmpty, "\(offenders.joined(separator: "\n"))")
}

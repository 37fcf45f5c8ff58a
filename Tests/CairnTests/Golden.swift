import Foundation
import Testing
import TestSupport

/// CLI output compared with a reviewed file under Tests/Fixtures/golden/, so a change in what
/// users (and their scripts) read is a change someone looked at. Digests, hex ids, times and
/// temp paths are masked first. `CAIRN_UPDATE_GOLDEN=1 swift test --filter …` rewrites the
/// files; the diff then goes into the commit.
enum Golden {
    static var directory: String { fixturesRoot + "/golden" }

    static func masked(_ text: String, paths: [String: String] = [:]) -> String {
        var out = text
        for (path, name) in paths.sorted(by: { $0.key.count > $1.key.count }) { out = out.replacingOccurrences(of: path, with: name) }
        out = out.replacing(#/sha256:[0-9a-f]{64}/#, with: "sha256:<digest>")
        out = out.replacing(#/sha256-[0-9a-f]{64}/#, with: "sha256-<digest>")
        out = out.replacing(#/\b[0-9a-f]{12,64}\b/#, with: "<hex>")
        out = out.replacing(#/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/#, with: "<time>")
        // Sizes move with the launcher and the run image (and their padding with them).
        out = out.replacing(#/\b\d+(\.\d+)? (B|kB|MB|GB) */#, with: "<size> ")
        return out
    }

    /// Expects `text` (masked) to equal the golden file `name`.
    static func expect(_ name: String, _ text: String, paths: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = directory + "/" + name
        let actual = masked(text, paths: paths)
        if ProcessInfo.processInfo.environment["CAIRN_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try writeFile(path, actual)
            return
        }
        let expected = try String(contentsOfFile: path, encoding: .utf8)
        if actual != expected {
            let a = actual.split(separator: "\n", omittingEmptySubsequences: false), e = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let first = zip(a, e).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, e.count)
            Issue.record("""
                output differs from \(path) at line \(first + 1) (CAIRN_UPDATE_GOLDEN=1 rewrites it):
                expected: \(first < e.count ? String(e[first]) : "<end>")
                actual:   \(first < a.count ? String(a[first]) : "<end>")
                """, sourceLocation: sourceLocation)
        }
    }
}

@Test func goldenMaskingHidesWhatChangesBetweenRuns() {
    let text = "app sha256:\(String(repeating: "ab", count: 32)) built 2026-12-06T09:00:01Z in /tmp/x-1/app, id 0123456789abcdef, 2.98 MB   gzip"
    #expect(Golden.masked(text, paths: ["/tmp/x-1": "<tmp>"]) == "app sha256:<digest> built <time> in <tmp>/app, id <hex>, <size> gzip")
}

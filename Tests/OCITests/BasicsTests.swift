import CairnBasics
import Foundation
import Testing

/// CairnBasics' shared helpers: the one JSON string writer and the one PATH search.
@Suite struct BasicsTests {
    /// Every string writes as Foundation's JSONEncoder writes it (with `/` left alone): quotes,
    /// backslashes, each control character, non-ASCII; on generated strings too.
    @Test func jsonStringsAreWhatFoundationWrites() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        var samples = ["", "plain", "a\"b", "back\\slash", "tab\tnew\nline\r", "\u{8}\u{c}\u{1}\u{1f}", "é ü 漢 🙂", "a/b"]
        samples += (0..<32).map { String(UnicodeScalar(UInt8($0))) }
        var rng = SplitMix64(state: 41)
        let alphabet = Array("ab\"\\/\t\n\u{0}\u{7}é漢🙂 ")
        for _ in 0..<500 { samples.append(String((0..<rng.below(12)).map { _ in alphabet[rng.below(alphabet.count)] })) }
        for s in samples {
            let expected = String(decoding: try encoder.encode(s), as: UTF8.self)
            #expect(jsonString(s) == expected, "\(Array(s.unicodeScalars))")
        }
    }

    /// As execvp searches: a name with a slash is itself; the first directory holding an
    /// executable regular file wins (a directory or a non-executable file of that name is
    /// passed over). (The empty entry, the working directory, is not tried here: tests share
    /// the process's working directory.)
    @Test func searchPathFindsExecutableFilesInOrder() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("searchpath-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for dir in ["a", "b", "c", "a/tool"] { try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true) }
        FileManager.default.createFile(atPath: root + "/b/tool", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o644])
        FileManager.default.createFile(atPath: root + "/c/tool", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
        let path = [root + "/a", root + "/b", root + "/c"].joined(separator: ":")
        #expect(searchPath("tool", in: path) == root + "/c/tool")
        #expect(searchPath("missing", in: path) == nil)
        #expect(searchPath("./x/tool", in: path) == "./x/tool")
        #expect(searchPath("tool", in: root + "/c:" + root + "/a") == root + "/c/tool")
    }
}

import Foundation
import OCI
import Testing
import TestSupport

/// Applies an in-memory tar to `root`.
@discardableResult
func apply(_ tar: [UInt8], to root: String, layer: String = "test-layer") throws -> ExtractStats {
    try LayerExtractor.apply(TarReader(source: MemorySource(tar)), to: root, layerName: layer)
}

func file(_ name: String, _ content: String, mode: UInt32 = 0o644) -> (TarHeader, [UInt8]) {
    (TarHeader(name: name, type: .regular, mode: mode), Array(content.utf8))
}

func tarOf(_ entries: [(TarHeader, [UInt8])]) throws -> [UInt8] {
    try makeTar { w in
        for (h, c) in entries {
            if h.type == .regular { try w.writeFile(h, contents: c) } else { try w.writeHeader(h) }
        }
    }
}

func link(_ name: String, to target: String, hard: Bool = false) -> (TarHeader, [UInt8]) {
    var h = TarHeader(name: name, type: hard ? .hardLink : .symlink, mode: 0o777)
    h.linkName = target
    return (h, [])
}

func dir(_ name: String, mode: UInt32 = 0o755) -> (TarHeader, [UInt8]) {
    (TarHeader(name: name, type: .directory, mode: mode), [])
}

@Suite struct LayerExtractorTests {
    @Test(arguments: OCI.Compression.allCases)
    func extractsWhatTheWriterWrote(_ compression: OCI.Compression) throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        try makeSampleTree(src)
        _ = try writeLayer(src, to: tmp.path + "/blob", options(compression))
        let dst = tmp.sub("dst")
        let stats = try LayerExtractor.apply(blobPath: tmp.path + "/blob", to: dst, layerName: "sample")
        #expect(stats.entries > 10)
        try expectSameTree(src, dst)
        // The hard link is a hard link again.
        var a = stat(), b = stat()
        lstat(dst + "/bin/run", &a)
        lstat(dst + "/bin/run-hardlink", &b)
        #expect(a.st_ino == b.st_ino)
    }

    @Test func whiteoutsAndOpaqueDirectories() throws {
        let tmp = TempDir()
        let root = tmp.sub("root")
        try apply(try tarOf([dir("a"), file("a/x", "x"), file("a/y", "y"), dir("b"), file("b/z", "z"), dir("b/sub"),
                             file("b/sub/deep", "d"), file("c", "c")]), to: root, layer: "lower")
        let stats = try apply(try tarOf([
            file("a/.wh.x", ""),
            dir("b"), file("b/new", "n"), file("b/.wh..wh..opq", ""),  // opaque after a new sibling: the sibling stays
            file(".wh.c", ""),
            file("nothere/.wh.ghost", ""),  // whiteout under a missing dir: nothing to do, nothing created
        ]), to: root, layer: "upper")
        #expect(stats.whiteouts == 4)
        let listing = try sh("cd '\(root)' && find . -mindepth 1 | LC_ALL=C sort").stdout
        #expect(listing == "./a\n./a/y\n./b\n./b/new\n")
    }

    @Test func followsSymlinksThatStayInsideTheTarget() throws {
        let tmp = TempDir()
        let root = tmp.sub("root")
        try apply(try tarOf([dir("usr"), dir("usr/lib"), link("lib", to: "usr/lib"), link("usr/lib64", to: "../usr/./lib")]), to: root)
        try apply(try tarOf([file("lib/libfoo.so", "foo"), file("usr/lib64/libbar.so", "bar")]), to: root)
        #expect(FileManager.default.contents(atPath: root + "/usr/lib/libfoo.so") == Data("foo".utf8))
        #expect(FileManager.default.contents(atPath: root + "/usr/lib/libbar.so") == Data("bar".utf8))
    }

    @Test func replacesASymlinkAtTheEntryPathInsteadOfWritingThroughIt() throws {
        let tmp = TempDir()
        let root = tmp.sub("root")
        let outside = tmp.sub("outside")
        try writeFile(outside + "/victim", "original")
        try apply(try tarOf([link("f", to: outside + "/victim")]), to: root, layer: "lower")
        try apply(try tarOf([file("f", "new content")]), to: root, layer: "upper")
        #expect(try String(contentsOfFile: outside + "/victim", encoding: .utf8) == "original")
        #expect(try String(contentsOfFile: root + "/f", encoding: .utf8) == "new content")
    }

    /// Each malicious layer is refused with an error naming the layer and entry, and nothing is
    /// written outside the target.
    @Test(arguments: ["dotdot", "absolute-dotdot", "symlink-absolute", "symlink-relative", "hardlink-out", "nested-dotdot"])
    func refusesEntriesThatWouldLandOutsideTheTarget(_ kind: String) throws {
        let tmp = TempDir()
        let root = tmp.sub("target/root")
        let outside = tmp.sub("outside")
        try writeFile(outside + "/secret", "secret")
        let entries: [(TarHeader, [UInt8])]
        let bad: String
        switch kind {
        case "dotdot":
            bad = "../x"
            entries = [file("ok", "fine"), file(bad, "pwned")]
        case "nested-dotdot":
            bad = "a/../../../outside/x"
            entries = [dir("a"), file(bad, "pwned")]
        case "absolute-dotdot":
            bad = "/../../outside/x"
            entries = [file(bad, "pwned")]
        case "symlink-absolute":
            bad = "evil/x"
            entries = [link("evil", to: outside), file(bad, "pwned")]
        case "symlink-relative":
            bad = "evil/x"
            entries = [link("evil", to: "../../outside"), file(bad, "pwned")]
        default:
            bad = "hard"
            entries = [link(bad, to: "../../outside/secret", hard: true)]
        }
        do {
            try apply(try tarOf(entries), to: root, layer: "malicious.tar")
            Issue.record("layer with \(kind) was accepted")
        } catch let error as OCIError {
            guard case .unsafeEntry(let layer, let entry, _) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(layer == "malicious.tar")
            #expect(entry == bad)
            #expect(error.description.contains("malicious.tar"))
        }
        let outsideListing = try sh("find '\(outside)' '\(tmp.path)/target' -newer '\(outside)/secret' -name x").stdout
        #expect(outsideListing.isEmpty)
        #expect(try sh("ls '\(outside)'").stdout == "secret\n")
        #expect(try String(contentsOfFile: outside + "/secret", encoding: .utf8) == "secret")
    }

    /// The reference lifecycle writes entries from the root (`/layers/...`, hard links to
    /// `/layers/...`); containerd, umoci and Docker read them relative to the target, and so do we.
    @Test func absoluteNamesAreReadFromTheTargetsRoot() throws {
        let tmp = TempDir()
        let root = tmp.sub("target/root")
        let outside = tmp.path + "/layers"
        try apply(try tarOf([dir("/layers"), file("/layers/app.txt", "app"),
                             link("/layers/hard", to: "/layers/app.txt", hard: true)]), to: root, layer: "reference.tar")
        #expect(try String(contentsOfFile: root + "/layers/app.txt", encoding: .utf8) == "app")
        #expect(try String(contentsOfFile: root + "/layers/hard", encoding: .utf8) == "app")
        #expect(!FileManager.default.fileExists(atPath: outside))
    }

    @Test func directoryModesApplyAfterTheirContents() throws {
        let tmp = TempDir()
        let root = tmp.sub("root")
        try apply(try tarOf([dir("ro", mode: 0o555), file("ro/inside", "i", mode: 0o400)]), to: root)
        var st = stat()
        lstat(root + "/ro", &st)
        #expect(st.st_mode & 0o7777 == 0o555)
        #expect(FileManager.default.fileExists(atPath: root + "/ro/inside"))
    }

    @Test(.requiresRoot("chown to other owners")) func appliesOwnersAsRoot() throws {
        let tmp = TempDir()
        let root = tmp.sub("root")
        var h = TarHeader(name: "owned", type: .regular, mode: 0o640, uid: 1234, gid: 5678)
        h.mtime = 1_000_000
        try apply(try tarOf([(h, Array("x".utf8))]), to: root)
        var st = stat()
        lstat(root + "/owned", &st)
        #expect(st.st_uid == 1234 && st.st_gid == 5678)
        #expect(st.st_mtim.tv_sec == 1_000_000)
    }
}

/// Hostile sizes (issue 17): an entry whose header claims a terabyte, with a kilobyte behind it,
/// fails with an error naming the layer and the entry, and writes no more than it received.
@Test func anEntryClaimingATerabyteWithAKilobyteBehindItFailsByName() throws {
    let tmp = TempDir()
    let root = tmp.sub("root")
    var header = TarHeader(name: "huge.bin", type: .regular, mode: 0o644)
    header.size = 1 << 40
    // The header alone (PAX, as the size needs), then 1 KiB where the terabyte should be.
    let headerOnly = try makeTar { t in try t.writeHeader(header) }.dropLast(1024)
    let tar = Array(headerOnly) + [UInt8](repeating: 0x41, count: 1024)
    do {
        try apply(tar, to: root, layer: "huge.tar")
        Issue.record("a truncated terabyte entry was accepted")
    } catch {
        #expect("\(error)".contains("huge.tar"), "\(error)")
        #expect("\(error)".contains("huge.bin"), "\(error)")
    }
    let used = try sh("du -sk '\(root)' | cut -f1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect((Int(used) ?? .max) < 1024, "\(used) KiB written for a 1 KiB body")
}

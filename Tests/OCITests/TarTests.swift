import Foundation
import OCI
import Testing
import TestSupport

/// Builds a tar in memory.
func makeTar(_ body: (TarWriter) throws -> Void) throws -> [UInt8] {
    let sink = MemoryConsumer()
    let w = TarWriter(consumer: sink, chunkSize: 4096)
    try body(w)
    try w.finish()
    return sink.bytes
}

/// Reads all headers (and regular files' contents) of a tar.
func readTar(_ bytes: [UInt8]) throws -> [(TarHeader, [UInt8])] {
    let r = TarReader(source: MemorySource(bytes))
    var out: [(TarHeader, [UInt8])] = []
    while let h = try r.next() {
        out.append((h, h.type == .regular ? try r.readAll() : []))
    }
    return out
}

@Suite struct TarCodecTests {
    @Test func roundTripThroughOurReader() throws {
        let longName = (0..<8).map { "directory-\($0)-" + String(repeating: "n", count: 30) }.joined(separator: "/") + "/file"
        let prefixName = String(repeating: "p", count: 120) + "/" + String(repeating: "f", count: 90)
        var entries: [(TarHeader, [UInt8])] = []
        entries.append((TarHeader(name: "dir", type: .directory, mode: 0o755, mtime: 315_532_801), []))
        entries.append((TarHeader(name: "dir/file", type: .regular, mode: 0o640, uid: 1000, gid: 1001, mtime: 12345), Array("hello\n".utf8)))
        entries.append((TarHeader(name: longName, type: .regular, mode: 0o600), Array(repeating: 7, count: 1500)))
        entries.append((TarHeader(name: prefixName, type: .regular, mode: 0o644), Array("prefix".utf8)))
        entries.append((TarHeader(name: "dir/ünïcødé €", type: .regular, mode: 0o644), Array("u".utf8)))
        entries.append((TarHeader(name: "big-ids", type: .regular, mode: 0o4755, uid: 3_000_000, gid: 2_500_000), []))
        var sym = TarHeader(name: "dir/link", type: .symlink, mode: 0o777)
        sym.linkName = String(repeating: "../target/", count: 15) + "é"
        entries.append((sym, []))
        var hard = TarHeader(name: "dir/hard", type: .hardLink, mode: 0o640)
        hard.linkName = "dir/file"
        entries.append((hard, []))
        entries.append((TarHeader(name: "fifo", type: .fifo, mode: 0o600), []))
        var dev = TarHeader(name: "null", type: .characterDevice, mode: 0o666)
        dev.devMajor = 1
        dev.devMinor = 3
        entries.append((dev, []))
        let bytes = try makeTar { w in
            for (h, content) in entries {
                if h.type == .regular { try w.writeFile(h, contents: content) } else { try w.writeHeader(h) }
            }
        }
        #expect(bytes.count % 512 == 0)
        let back = try readTar(bytes)
        #expect(back.count == entries.count)
        for ((h, c), (r, rc)) in zip(entries, back) {
            #expect(r.name == h.name)
            #expect(r.type == h.type)
            #expect(r.mode == h.mode)
            #expect(r.uid == h.uid && r.gid == h.gid)
            #expect(r.mtime == h.mtime)
            #expect(r.linkName == h.linkName)
            #expect(r.devMajor == h.devMajor && r.devMinor == h.devMinor)
            #expect(rc == c)
        }
    }

    @Test func largeSizeUsesPAX() throws {
        // Only the header: a size beyond 8 GiB - 1 must go into a PAX record.
        var h = TarHeader(name: "huge", type: .regular)
        h.size = 10 << 30
        let sink = MemoryConsumer()
        let w = TarWriter(consumer: sink, chunkSize: 4096)
        try w.writeHeader(h)
        try w.finish()
        let r = TarReader(source: MemorySource(sink.bytes))
        let back = try #require(try r.next())
        #expect(back.size == 10 << 30)
        #expect(String(decoding: sink.bytes, as: UTF8.self).contains("size=10737418240"))
    }

    @Test func badChecksumIsReported() throws {
        var bytes = try makeTar { try $0.writeFile(TarHeader(name: "a", type: .regular), contents: [1, 2, 3]) }
        bytes[10] ^= 0x55
        #expect(throws: OCIError.tar(.badChecksum(offset: 0))) { try readTar(bytes) }
    }

    @Test func truncatedArchiveNamesTheEntry() throws {
        let bytes = try makeTar { try $0.writeFile(TarHeader(name: "file.bin", type: .regular), contents: Array(repeating: 1, count: 2000)) }
        #expect(throws: OCIError.tar(.truncated(entry: "file.bin"))) { try readTar(Array(bytes.prefix(1200))) }
    }

    @Test(.requires("tar"))
    func gnuTarListsAndExtractsOurLayer() throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        try makeSampleTree(src)
        // Our layer, uncompressed, to a file.
        let fd = open(tmp.path + "/layer.tar", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let out = HashingFileOutput(fd: fd, path: tmp.path + "/layer.tar")
        var options = LayerWriteOptions()
        options.compression = .none
        options.uid = 1000
        options.gid = 1000
        let result = try LayerWriter.write(directory: src, options: options, to: out)
        close(fd)
        #expect(result.diffID == result.digest)
        let listing = try run(["tar", "-tvf", tmp.path + "/layer.tar"])
        #expect(listing.status == 0, "\(listing.stderr)")
        #expect(listing.stdout.contains("dir with space/ünïcødé.txt"))
        #expect(listing.stdout.contains("bin/run-hardlink link to bin/run"))
        #expect(listing.stdout.contains("bin/conf-link -> ../etc/app.conf"))
        #expect(listing.stdout.contains("1000/1000"))
        #expect(listing.stdout.contains("1980-01-01"))
        let dst = tmp.sub("gnu")
        let x = try run(["tar", "-xpf", tmp.path + "/layer.tar", "-C", dst])
        #expect(x.status == 0, "\(x.stderr)")
        try expectSameTree(src, dst)
    }

    @Test(.requires("tar"), arguments: ["gnu", "pax", "ustar", "oldgnu"])
    func readsArchivesMadeByGNUTar(format: String) throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        try makeSampleTree(src)
        if format == "ustar" || format == "oldgnu" {
            // ustar cannot hold non-ASCII names beyond its byte limits, keep it portable.
            _ = try sh("rm -rf '\(src)/dir with space'")
        }
        if format == "ustar" {
            _ = try sh("rm -rf '\(src)/segment-number-0-of-a-rather-long-path' '\(src)/bin/long-link'")
        }
        let made = try run(["tar", "--format=\(format)", "-cf", tmp.path + "/a.tar", "-C", src, "."])
        #expect(made.status == 0, "\(made.stderr)")
        let entries = try readTar(Array(try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/a.tar"))))
        let names = Set(entries.map(\.0.name))
        #expect(names.contains("./bin/run"))
        // GNU tar walks in readdir order: whichever of the pair comes second is the link.
        #expect(entries.contains {
            $0.0.type == .hardLink && Set([$0.0.name, $0.0.linkName]) == ["./bin/run", "./bin/run-hardlink"]
        })
        #expect(entries.contains { $0.0.name == "./bin/conf-link" && $0.0.type == .symlink && $0.0.linkName == "../etc/app.conf" })
        if format != "ustar" {
            #expect(names.contains { $0.hasSuffix(String(repeating: "x", count: 120)) })
            #expect(entries.contains { $0.0.name == "./bin/long-link" && $0.0.linkName.count > 200 })
        }
        let dst = tmp.sub("dst")
        try LayerExtractor.apply(blobPath: tmp.path + "/a.tar", to: dst, layerName: "gnu-\(format)")
        try expectSameTree(src, dst)
    }
}

/// Compares two trees: same paths, types, modes, link targets, file contents, hard links.
func expectSameTree(_ a: String, _ b: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    func describe(_ root: String) throws -> String {
        // %y type, %m mode, %l link target, %n link count; sizes via %s.
        try sh("cd '\(root)' && find . -mindepth 1 -printf '%p %y %m %s %n -> %l\\n' | LC_ALL=C sort").stdout
    }
    #expect(try describe(a) == describe(b), sourceLocation: sourceLocation)
    let diff = try run(["diff", "-r", "--no-dereference", a, b])
    #expect(diff.status == 0, "\(diff.stdout)\(diff.stderr)", sourceLocation: sourceLocation)
}

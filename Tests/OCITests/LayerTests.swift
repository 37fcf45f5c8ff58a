import Foundation
@testable import OCI
import Testing
import TestSupport

/// Writes `dir` as a layer into `path`.
func writeLayer(_ dir: String, to path: String, _ options: LayerWriteOptions) throws -> LayerResult {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    defer { close(fd) }
    return try LayerWriter.write(directory: dir, options: options, to: HashingFileOutput(fd: fd, path: path))
}

func options(_ c: OCI.Compression, workers: Int = 2) -> LayerWriteOptions {
    var o = LayerWriteOptions()
    o.compression = c
    o.workers = workers
    return o
}

@Suite struct LayerWriterTests {
    @Test(arguments: OCI.Compression.allCases)
    func sameTreeSameDigestsAfterTouchingAndChowning(_ compression: OCI.Compression) throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        try makeSampleTree(src)
        let first = try writeLayer(src, to: tmp.path + "/1", options(compression))
        let touched = try sh("find '\(src)' -exec touch -h -d '2001-02-03 04:05:06' {} + && sleep 1 && touch '\(src)/empty'"
            + (geteuid() == 0 ? " && chown -hR 4321:4321 '\(src)'" : ""))
        #expect(touched.status == 0)
        let second = try writeLayer(src, to: tmp.path + "/2", options(compression))
        #expect(first.diffID == second.diffID)
        #expect(first.digest == second.digest)
        #expect(first.size == second.size)
        #expect(first.mediaType == compression.layerMediaType)
    }

    @Test(arguments: [OCI.Compression.gzip, .zstd])
    func outputDoesNotDependOnThreadCount(_ compression: OCI.Compression) throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        try makeSampleTree(src)
        // Several chunks' worth of data so the parallel path is exercised.
        _ = try sh("head -c 6000000 /dev/urandom > '\(src)/random' && seq 1 400000 > '\(src)/text'")
        let one = try writeLayer(src, to: tmp.path + "/1", options(compression, workers: 1))
        let four = try writeLayer(src, to: tmp.path + "/4", options(compression, workers: 4))
        #expect(one.digest == four.digest)
        #expect(one.diffID == four.diffID)
    }

    @Test(.requires("gzip", "zstd"), arguments: [OCI.Compression.gzip, .zstd])
    func compressedBlobIsOneStandardStreamWhoseContentIsTheDiffID(_ compression: OCI.Compression) throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        try makeSampleTree(src)
        _ = try sh("seq 1 700000 > '\(src)/text'")
        let r = try writeLayer(src, to: tmp.path + "/blob", options(compression))
        let tool = compression == .gzip ? "gzip" : "zstd"
        let sum = try sh("\(tool) -dc '\(tmp.path)/blob' | sha256sum | cut -d' ' -f1")
        #expect(sum.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == r.diffID.encoded)
        let blobSum = try sh("sha256sum '\(tmp.path)/blob' | cut -d' ' -f1")
        #expect(blobSum.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == r.digest.encoded)
        if compression == .gzip {
            // One member: gzip -l reports the uncompressed size from the single trailer.
            let list = try sh("gzip -lq '\(tmp.path)/blob' | awk '{print $2}'")
            #expect(Int64(list.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == r.uncompressedSize % (1 << 32))
            #expect(try sh("gzip -t '\(tmp.path)/blob'").status == 0)
        }
    }

    /// Random bytes are stored, not deflated: the blob is barely bigger than the tar, still one
    /// gzip stream that gzip and Python read back to the diffID, and text around them is still
    /// compressed.
    @Test(.requires("gzip")) func incompressibleChunksAreStoredAndTheStreamStaysStandard() throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        _ = try sh("head -c 8000000 /dev/urandom > '\(src)/random.bin' && seq 1 1000000 > '\(src)/text'")
        let r = try writeLayer(src, to: tmp.path + "/blob", options(.gzip))
        let text = try sh("seq 1 1000000 | wc -c").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let textSize = Int64(text) ?? 0
        // Stored: 8 MB plus a few bytes per 64 KiB block; the 6.9 MB of text compress to < 40%.
        #expect(r.size < 8_000_000 + 8_000_000 / 1000 + textSize * 4 / 10, "\(r.size)")
        #expect(r.size > 8_000_000, "\(r.size)")
        #expect(try sh("gzip -t '\(tmp.path)/blob'").status == 0)
        let sum = try sh("python3 -c 'import gzip,hashlib,sys; print(hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())' '\(tmp.path)/blob'")
        #expect(sum.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == r.diffID.encoded)
        // The same bytes deflated at level 1 cost far more time and save nothing: the chunk
        // check says so.
        let random = [UInt8]((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255) })
        let lines = [UInt8]((1...200_000).map { "\($0)\n" }.joined().utf8.prefix(1 << 20))
        #expect(ParallelGzipCompressor.looksIncompressible(random))
        #expect(!ParallelGzipCompressor.looksIncompressible(lines))
    }

    /// gzip at level 1 by default, as the reference lifecycle (go-containerregistry's BestSpeed);
    /// every level is deterministic; the level changes the blob, never the diffID.
    @Test func gzipDefaultsToLevelOneAndEachLevelIsDeterministic() throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        try makeSampleTree(src)
        _ = try sh("seq 1 300000 > '\(src)/text'")
        let byDefault = try writeLayer(src, to: tmp.path + "/d", options(.gzip))
        var o1 = options(.gzip)
        o1.level = 1
        var o9 = options(.gzip)
        o9.level = 9
        let one = try writeLayer(src, to: tmp.path + "/1", o1)
        let nine = try writeLayer(src, to: tmp.path + "/9", o9)
        let nineAgain = try writeLayer(src, to: tmp.path + "/9b", o9)
        #expect(byDefault.digest == one.digest)
        #expect(nine.digest == nineAgain.digest)
        #expect(nine.diffID == one.diffID && nine.digest != one.digest)
        #expect(nine.size < one.size)
        #expect(try LayerWriteOptions.fromEnvironment(["CAIRN_COMPRESSION_LEVEL": "9"]).level == 9)
        #expect(throws: OCIError.self) { try LayerWriteOptions.fromEnvironment(["CAIRN_COMPRESSION_LEVEL": "0"]) }
    }

    @Test func ownerAndTimeComeFromTheOptions() throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        try makeSampleTree(src)
        var o = try LayerWriteOptions.fromEnvironment(["SOURCE_DATE_EPOCH": "1700000000"])
        o.compression = .none
        o.uid = 1001
        o.gid = 1002
        o.prefix = "workspace/app"
        _ = try writeLayer(src, to: tmp.path + "/t", o)
        let entries = try readTar(Array(try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/t"))))
        #expect(entries.first?.0.name == "workspace")
        #expect(entries.dropFirst().first?.0.name == "workspace/app")
        #expect(entries.allSatisfy { $0.0.mtime == 1_700_000_000 && $0.0.uid == 1001 && $0.0.gid == 1002 })
        #expect(entries.allSatisfy { $0.0.userName.isEmpty && $0.0.groupName.isEmpty })
        #expect(throws: OCIError.invalidValue(name: "SOURCE_DATE_EPOCH", value: "soon", expected: "seconds since the epoch")) {
            try LayerWriteOptions.fromEnvironment(["SOURCE_DATE_EPOCH": "soon"])
        }
    }

    @Test func entriesAreSortedBytewisePerDirectory() throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        for name in ["b", "B", "a.txt", "a", "_x", "Z", "a-b"] { try writeFile(src + "/" + name + "/f", "") }
        var o = LayerWriteOptions()
        o.compression = .none
        _ = try writeLayer(src, to: tmp.path + "/t", o)
        let tops = try readTar(Array(try Data(contentsOf: URL(fileURLWithPath: tmp.path + "/t"))))
            .map(\.0.name).filter { !$0.contains("/") }
        #expect(tops == ["B", "Z", "_x", "a", "a-b", "a.txt", "b"])
    }

    @Test func missingDirectoryIsAClearError() {
        #expect(throws: OCIError.io(operation: "read", path: "/nonexistent/cairn", errno: ENOENT)) {
            try LayerWriter.write(directory: "/nonexistent/cairn", options: LayerWriteOptions(), to: DigestOnlyOutput())
        }
    }
}

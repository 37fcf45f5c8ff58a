import CCairn
import Processes
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// Where compressed bytes end: counted and hashed (the blob digest) as they pass.
public protocol BlobOutput: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Digest and count of everything written so far.
    var digester: DigestingCounter { get }
}

/// Writes to a file descriptor, hashing and counting what it writes.
public final class HashingFileOutput: BlobOutput {
    public let fd: Int32
    public let path: String
    public private(set) var digester = DigestingCounter()

    public init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        digester.update(bytes)
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw OCIError.io(operation: "write", path: path, errno: errno)
            }
            offset += n
        }
    }
}

/// Hashes and counts only (dry runs, tests, and the `none` compression diffID check).
public final class DigestOnlyOutput: BlobOutput {
    public private(set) var digester = DigestingCounter()
    public init() {}
    public func write(_ bytes: UnsafeRawBufferPointer) throws { digester.update(bytes) }
}

/// A compressor stage: tar chunks in, compressed bytes out to a `BlobOutput`.
protocol Compressor: AnyObject {
    func add(_ chunk: [UInt8]) throws
    func finish() throws
}

final class StoreCompressor: Compressor {
    let out: any BlobOutput
    init(out: any BlobOutput) { self.out = out }
    func add(_ chunk: [UInt8]) throws { try chunk.withUnsafeBytes { try out.write($0) } }
    func finish() throws {}
}

/// gzip in parallel on all cores, producing one standard gzip member (pigz's scheme): the
/// input is cut into the chunks the tar writer hands over; each is raw-deflated independently
/// with the previous chunk's last 32 KiB as dictionary and ends with a sync flush; CRC-32s are
/// combined. A chunk that deflate would not shrink is stored (`looksIncompressible`). The output
/// depends only on the chunk size, level and bytes, never on the number of threads, so digests
/// are the same on every machine.
final class ParallelGzipCompressor: Compressor {
    private struct Job: Sendable {
        let sequence: Int
        let input: [UInt8]
        let dictionary: [UInt8]
        let isFinal: Bool
    }
    private struct Done: Sendable {
        let output: [UInt8]
        let crc: UInt32
        let length: Int
    }

    private final class Shared: @unchecked Sendable {
        let condition = Condition()
        var jobs: [Job] = []
        var done: [Int: Done] = [:]
        var failed: String?
        var closed = false
    }

    private let out: any BlobOutput
    private let level: Int32
    private let shared = Shared()
    private let maxInFlight: Int
    private var nextSequence = 0
    private var nextToWrite = 0
    private var pending: [UInt8]?
    private var previousTail: [UInt8] = []
    private var crc: UInt32 = 0
    private var totalLength: UInt64 = 0

    init(out: any BlobOutput, level: Int32, workers: Int) throws {
        self.out = out
        self.level = level
        self.maxInFlight = 2 * workers + 2
        // RFC 1952 header: no name, mtime 0 (reproducible), OS 255 (unknown) as Go's gzip writes.
        let header: [UInt8] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]
        try header.withUnsafeBytes { try out.write($0) }
        for _ in 0..<max(1, workers) {
            let shared = self.shared
            let level = self.level
            startThread(stackSize: 1 << 20) { Self.work(shared, level: level) }
        }
    }

    deinit {
        shared.condition.lock()
        shared.closed = true
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    private static func work(_ shared: Shared, level: Int32) {
        while true {
            shared.condition.lock()
            while shared.jobs.isEmpty && !shared.closed { shared.condition.wait() }
            if shared.jobs.isEmpty {
                shared.condition.unlock()
                return
            }
            // At most maxInFlight jobs are queued, so removing from the front is cheap; taking
            // the job out releases its input as soon as it is compressed.
            let job = shared.jobs.removeFirst()
            shared.condition.unlock()

            let bound = cairn_deflate_bound(job.input.count)
            var output = [UInt8](unsafeUninitializedCapacity: bound) { _, n in n = bound }
            let chunkLevel = level > 0 && looksIncompressible(job.input) ? 0 : level
            let produced = job.input.withUnsafeBufferPointer { input in
                job.dictionary.withUnsafeBufferPointer { dict in
                    output.withUnsafeMutableBufferPointer { outp in
                        cairn_deflate_chunk(chunkLevel, dict.baseAddress, dict.count, input.baseAddress, input.count,
                                            job.isFinal ? 1 : 0, outp.baseAddress, outp.count)
                    }
                }
            }
            let crc = job.input.withUnsafeBufferPointer { cairn_crc32(0, $0.baseAddress, $0.count) }

            shared.condition.lock()
            if produced < 0 {
                shared.failed = "deflate failed on chunk \(job.sequence)"
            } else {
                output.removeSubrange(Int(produced)...)
                shared.done[job.sequence] = Done(output: output, crc: crc, length: job.input.count)
            }
            shared.condition.broadcast()
            shared.condition.unlock()
        }
    }

    /// Whether deflate would not shrink `chunk`: three 4 KiB samples (start, middle, end), each
    /// deflated at level 1, none below 95% of its size. Such a chunk (random bytes, or already
    /// compressed: jars, wheels, images, archives) is stored (level 0), as fast as copying,
    /// instead of deflated for nothing; a compressible first sample ends the check. Depends
    /// only on the chunk's bytes, so digests stay reproducible.
    static func looksIncompressible(_ chunk: [UInt8]) -> Bool {
        let sample = 4096
        guard chunk.count >= 16 * sample else { return false }
        var scratch = [UInt8](repeating: 0, count: cairn_deflate_bound(sample))
        for start in [0, chunk.count / 2, chunk.count - sample] {
            let produced = chunk.withUnsafeBufferPointer { input in
                scratch.withUnsafeMutableBufferPointer { outp in
                    cairn_deflate_chunk(1, nil, 0, input.baseAddress! + start, sample, 1, outp.baseAddress, outp.count)
                }
            }
            if produced < 0 || produced * 100 < sample * 95 { return false }
        }
        return true
    }

    func add(_ chunk: [UInt8]) throws {
        if let held = pending { try submit(held, isFinal: false) }
        pending = chunk
    }

    func finish() throws {
        try submit(pending ?? [], isFinal: true)
        pending = nil
        try drain(waitForAll: true)
        shared.condition.lock()
        shared.closed = true
        shared.condition.broadcast()
        shared.condition.unlock()
        var trailer = [UInt8](repeating: 0, count: 8)
        for i in 0..<4 {
            trailer[i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i)))
            trailer[4 + i] = UInt8(truncatingIfNeeded: UInt32(truncatingIfNeeded: totalLength) >> (8 * UInt32(i)))
        }
        try trailer.withUnsafeBytes { try out.write($0) }
    }

    private func submit(_ input: [UInt8], isFinal: Bool) throws {
        let job = Job(sequence: nextSequence, input: input, dictionary: previousTail, isFinal: isFinal)
        previousTail = input.count >= 32768 ? Array(input.suffix(32768)) : Array((previousTail + input).suffix(32768))
        nextSequence += 1
        shared.condition.lock()
        shared.jobs.append(job)
        shared.condition.signal()
        shared.condition.unlock()
        try drain(waitForAll: false)
    }

    /// Writes finished chunks in order; blocks while too many are in flight (or all, at the end).
    private func drain(waitForAll: Bool) throws {
        while nextToWrite < nextSequence {
            shared.condition.lock()
            var result = shared.done.removeValue(forKey: nextToWrite)
            let mustWait = waitForAll || nextSequence - nextToWrite > maxInFlight
            while result == nil && mustWait && shared.failed == nil {
                shared.condition.wait()
                result = shared.done.removeValue(forKey: nextToWrite)
            }
            let failure = shared.failed
            shared.condition.unlock()
            if let failure { throw OCIError.compression(failure) }
            guard let done = result else { return }
            try done.output.withUnsafeBytes { try out.write($0) }
            crc = cairn_crc32_combine(crc, done.crc, Int64(done.length))
            totalLength &+= UInt64(done.length)
            nextToWrite += 1
        }
    }
}

/// zstd through libzstd's streaming API with its own worker threads (`nbWorkers` >= 1, whose
/// output is the same for any worker count).
final class ZstdCompressor: Compressor {
    private let out: any BlobOutput
    private let stream: OpaquePointer
    private var buffer: [UInt8]

    init(out: any BlobOutput, level: Int32, workers: Int) throws {
        guard let s = cairn_zstd_c_new(level, Int32(max(1, workers))) else {
            throw OCIError.compression("cannot start zstd with \(workers) workers (libzstd without threads?)")
        }
        self.out = out
        self.stream = s
        self.buffer = [UInt8](repeating: 0, count: max(cairn_zstd_c_out_size(), 1 << 17))
    }

    deinit { cairn_zstd_c_free(stream) }

    func add(_ chunk: [UInt8]) throws {
        try step(chunk, end: false)
    }

    func finish() throws {
        try step([], end: true)
    }

    private func step(_ input: [UInt8], end: Bool) throws {
        var offset = 0
        while true {
            var consumed = 0
            var produced = 0
            let rc = input.withUnsafeBufferPointer { inp in
                buffer.withUnsafeMutableBufferPointer { outp in
                    cairn_zstd_c_step(stream, inp.baseAddress.map { $0 + offset }, inp.count - offset, &consumed,
                                      outp.baseAddress, outp.count, &produced, end ? 2 : 0)
                }
            }
            if rc < 0 { throw OCIError.compression("zstd stream error") }
            offset += consumed
            if produced > 0 {
                try buffer.withUnsafeBytes { try out.write(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
            }
            if end {
                if rc == 0 && offset == input.count { return }
            } else if offset == input.count {
                return
            }
        }
    }
}

/// Reads a file descriptor.
public final class FileSource: ByteSource {
    public let fd: Int32
    public let path: String
    private let owned: Bool

    /// Opens `path` for reading.
    /// - Throws: `OCIError.io`.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw OCIError.io(operation: "open", path: path, errno: errno) }
        self.fd = fd
        self.path = path
        self.owned = true
    }

    public init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
        self.owned = false
    }

    deinit { if owned { close(fd) } }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress!, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw OCIError.io(operation: "read", path: path, errno: errno) }
        }
    }
}

/// Decompresses gzip (all members of a multi-member file) or zstd from another source.
public final class DecompressingSource: ByteSource {
    private let inner: any ByteSource
    private let kind: Compression
    private var inflater: OpaquePointer?
    private var zstd: OpaquePointer?
    // Not zeroed: only bytes `inner` wrote are read. Zeroing 256 KiB cost 64 page faults per
    // stream, most of the time it took to read a small layer (an SBOM layer when signing).
    private var input = [UInt8](unsafeUninitializedCapacity: 1 << 18) { _, count in count = 1 << 18 }
    private var inStart = 0
    private var inEnd = 0
    private var innerEOF = false
    private var streamEnded = false
    private let what: String

    public init(_ inner: any ByteSource, compression: Compression, what: String) throws {
        self.inner = inner
        self.kind = compression
        self.what = what
        switch compression {
        case .gzip: inflater = cairn_inflate_new()
        case .zstd: zstd = cairn_zstd_d_new()
        case .none: break
        }
        if compression != .none && inflater == nil && zstd == nil {
            throw OCIError.compression("cannot allocate a \(compression) decompressor")
        }
    }

    deinit {
        if let i = inflater { cairn_inflate_free(i) }
        if let z = zstd { cairn_zstd_d_free(z) }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if kind == .none { return try inner.read(into: buffer) }
        while true {
            if inStart == inEnd && !innerEOF {
                inEnd = try input.withUnsafeMutableBytes { try inner.read(into: $0) }
                inStart = 0
                if inEnd == 0 { innerEOF = true }
            }
            if inStart == inEnd && innerEOF {
                if streamEnded { return 0 }
                throw OCIError.compression("\(what): \(kind) stream is truncated")
            }
            var consumed = 0
            var produced = 0
            let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let rc: Int = input.withUnsafeBufferPointer { inp in
                if let i = inflater {
                    if streamEnded {
                        // A further gzip member follows (multi-member files, e.g. from pigz --independent).
                        _ = cairn_inflate_reset(i)
                    }
                    return Int(cairn_inflate_step(i, inp.baseAddress! + inStart, inEnd - inStart, &consumed,
                                                  base, buffer.count, &produced))
                } else {
                    let r = cairn_zstd_d_step(zstd!, inp.baseAddress! + inStart, inEnd - inStart, &consumed,
                                              base, buffer.count, &produced)
                    return r < 0 ? -1 : (r == 0 ? 1 : 0)
                }
            }
            if rc < 0 { throw OCIError.compression("\(what): corrupt \(kind) data") }
            inStart += consumed
            streamEnded = rc == 1
            if produced > 0 { return produced }
            if consumed == 0 && inStart < inEnd && !streamEnded {
                throw OCIError.compression("\(what): \(kind) decoder made no progress")
            }
        }
    }

    /// Sniffs the compression of a blob from its first bytes.
    public static func sniff(path: String) throws -> Compression {
        let src = try FileSource(path: path)
        var magic = [UInt8](repeating: 0, count: 4)
        let n = try magic.withUnsafeMutableBytes { try src.read(into: $0) }
        if n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b { return .gzip }
        if n >= 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] { return .zstd }
        return .none
    }
}

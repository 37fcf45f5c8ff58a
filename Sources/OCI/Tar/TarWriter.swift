#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Receives the bytes a `TarWriter` produces, in chunks it may keep (ownership passes).
public protocol ChunkConsumer: AnyObject {
    /// Consumes one chunk. The array is not used by the caller afterwards.
    func consume(_ chunk: [UInt8]) throws
}

/// Collects a whole stream in memory (tests, small archives).
public final class MemoryConsumer: ChunkConsumer {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public func consume(_ chunk: [UInt8]) throws { bytes.append(contentsOf: chunk) }
}

/// A streaming tar writer: ustar headers, with PAX extended headers when a name, link target,
/// size, id or time does not fit ustar or a name is not ASCII. Output goes to a `ChunkConsumer`
/// in fixed-size chunks, so memory does not depend on the archive size.
///
/// The writer emits exactly what its headers say; normalising owners and times is the caller's
/// choice (see `LayerWriter`).
public final class TarWriter {
    private let consumer: any ChunkConsumer
    private let chunkSize: Int
    private var buffer: [UInt8]
    private var fill = 0
    public private(set) var bytesWritten: Int64 = 0

    /// - Parameter chunkSize: size of the chunks handed to `consumer` (a multiple of 512).
    public init(consumer: any ChunkConsumer, chunkSize: Int = 1 << 20) {
        precondition(chunkSize >= TarFormat.blockSize && chunkSize % TarFormat.blockSize == 0)
        self.consumer = consumer
        self.chunkSize = chunkSize
        self.buffer = Self.newBuffer(chunkSize)
    }

    private static func newBuffer(_ n: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: n) { _, count in count = n }
    }

    /// Writes a header (and PAX header if needed) for an entry without content or whose content
    /// follows through `writeContent`.
    public func writeHeader(_ header: TarHeader) throws {
        var h = header
        if h.type != .regular { h.size = 0 }
        var pax: [(String, String)] = []
        var name = h.name
        if h.type == .directory && !name.hasSuffix("/") { name += "/" }
        let nameSplit = Self.splitUstarName(name)
        if nameSplit == nil { pax.append(("path", name)) }
        if h.linkName.utf8.count > 100 || !h.linkName.utf8.allSatisfy({ $0 < 0x80 }) {
            pax.append(("linkpath", h.linkName))
        }
        if h.size > TarFormat.maxOctal11 { pax.append(("size", String(h.size))) }
        if h.uid > TarFormat.maxOctal7 || h.uid < 0 { pax.append(("uid", String(h.uid))) }
        if h.gid > TarFormat.maxOctal7 || h.gid < 0 { pax.append(("gid", String(h.gid))) }
        if h.mtime > TarFormat.maxOctal11 || h.mtime < 0 { pax.append(("mtime", String(h.mtime))) }
        if h.userName.utf8.count > 31 || !h.userName.utf8.allSatisfy({ $0 < 0x80 }) {
            pax.append(("uname", h.userName))
        }
        if h.groupName.utf8.count > 31 || !h.groupName.utf8.allSatisfy({ $0 < 0x80 }) {
            pax.append(("gname", h.groupName))
        }
        if !pax.isEmpty {
            pax.sort { $0.0 < $1.0 }
            let body = Self.paxBody(pax)
            let base = name.split(separator: "/").last.map(String.init) ?? "entry"
            var paxHeader = TarHeader(name: Self.asciiTruncated("PaxHeaders/" + base, 100), type: .other(UInt8(ascii: "x")),
                                      mode: 0o644, size: Int64(body.count), mtime: max(0, min(h.mtime, TarFormat.maxOctal11)))
            paxHeader.linkName = ""
            try append(Self.encodeBlock(paxHeader, name: (paxHeader.name, ""), forPAX: true))
            try append(body)
            try pad(Int64(body.count))
        }
        let split = nameSplit ?? (Self.asciiTruncated(name, 100), "")
        try append(Self.encodeBlock(h, name: split, forPAX: false))
    }

    /// Writes a regular file whose content is in memory.
    public func writeFile(_ header: TarHeader, contents: [UInt8]) throws {
        var h = header
        h.type = .regular
        h.size = Int64(contents.count)
        try writeHeader(h)
        try append(contents)
        try pad(h.size)
    }

    /// Writes a regular file, reading exactly `header.size` bytes from `fd`.
    /// - Throws: `TarError.fileChanged` if the file ends early.
    public func writeFile(_ header: TarHeader, fd: Int32, path: String) throws {
        var h = header
        h.type = .regular
        try writeHeader(h)
        var remaining = h.size
        while remaining > 0 {
            if fill == chunkSize { try flush() }
            let want = Int(min(Int64(chunkSize - fill), remaining))
            let n = buffer.withUnsafeMutableBytes { raw in
                read(fd, raw.baseAddress! + fill, want)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw OCIError.io(operation: "read", path: path, errno: errno)
            }
            if n == 0 { throw OCIError.tar(.fileChanged(path: path)) }
            fill += n
            remaining -= Int64(n)
            bytesWritten += Int64(n)
        }
        try pad(h.size)
    }

    /// Writes the end-of-archive marker (two zero blocks) and hands the last chunk over.
    public func finish() throws {
        try append([UInt8](repeating: 0, count: 2 * TarFormat.blockSize))
        if fill > 0 {
            buffer.removeSubrange(fill...)
            let last = buffer
            buffer = []
            fill = 0
            try consumer.consume(last)
        }
    }

    private func flush() throws {
        guard fill > 0 else { return }
        let full: [UInt8]
        if fill == chunkSize {
            full = buffer
        } else {
            full = Array(buffer[..<fill])
        }
        buffer = Self.newBuffer(chunkSize)
        fill = 0
        try consumer.consume(full)
    }

    private func append(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            if fill == chunkSize { try flush() }
            let n = min(chunkSize - fill, bytes.count - offset)
            buffer.withUnsafeMutableBufferPointer { dst in
                bytes.withUnsafeBufferPointer { src in
                    (dst.baseAddress! + fill).update(from: src.baseAddress! + offset, count: n)
                }
            }
            fill += n
            offset += n
        }
        bytesWritten += Int64(bytes.count)
    }

    private func pad(_ size: Int64) throws {
        let rem = Int(size % Int64(TarFormat.blockSize))
        if rem != 0 { try append([UInt8](repeating: 0, count: TarFormat.blockSize - rem)) }
    }

    /// Splits a name into ustar (name, prefix), or nil if it needs PAX.
    static func splitUstarName(_ name: String) -> (String, String)? {
        let u = Array(name.utf8)
        guard u.allSatisfy({ $0 < 0x80 && $0 != 0 }) else { return nil }
        if u.count <= 100 { return (name, "") }
        guard u.count <= 256 else { return nil }
        // Find a '/' such that prefix <= 155 bytes and the rest <= 100 (and non-empty).
        var i = min(u.count - 1, 155)
        while i > 0 {
            if u[i] == UInt8(ascii: "/") && u.count - i - 1 <= 100 && u.count - i - 1 > 0 {
                return (String(decoding: u[(i + 1)...], as: UTF8.self), String(decoding: u[..<i], as: UTF8.self))
            }
            i -= 1
        }
        return nil
    }

    static func asciiTruncated(_ s: String, _ n: Int) -> String {
        String(decoding: s.utf8.prefix(n).map { $0 < 0x80 && $0 != 0 ? $0 : UInt8(ascii: "_") }, as: UTF8.self)
    }

    static func paxBody(_ records: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (key, value) in records {
            let payload = " \(key)=\(value)\n"
            let payloadLength = payload.utf8.count
            var length = payloadLength + 1
            while String(length).utf8.count + payloadLength != length {
                length = String(length).utf8.count + payloadLength
            }
            out.append(contentsOf: Array(String(length).utf8))
            out.append(contentsOf: Array(payload.utf8))
        }
        return out
    }

    static func encodeBlock(_ h: TarHeader, name: (String, String), forPAX: Bool) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: TarFormat.blockSize)
        func put(_ s: String, _ offset: Int, _ length: Int) {
            for (i, c) in s.utf8.prefix(length).enumerated() { b[offset + i] = c }
        }
        func octal(_ v: Int64, _ offset: Int, _ length: Int) {
            // length-1 zero-padded octal digits and a NUL; values that do not fit are in PAX.
            let clamped = max(0, min(v, (Int64(1) << (3 * Int64(length - 1))) - 1))
            var digits = String(clamped, radix: 8)
            digits = String(repeating: "0", count: max(0, length - 1 - digits.count)) + digits
            put(digits, offset, length - 1)
        }
        put(name.0, 0, 100)
        octal(Int64(h.mode & 0o7777), 100, 8)
        octal(Int64(h.uid), 108, 8)
        octal(Int64(h.gid), 116, 8)
        octal(h.size, 124, 12)
        octal(h.mtime, 136, 12)
        b[156] = h.type.flag
        if !forPAX { put(h.linkName.utf8.allSatisfy({ $0 < 0x80 }) ? h.linkName : "", 157, 100) }
        put("ustar\u{0}00", 257, 8)
        if !forPAX {
            put(asciiTruncated(h.userName, 32), 265, 32)
            put(asciiTruncated(h.groupName, 32), 297, 32)
        }
        if h.type == .characterDevice || h.type == .blockDevice {
            octal(Int64(h.devMajor), 329, 8)
            octal(Int64(h.devMinor), 337, 8)
        }
        put(name.1, 345, 155)
        // Checksum: sum of all bytes with the checksum field as spaces; 6 octal digits, NUL, space.
        for i in 148..<156 { b[i] = UInt8(ascii: " ") }
        let sum = b.reduce(0) { $0 + Int($1) }
        var digits = String(sum, radix: 8)
        digits = String(repeating: "0", count: max(0, 6 - digits.count)) + digits
        put(digits, 148, 6)
        b[154] = 0
        b[155] = UInt8(ascii: " ")
        return b
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A source of bytes: a file, a decompressor, memory.
public protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes; returns 0 only at the end of the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Bytes in memory.
public final class MemorySource: ByteSource {
    private let bytes: [UInt8]
    private var offset = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - offset)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + offset, byteCount: n)
        }
        offset += n
        return n
    }
}

/// A streaming tar reader: ustar, POSIX PAX (`x` and `g`), GNU long names and link targets
/// (`L`, `K`), base-256 numbers. Sparse files are refused.
///
/// Call `next()` for each header; the entry's content can then be read with `readContent` or
/// is skipped automatically by the following `next()`.
public final class TarReader {
    private let source: any ByteSource
    private var offset: Int64 = 0
    private var remainingContent: Int64 = 0
    private var remainingPadding: Int64 = 0
    private var globalPAX: [String: String] = [:]
    private var currentName = ""

    public init(source: any ByteSource) {
        self.source = source
    }

    /// The next entry's header, or nil at the end of the archive.
    /// - Throws: `OCIError.tar` for a corrupt or unsupported archive.
    public func next() throws -> TarHeader? {
        try skipRest()
        var pax: [String: String] = [:]
        var gnuLongName: String?
        var gnuLongLink: String?
        while true {
            let headerOffset = offset
            guard let block = try readBlock(allowEOF: true) else { return nil }
            if block.allSatisfy({ $0 == 0 }) {
                // End of archive: a second zero block (or EOF) follows.
                _ = try readBlock(allowEOF: true)
                return nil
            }
            try verifyChecksum(block, at: headerOffset)
            let flag = block[156]
            let size = try number(block, 124, 12, "size", headerOffset)
            let rawName = Self.string(block, 0, 100)
            switch flag {
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                let body = try readWhole(size, entry: rawName)
                let records = try Self.parsePAX(body, entry: currentName.isEmpty ? rawName : currentName)
                if flag == UInt8(ascii: "g") {
                    globalPAX.merge(records) { $1 }
                } else {
                    pax.merge(records) { $1 }
                }
                continue
            case UInt8(ascii: "L"):
                gnuLongName = Self.cString(try readWhole(size, entry: rawName))
                continue
            case UInt8(ascii: "K"):
                gnuLongLink = Self.cString(try readWhole(size, entry: rawName))
                continue
            default:
                break
            }
            let records = globalPAX.merging(pax) { $1 }
            var header = try makeHeader(block, at: headerOffset, records: records, longName: gnuLongName, longLink: gnuLongLink)
            header.size = size
            try Self.apply(records, to: &header)
            if flag == UInt8(ascii: "S") {
                throw OCIError.tar(.unsupportedEntry(entry: header.name, kind: "GNU sparse file"))
            }
            if header.type == .directory || (flag == UInt8(ascii: "D")) {
                header.type = .directory
            }
            while header.name.count > 1 && header.name.hasSuffix("/") { header.name.removeLast() }
            // Hard links, symlinks, directories, devices carry no content even if size says so
            // (except hard links in some writers; their bytes are skipped).
            remainingContent = header.size
            remainingPadding = Self.padding(header.size)
            if header.type != .regular { header.size = header.type == .hardLink ? 0 : header.size }
            return header
        }
    }

    /// The header's fields from a ustar/GNU block; the name from the ustar prefix, a GNU long
    /// name or the PAX path, the link name likewise.
    private func makeHeader(_ block: [UInt8], at headerOffset: Int64, records: [String: String],
                            longName: String?, longLink: String?) throws -> TarHeader {
        let isUstar = block[257..<263].elementsEqual(Array("ustar\u{0}".utf8))
        var name = Self.string(block, 0, 100)
        if isUstar {
            let prefix = Self.string(block, 345, 155)
            if !prefix.isEmpty { name = prefix + "/" + name }
        }
        if let n = longName { name = n }
        if let p = records["path"] { name = p }
        var header = TarHeader(name: name, type: TarEntryType(flag: block[156]))
        currentName = name
        header.mode = UInt32(truncatingIfNeeded: try number(block, 100, 8, "mode", headerOffset) & 0o7777)
        header.uid = Int(try number(block, 108, 8, "uid", headerOffset))
        header.gid = Int(try number(block, 116, 8, "gid", headerOffset))
        header.mtime = try number(block, 136, 12, "mtime", headerOffset)
        header.linkName = longLink ?? records["linkpath"] ?? Self.string(block, 157, 100)
        if let l = records["linkpath"] { header.linkName = l }
        header.userName = records["uname"] ?? Self.string(block, 265, 32)
        header.groupName = records["gname"] ?? Self.string(block, 297, 32)
        header.devMajor = Int(try number(block, 329, 8, "devmajor", headerOffset))
        header.devMinor = Int(try number(block, 337, 8, "devminor", headerOffset))
        return header
    }

    /// PAX records that override numeric fields; unknown ones are kept; sparse files refused.
    private static func apply(_ records: [String: String], to header: inout TarHeader) throws {
        let name = header.name
        for (key, value) in records {
            switch key {
            case "path", "linkpath", "uname", "gname": break
            case "size", "uid", "gid":
                guard let v = Int64(value), v >= 0 else {
                    throw OCIError.tar(.badPAXRecord(entry: name, detail: "\(key)=\(value) is not a number"))
                }
                if key == "size" { header.size = v } else if key == "uid" { header.uid = Int(v) } else { header.gid = Int(v) }
            case "mtime":
                let whole = value.split(separator: ".", maxSplits: 1).first.map(String.init) ?? value
                guard let v = Int64(whole) else {
                    throw OCIError.tar(.badPAXRecord(entry: name, detail: "mtime=\(value) is not a time"))
                }
                header.mtime = v
            case let k where k.hasPrefix("GNU.sparse"):
                throw OCIError.tar(.unsupportedEntry(entry: name, kind: "sparse file"))
            default:
                header.extraPAXRecords[key] = value
            }
        }
    }

    /// Reads up to `buffer.count` bytes of the current entry's content; 0 at its end.
    public func readContent(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard remainingContent > 0 else { return 0 }
        let want = Int(min(Int64(buffer.count), remainingContent))
        let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
        if n == 0 { throw OCIError.tar(.truncated(entry: currentName)) }
        remainingContent -= Int64(n)
        offset += Int64(n)
        return n
    }

    /// The whole content of the current entry (for small entries).
    public func readAll() throws -> [UInt8] {
        try readWhole(remainingContent, entry: currentName, keepPadding: true)
    }

    private func skipRest() throws {
        // Sized to what is left (a zeroed 64 KiB buffer on every entry was 16 page faults each).
        guard remainingContent > 0 || remainingPadding > 0 else { return }
        var scratch = [UInt8](repeating: 0, count: Int(min(64 * 1024, max(remainingContent, remainingPadding))))
        while remainingContent > 0 {
            _ = try scratch.withUnsafeMutableBytes { try readContent(into: $0) }
        }
        while remainingPadding > 0 {
            let n = Int(min(remainingPadding, Int64(scratch.count)))
            try scratch.withUnsafeMutableBytes { try readExactly(UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), entry: currentName) }
            remainingPadding -= Int64(n)
        }
    }

    private func readWhole(_ size: Int64, entry: String, keepPadding: Bool = false) throws -> [UInt8] {
        guard size >= 0, size < 64 << 20 else {
            throw OCIError.tar(.badPAXRecord(entry: entry, detail: "extended header of \(size) bytes is too large"))
        }
        var out = [UInt8](repeating: 0, count: Int(size))
        try out.withUnsafeMutableBytes { try readExactly($0, entry: entry) }
        if keepPadding {
            remainingContent = 0
        } else {
            var pad = [UInt8](repeating: 0, count: Int(Self.padding(size)))
            try pad.withUnsafeMutableBytes { try readExactly($0, entry: entry) }
        }
        return out
    }

    private func readBlock(allowEOF: Bool) throws -> [UInt8]? {
        var block = [UInt8](repeating: 0, count: TarFormat.blockSize)
        var got = 0
        while got < block.count {
            let n = try block.withUnsafeMutableBytes {
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[got...]))
            }
            if n == 0 {
                if got == 0 && allowEOF { return nil }
                throw OCIError.tar(.truncated(entry: currentName.isEmpty ? "header" : currentName))
            }
            got += n
        }
        offset += Int64(block.count)
        return block
    }

    private func readExactly(_ buffer: UnsafeMutableRawBufferPointer, entry: String) throws {
        var got = 0
        while got < buffer.count {
            let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[got...]))
            if n == 0 { throw OCIError.tar(.truncated(entry: entry)) }
            got += n
        }
        offset += Int64(got)
    }

    private func verifyChecksum(_ block: [UInt8], at offset: Int64) throws {
        let stored = try number(block, 148, 8, "chksum", offset)
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (i, b) in block.enumerated() {
            let v = (148..<156).contains(i) ? UInt8(ascii: " ") : b
            unsigned += Int64(v)
            signed += Int64(Int8(bitPattern: v))
        }
        guard stored == unsigned || stored == signed else { throw OCIError.tar(.badChecksum(offset: offset)) }
    }

    private func number(_ b: [UInt8], _ offset: Int, _ length: Int, _ field: String, _ at: Int64) throws -> Int64 {
        let bytes = b[offset..<(offset + length)]
        if let first = bytes.first, first & 0x80 != 0 {
            // GNU base-256: big-endian two's complement with the top bit as marker.
            guard first & 0x40 == 0 else { throw OCIError.tar(.badNumericField(field: field, offset: at)) }
            var v: Int64 = Int64(first & 0x3f)
            for byte in bytes.dropFirst() {
                guard v < (Int64.max >> 8) else { throw OCIError.tar(.badNumericField(field: field, offset: at)) }
                v = (v << 8) | Int64(byte)
            }
            return v
        }
        var v: Int64 = 0
        var seenDigit = false
        for c in bytes {
            if c == 0 || (c == UInt8(ascii: " ") && seenDigit) { break }
            if c == UInt8(ascii: " ") { continue }
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "7") else {
                throw OCIError.tar(.badNumericField(field: field, offset: at))
            }
            seenDigit = true
            v = v * 8 + Int64(c - UInt8(ascii: "0"))
        }
        return v
    }

    private static func padding(_ size: Int64) -> Int64 {
        let rem = size % Int64(TarFormat.blockSize)
        return rem == 0 ? 0 : Int64(TarFormat.blockSize) - rem
    }

    static func string(_ b: [UInt8], _ offset: Int, _ length: Int) -> String {
        let field = b[offset..<(offset + length)]
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return String(decoding: field[..<end], as: UTF8.self)
    }

    static func cString(_ bytes: [UInt8]) -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    static func parsePAX(_ body: [UInt8], entry: String) throws -> [String: String] {
        var records: [String: String] = [:]
        var i = 0
        while i < body.count {
            if body[i] == 0 { break }
            guard let space = body[i...].firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: body[i..<space], as: UTF8.self)),
                  length > space - i + 1, i + length <= body.count, body[i + length - 1] == UInt8(ascii: "\n")
            else { throw OCIError.tar(.badPAXRecord(entry: entry, detail: "bad record length at byte \(i)")) }
            let record = body[(space + 1)..<(i + length - 1)]
            guard let eq = record.firstIndex(of: UInt8(ascii: "=")) else {
                throw OCIError.tar(.badPAXRecord(entry: entry, detail: "record without '=' at byte \(i)"))
            }
            let key = String(decoding: record[..<eq], as: UTF8.self)
            let value = String(decoding: record[(eq + 1)...], as: UTF8.self)
            records[key] = value
            i += length
        }
        return records
    }
}

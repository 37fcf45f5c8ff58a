/// Errors of the tar codec.
public enum TarError: Error, Hashable, Sendable, CustomStringConvertible {
    case badChecksum(offset: Int64)
    case badNumericField(field: String, offset: Int64)
    case truncated(entry: String)
    case badPAXRecord(entry: String, detail: String)
    case unsupportedEntry(entry: String, kind: String)
    case fileChanged(path: String)
    case nameNotUTF8(path: String)

    public var description: String {
        switch self {
        case .badChecksum(let offset):
            return "tar header at byte \(offset) has a bad checksum (not a tar archive, or corrupted)"
        case .badNumericField(let field, let offset):
            return "tar header at byte \(offset): field \(field) is not a valid number"
        case .truncated(let entry):
            return "tar archive ends inside entry \"\(entry)\""
        case .badPAXRecord(let entry, let detail):
            return "tar PAX header for \"\(entry)\" is malformed: \(detail)"
        case .unsupportedEntry(let entry, let kind):
            return "tar entry \"\(entry)\" is a \(kind), which Cairn does not support"
        case .fileChanged(let path):
            return "\(path) changed size while it was being archived"
        case .nameNotUTF8(let path):
            return "\(path): file name is not valid UTF-8"
        }
    }
}

/// The kind of a tar entry.
public enum TarEntryType: Hashable, Sendable {
    case regular, hardLink, symlink, characterDevice, blockDevice, directory, fifo
    case other(UInt8)

    init(flag: UInt8) {
        switch flag {
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): self = .regular
        case UInt8(ascii: "1"): self = .hardLink
        case UInt8(ascii: "2"): self = .symlink
        case UInt8(ascii: "3"): self = .characterDevice
        case UInt8(ascii: "4"): self = .blockDevice
        case UInt8(ascii: "5"): self = .directory
        case UInt8(ascii: "6"): self = .fifo
        default: self = .other(flag)
        }
    }

    var flag: UInt8 {
        switch self {
        case .regular: return UInt8(ascii: "0")
        case .hardLink: return UInt8(ascii: "1")
        case .symlink: return UInt8(ascii: "2")
        case .characterDevice: return UInt8(ascii: "3")
        case .blockDevice: return UInt8(ascii: "4")
        case .directory: return UInt8(ascii: "5")
        case .fifo: return UInt8(ascii: "6")
        case .other(let f): return f
        }
    }
}

/// One tar entry's metadata. Names are relative paths with `/` separators; directories carry no
/// trailing slash here (the writer adds it, the reader strips it).
public struct TarHeader: Hashable, Sendable {
    public var name: String
    public var type: TarEntryType
    /// Permission bits including setuid/setgid/sticky (0o7777).
    public var mode: UInt32
    public var uid: Int
    public var gid: Int
    public var size: Int64
    /// Seconds since the epoch.
    public var mtime: Int64
    public var linkName: String
    public var userName: String
    public var groupName: String
    public var devMajor: Int
    public var devMinor: Int
    /// PAX records read for this entry that have no field of their own (e.g. xattrs).
    public var extraPAXRecords: [String: String]

    public init(name: String, type: TarEntryType, mode: UInt32 = 0o644, uid: Int = 0, gid: Int = 0,
                size: Int64 = 0, mtime: Int64 = 0, linkName: String = "", userName: String = "",
                groupName: String = "", devMajor: Int = 0, devMinor: Int = 0) {
        self.name = name
        self.type = type
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.mtime = mtime
        self.linkName = linkName
        self.userName = userName
        self.groupName = groupName
        self.devMajor = devMajor
        self.devMinor = devMinor
        self.extraPAXRecords = [:]
    }
}

enum TarFormat {
    static let blockSize = 512
    static let maxOctal11: Int64 = 0o77777777777  // size and mtime fields
    static let maxOctal7 = 0o7777777  // uid, gid, dev fields
}

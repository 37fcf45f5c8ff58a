import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// A content digest, `algorithm:encoded`, as defined by the OCI image spec (descriptor.md, "Digests").
///
/// Construction validates the grammar; `sha256` and `sha512` encodings must be lowercase hex of the
/// registered length. https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests
public struct Digest: Hashable, Sendable, Codable, Comparable, CustomStringConvertible, LosslessStringConvertible {
    public let algorithm: String
    public let encoded: String

    /// Errors from parsing a digest string.
    public enum ValidationError: Error, Hashable, Sendable, CustomStringConvertible {
        case malformed(String)
        case badEncoding(algorithm: String, encoded: String)

        public var description: String {
            switch self {
            case .malformed(let s):
                return "invalid digest \"\(s)\": expected algorithm:hex, e.g. sha256:<64 lowercase hex digits>"
            case .badEncoding(let algorithm, let encoded):
                let len = algorithm == "sha512" ? 128 : 64
                return "invalid \(algorithm) digest \"\(algorithm):\(encoded)\": expected \(len) lowercase hex digits"
            }
        }
    }

    /// Parses and validates `algorithm:encoded`.
    /// - Throws: `Digest.ValidationError` when the string does not follow the digest grammar.
    public init(parsing string: String) throws(ValidationError) {
        guard let colon = string.firstIndex(of: ":") else { throw .malformed(string) }
        let algorithm = String(string[..<colon])
        let encoded = String(string[string.index(after: colon)...])
        guard Self.isValidAlgorithm(algorithm), Self.isValidEncoded(encoded) else { throw .malformed(string) }
        switch algorithm {
        case "sha256", "sha512":
            let expected = algorithm == "sha256" ? 64 : 128
            guard encoded.utf8.count == expected,
                  encoded.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
            else { throw .badEncoding(algorithm: algorithm, encoded: encoded) }
        default:
            break
        }
        self.algorithm = algorithm
        self.encoded = encoded
    }

    public init?(_ description: String) {
        try? self.init(parsing: description)
    }

    /// A sha256 digest from 32 raw bytes.
    public init<D: Sequence>(sha256Bytes bytes: D) where D.Element == UInt8 {
        self.algorithm = "sha256"
        self.encoded = hexString(bytes)
    }

    /// The sha256 digest of `data`.
    public static func sha256<D: DataProtocol>(of data: D) -> Digest {
        var hasher = SHA256Hasher()
        for region in data.regions { region.withUnsafeBytes { hasher.update($0) } }
        return Digest(sha256Bytes: hasher.finalize())
    }

    /// The ChainID of a stack of layers, bottom first (image-spec config.md): the first diffID,
    /// then `sha256(previous + " " + next)` for each layer above. It names the whole stack, so
    /// two images whose top layers are byte-identical but whose lower layers differ get
    /// different ChainIDs; nil for no layers.
    public static func chainID<C: Collection>(of diffIDs: C) -> Digest? where C.Element == Digest {
        guard var chain = diffIDs.first else { return nil }
        for next in diffIDs.dropFirst() { chain = sha256(of: Array("\(chain) \(next)".utf8)) }
        return chain
    }

    public var description: String { "\(algorithm):\(encoded)" }

    /// The first 12 hex characters, as image listings show them.
    public var short: String { String(encoded.prefix(12)) }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.description < rhs.description }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do {
            try self.init(parsing: string)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    private static func isValidAlgorithm(_ s: String) -> Bool {
        // algorithm ::= algorithm-component (algorithm-separator algorithm-component)*
        // algorithm-component ::= [a-z0-9]+ ; algorithm-separator ::= [+._-]
        guard !s.isEmpty else { return false }
        var previousWasSeparator = true
        for c in s.utf8 {
            let isComponent = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)
            let isSeparator = c == 0x2b || c == 0x2e || c == 0x5f || c == 0x2d
            if isComponent {
                previousWasSeparator = false
            } else if isSeparator {
                if previousWasSeparator { return false }
                previousWasSeparator = true
            } else {
                return false
            }
        }
        return !previousWasSeparator
    }

    private static func isValidEncoded(_ s: String) -> Bool {
        // encoded ::= [a-zA-Z0-9=_-]+
        !s.isEmpty && s.utf8.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39)
                || $0 == 0x3d || $0 == 0x5f || $0 == 0x2d
        }
    }
}

/// Lowercase hex of a byte sequence.
func hexString<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(64)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0xf)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Incremental sha256 with a byte count: the diffID and blob digest of streamed content.
public struct DigestingCounter {
    private var hasher = SHA256Hasher()
    public private(set) var count: Int64 = 0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        hasher.update(bytes)
        count += Int64(bytes.count)
    }

    public func finalize() -> Digest {
        Digest(sha256Bytes: hasher.finalize())
    }
}

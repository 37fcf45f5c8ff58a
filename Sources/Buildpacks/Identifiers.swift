import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// A string validated once, in its throwing init; decoding goes through that init, so a bad
/// value in a file is reported with its key path.
public protocol ValidatedIdentifier: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    var value: String { get }
    init(_ value: String) throws(FieldError)
}

extension ValidatedIdentifier {
    /// Non-empty, ASCII letters and digits plus `punctuation` only.
    static func isMade(of value: String, punctuation: Set<Unicode.Scalar>) -> Bool {
        !value.isEmpty && value.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || punctuation.contains($0))
        }
    }

    public var description: String { value }
    public static func < (l: Self, r: Self) -> Bool { l.value < r.value }

    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(s) } catch { throw decoder.invalid(error.message) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(value)
    }
}

/// A buildpack or extension ID (buildpack.md, buildpack.toml: "The buildpack ID").
public struct BuildpackID: ValidatedIdentifier {
    public let value: String

    static let reserved: Set<String> = ["app", "config", "generated", "sbom"]

    /// Validates: letters, digits, `.`, `/`, `-` only; not a reserved name.
    /// - Throws: `FieldError`.
    public init(_ value: String) throws(FieldError) {
        guard Self.isMade(of: value, punctuation: [".", "/", "-"])
        else { throw FieldError(key: "id", message: "\"\(value)\" may contain only letters, numbers, '.', '/' and '-'") }
        guard !Self.reserved.contains(value) else {
            throw FieldError(key: "id", message: "\"\(value)\" is reserved (app, config, generated, sbom)")
        }
        self.value = value
    }

    /// The ID with `/` replaced by `_`, as a directory name under `<layers>` (`escapedID`).
    public var escaped: String { escapedID(value) }
}

/// A buildpack or extension ID with `/` replaced by `_`, as directories under `<layers>`,
/// `/cnb/buildpacks` and the SBOM layer name it (a character map: the string-processing
/// `replacing` cost ~0.1 ms and Foundation's `replacingOccurrences` ~0.4 ms on first use in a
/// process). For IDs not yet validated, too (labels of images from elsewhere).
public func escapedID(_ id: String) -> String { String(id.map { $0 == "/" ? "_" : $0 }) }

/// A process type (buildpack.md, launch.toml): letters, digits, `.`, `_`, `-`.
public struct ProcessType: ValidatedIdentifier {
    public let value: String

    /// - Throws: `FieldError`.
    public init(_ value: String) throws(FieldError) {
        guard Self.isMade(of: value, punctuation: [".", "_", "-"])
        else { throw FieldError(key: "type", message: "\"\(value)\" may contain only letters, numbers, '.', '_' and '-'") }
        self.value = value
    }
}

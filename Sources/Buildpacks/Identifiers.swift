import Foundation

/// A buildpack or extension ID (buildpack.md, buildpack.toml: "The buildpack ID").
public struct BuildpackID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let value: String

    static let reserved: Set<String> = ["app", "config", "generated", "sbom"]

    /// Validates: letters, digits, `.`, `/`, `-` only; not a reserved name.
    /// - Throws: `FieldError`.
    public init(_ value: String) throws(FieldError) {
        guard !value.isEmpty,
              value.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "." || $0 == "/" || $0 == "-") })
        else { throw FieldError(key: "id", message: "\"\(value)\" may contain only letters, numbers, '.', '/' and '-'") }
        guard !Self.reserved.contains(value) else {
            throw FieldError(key: "id", message: "\"\(value)\" is reserved (app, config, generated, sbom)")
        }
        self.value = value
    }

    public var description: String { value }
    /// The ID with `/` replaced by `_`, as a directory name under `<layers>`.
    public var escaped: String { value.replacingOccurrences(of: "/", with: "_") }

    public static func < (l: BuildpackID, r: BuildpackID) -> Bool { l.value < r.value }

    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(s) } catch { throw decoder.invalid(error.message) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(value)
    }
}

/// A process type (buildpack.md, launch.toml): letters, digits, `.`, `_`, `-`.
public struct ProcessType: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let value: String

    /// - Throws: `FieldError`.
    public init(_ value: String) throws(FieldError) {
        guard !value.isEmpty,
              value.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "." || $0 == "_" || $0 == "-") })
        else { throw FieldError(key: "type", message: "\"\(value)\" may contain only letters, numbers, '.', '_' and '-'") }
        self.value = value
    }

    public var description: String { value }
    public static func < (l: ProcessType, r: ProcessType) -> Bool { l.value < r.value }

    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(s) } catch { throw decoder.invalid(error.message) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(value)
    }
}

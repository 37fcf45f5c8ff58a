/// An image reference `[registry/]repository[:tag][@digest]`, parsed with the grammar of
/// distribution/reference (the one docker, skopeo and pack use) and Docker Hub's defaults:
/// no registry means `docker.io`, and a one-component Docker Hub repository gets `library/`.
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// The registry host, with port if any, e.g. `docker.io`, `localhost:5000`.
    public var registry: String
    /// The repository path within the registry, e.g. `library/busybox`.
    public var repository: String
    public var tag: String?
    public var digest: Digest?

    public static let dockerHub = "docker.io"
    public static let defaultTag = "latest"

    /// Errors from parsing a reference.
    public enum ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        case empty
        case invalidFormat(String, reason: String)
        case nameTooLong(String)

        public var description: String {
            switch self {
            case .empty:
                return "image reference is empty"
            case .invalidFormat(let s, let reason):
                return "invalid image reference \"\(s)\": \(reason)"
            case .nameTooLong(let s):
                return "invalid image reference \"\(s)\": repository name must not exceed 255 characters"
            }
        }
    }

    public init(registry: String, repository: String, tag: String? = nil, digest: Digest? = nil) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Parses `string`.
    /// - Throws: `ImageReference.ParseError` naming what part is invalid.
    public init(parsing string: String) throws(ParseError) {
        guard !string.isEmpty else { throw .empty }
        var rest = Substring(string)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            do {
                digest = try Digest(parsing: String(rest[rest.index(after: at)...]))
            } catch {
                throw .invalidFormat(string, reason: error.description)
            }
            rest = rest[..<at]
        }
        var tag: String?
        // A tag follows the last ':' that is after the last '/' (a ':' before it is a port).
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let t = String(rest[rest.index(after: colon)...])
            guard Self.isValidTag(t) else {
                throw .invalidFormat(string, reason: "tag \"\(t)\" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
            }
            tag = t
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { throw .invalidFormat(string, reason: "repository name is empty") }
        var registry = Self.dockerHub
        var path = String(rest)
        if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" || first.contains(where: \.isUppercase) {
                guard Self.isValidDomain(String(first)) else {
                    throw .invalidFormat(string, reason: "registry \"\(first)\" is not a valid host[:port]")
                }
                registry = String(first)
                path = String(rest[rest.index(after: slash)...])
            }
        }
        if registry == "index.docker.io" { registry = Self.dockerHub }
        if registry == Self.dockerHub && !path.contains("/") { path = "library/" + path }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard Self.isValidPathComponent(component) else {
                let why = component.contains(where: \.isUppercase)
                    ? "repository name must be lowercase"
                    : "repository component \"\(component)\" must match [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
                throw .invalidFormat(string, reason: why)
            }
        }
        let nameLength = (registry == Self.dockerHub ? 0 : registry.utf8.count + 1) + path.utf8.count
        guard nameLength <= 255 else { throw .nameTooLong(string) }
        self.init(registry: registry, repository: path, tag: tag, digest: digest)
    }

    /// The reference with `latest` as tag when it has neither tag nor digest.
    public var withDefaultTag: ImageReference {
        var r = self
        if r.tag == nil && r.digest == nil { r.tag = Self.defaultTag }
        return r
    }

    /// `registry/repository` in full, e.g. `docker.io/library/busybox`.
    public var fullName: String { "\(registry)/\(repository)" }

    /// The name as docker prints it: without `docker.io/` and `library/`.
    public var familiarName: String {
        guard registry == Self.dockerHub else { return fullName }
        if repository.hasPrefix("library/") && repository.dropFirst(8).firstIndex(of: "/") == nil {
            return String(repository.dropFirst(8))
        }
        return repository
    }

    private var suffix: String {
        (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0.description } ?? "")
    }

    /// The fully qualified form, e.g. `docker.io/library/busybox:latest`.
    public var description: String { fullName + suffix }

    /// The familiar form, e.g. `busybox:latest`, `localhost:5000/app@sha256:...`.
    public var familiar: String { familiarName + suffix }

    /// Whether both name the same image: same repository, tag (`latest` when absent, unless a
    /// digest is given) and digest. With `anyTag`, a reference without tag or digest names every
    /// tag of its repository.
    public func sameImage(as other: ImageReference, anyTag: Bool = false) -> Bool {
        guard registry == other.registry && repository == other.repository else { return false }
        if anyTag && other.tag == nil && other.digest == nil { return true }
        func tagOf(_ r: ImageReference) -> String? { r.tag ?? (r.digest == nil ? Self.defaultTag : nil) }
        return tagOf(self) == tagOf(other) && digest == other.digest
    }

    /// `sameImage(as:anyTag:)` for references as text; text that does not parse must be equal.
    public static func sameImage(_ a: String, _ b: String, anyTag: Bool = false) -> Bool {
        guard let x = try? ImageReference(parsing: a), let y = try? ImageReference(parsing: b) else { return a == b }
        return x.sameImage(as: y, anyTag: anyTag)
    }

    static func isValidTag(_ t: String) -> Bool {
        let u = Array(t.utf8)
        guard !u.isEmpty, u.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool {
            (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f
        }
        return word(u[0]) && u.dropFirst().allSatisfy { word($0) || $0 == 0x2e || $0 == 0x2d }
    }

    static func isValidPathComponent(_ s: Substring) -> Bool {
        // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
        let u = Array(s.utf8)
        func alnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) }
        guard let first = u.first, let last = u.last, alnum(first), alnum(last) else { return false }
        var i = 0
        while i < u.count {
            if alnum(u[i]) { i += 1; continue }
            var j = i
            while j < u.count && !alnum(u[j]) { j += 1 }
            let sep = u[i..<j]
            let ok = sep.elementsEqual([0x2e]) || sep.elementsEqual([0x5f]) || sep.elementsEqual([0x5f, 0x5f])
                || sep.allSatisfy { $0 == 0x2d }
            if !ok { return false }
            i = j
        }
        return true
    }

    static func isValidDomain(_ s: String) -> Bool {
        var host = Substring(s)
        if let colon = s.lastIndex(of: ":"), !s.hasPrefix("[") || s[..<colon].hasSuffix("]") {
            let port = s[s.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber) else { return false }
            host = s[..<colon]
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { return host.count > 2 }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return !labels.isEmpty && labels.allSatisfy { label in
            let u = Array(label.utf8)
            func alnum(_ c: UInt8) -> Bool {
                (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)
            }
            guard let f = u.first, let l = u.last, alnum(f), alnum(l) else { return false }
            return u.allSatisfy { alnum($0) || $0 == 0x2d }
        }
    }
}

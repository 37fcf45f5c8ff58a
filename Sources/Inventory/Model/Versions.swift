/// The package ecosystems the inventory orders versions for, named as OSV names them.
public enum Ecosystem: String, Sendable, CaseIterable, Codable {
    case pypi = "PyPI"
    case npm = "npm"
    case debian = "Debian"
    /// Ubuntu's packages: dpkg's order, source package names, releases such as `22.04`.
    case ubuntu = "Ubuntu"
    case go = "Go"
    case maven = "Maven"
    /// Anything else: versions compared part by part (numbers as numbers).
    case generic = ""

    /// `Debian:12` → (.debian, "12"); an unknown name → (.generic, "") unless it is OSV's.
    public static func parse(_ text: String) -> (ecosystem: Ecosystem, release: String) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        let base = parts.first ?? ""
        let release = parts.count > 1 ? parts[1] : ""
        if let known = Ecosystem.allCases.first(where: { $0 != .generic && $0.rawValue.lowercased() == base.lowercased() }) {
            // OSV's Ubuntu releases carry more parts: `Ubuntu:22.04:LTS`, `Ubuntu:Pro:18.04:LTS`.
            if known == .ubuntu, let number = parts.dropFirst().joined(separator: ":").split(separator: ":").first(where: { $0.first?.isNumber == true }) {
                return (known, String(number))
            }
            return (known, release)
        }
        return (.generic, "")
    }

    /// How two versions of this ecosystem compare: negative, zero or positive.
    public func compare(_ a: String, _ b: String) -> Int {
        switch self {
        case .debian, .ubuntu: return DpkgVersion.compare(a, b)
        case .pypi: return PEP440Version.compare(a, b)
        case .npm, .go: return SemVer.compare(a, b)
        case .maven: return MavenVersion.compare(a, b)
        case .generic: return GenericVersion.compare(a, b)
        }
    }

    /// Why `version` is not a version of this ecosystem (its ordering would be a guess), nil
    /// when it is one: dpkg's syntax (`dpkg --validate-version`) for Debian, PEP 440 (Python's
    /// `packaging`) for PyPI, SemVer's numeric core for npm and Go. Maven orders any string.
    public func invalidVersionReason(_ version: String) -> String? {
        switch self {
        case .debian, .ubuntu: return DpkgVersion.invalidReason(version)
        case .pypi: return PEP440Version.parse(version) == nil ? "is not a PEP 440 version" : nil
        case .npm, .go: return SemVer.isValid(version) ? nil : "is not a semantic version"
        case .maven, .generic: return nil
        }
    }

    /// The name as the ecosystem compares names: PEP 503 for PyPI (lower case, runs of `-_.` as
    /// one `-`), lower case for Debian and Maven, as given for npm and Go.
    public func normalize(name: String) -> String {
        switch self {
        case .pypi:
            var out = ""
            var inRun = false
            for c in name.lowercased() {
                if c == "-" || c == "_" || c == "." {
                    if !inRun { out.append("-") }
                    inRun = true
                } else {
                    out.append(c)
                    inRun = false
                }
            }
            return out
        case .debian, .ubuntu, .maven: return name.lowercased()
        case .npm, .go, .generic: return name
        }
    }
}

/// dpkg's version ordering (deb-version(7)): `[epoch:]upstream[-revision]`, letters before
/// non-letters, `~` before anything (even the end), digit runs as numbers.
public enum DpkgVersion {
    public static func compare(_ a: String, _ b: String) -> Int {
        let x = split(a), y = split(b)
        if x.epoch != y.epoch { return x.epoch < y.epoch ? -1 : 1 }
        let upstream = verrevcmp(x.upstream, y.upstream)
        return upstream != 0 ? upstream : verrevcmp(x.revision, y.revision)
    }

    /// dpkg's parseversion (lib/dpkg/parsehelp.c): what it refuses or warns about, which
    /// `dpkg --validate-version` reports as invalid. Blanks around the version are ignored.
    static func invalidReason(_ text: String) -> String? {
        var s = Substring(text)
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        guard !s.isEmpty else { return "is empty" }
        if s.contains(" ") || s.contains("\t") { return "has embedded spaces" }
        var rest = s.utf8[...]
        if let colon = rest.firstIndex(of: UInt8(ascii: ":")) {
            // strtol: an optional sign, then digits.
            var epoch = rest[..<colon]
            let negative = epoch.first == UInt8(ascii: "-")
            if epoch.first == UInt8(ascii: "-") || epoch.first == UInt8(ascii: "+") { epoch = epoch.dropFirst() }
            guard !epoch.isEmpty else { return "has an empty epoch" }
            guard epoch.allSatisfy(isDigit) else { return "has an epoch that is not a number" }
            let digits = epoch.drop { $0 == UInt8(ascii: "0") }
            guard digits.count <= 10, Int(String(decoding: epoch, as: UTF8.self)) ?? .max <= Int(Int32.max) else { return "has an epoch that is too big" }
            if negative && !digits.isEmpty { return "has a negative epoch" }
            rest = rest[rest.index(after: colon)...]
            guard !rest.isEmpty else { return "has nothing after the epoch's colon" }
        }
        var upstream = rest, revision = rest[rest.endIndex...]
        if let hyphen = rest.lastIndex(of: UInt8(ascii: "-")) {
            upstream = rest[..<hyphen]
            revision = rest[rest.index(after: hyphen)...]
            guard !revision.isEmpty else { return "has an empty revision" }
        }
        guard let first = upstream.first else { return "has an empty upstream version" }
        guard isDigit(first) else { return "does not start with a digit" }
        func isAlnum(_ c: UInt8) -> Bool { isDigit(c) || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z")) }
        if !upstream.allSatisfy({ isAlnum($0) || ".-+~:".utf8.contains($0) }) { return "has a character dpkg does not allow in a version" }
        if !revision.allSatisfy({ isAlnum($0) || ".+~".utf8.contains($0) }) { return "has a character dpkg does not allow in a revision" }
        return nil
    }

    static func split(_ v: String) -> (epoch: Int, upstream: [UInt8], revision: [UInt8]) {
        var rest = Substring(v.trimmingSpaces)
        var epoch = 0
        if let colon = rest.firstIndex(of: ":"), let e = Int(rest[..<colon]) {
            epoch = e
            rest = rest[rest.index(after: colon)...]
        }
        if let dash = rest.lastIndex(of: "-") {
            return (epoch, Array(rest[..<dash].utf8), Array(rest[rest.index(after: dash)...].utf8))
        }
        return (epoch, Array(rest.utf8), [])
    }

    private static func order(_ c: UInt8?) -> Int {
        guard let c else { return 0 }
        if isDigit(c) { return 0 }
        if (c >= 65 && c <= 90) || (c >= 97 && c <= 122) { return Int(c) }
        if c == UInt8(ascii: "~") { return -1 }
        return Int(c) + 256
    }

    static func isDigit(_ c: UInt8?) -> Bool { c.map { $0 >= 48 && $0 <= 57 } ?? false }

    static func verrevcmp(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var i = 0, j = 0
        func at(_ s: [UInt8], _ k: Int) -> UInt8? { k < s.count ? s[k] : nil }
        while i < a.count || j < b.count {
            var firstDiff = 0
            while (i < a.count && !isDigit(a[i])) || (j < b.count && !isDigit(b[j])) {
                let ac = order(at(a, i)), bc = order(at(b, j))
                if ac != bc { return ac < bc ? -1 : 1 }
                i += 1
                j += 1
            }
            while at(a, i) == 48 { i += 1 }
            while at(b, j) == 48 { j += 1 }
            while isDigit(at(a, i)) && isDigit(at(b, j)) {
                if firstDiff == 0 { firstDiff = Int(a[i]) - Int(b[j]) }
                i += 1
                j += 1
            }
            if isDigit(at(a, i)) { return 1 }
            if isDigit(at(b, j)) { return -1 }
            if firstDiff != 0 { return firstDiff < 0 ? -1 : 1 }
        }
        return 0
    }
}

/// Semantic Versioning 2.0 precedence (npm, Go modules, OSV `SEMVER` ranges): a leading `v` or
/// `=` is ignored, missing minor/patch are 0, build metadata does not count, a pre-release is
/// lower than its release, pre-release identifiers compare numerically when both are numbers.
public enum SemVer {
    public static func compare(_ a: String, _ b: String) -> Int {
        let x = parse(a), y = parse(b)
        for k in 0..<3 where x.core[k] != y.core[k] { return x.core[k] < y.core[k] ? -1 : 1 }
        switch (x.pre.isEmpty, y.pre.isEmpty) {
        case (true, true): return 0
        case (true, false): return 1
        case (false, true): return -1
        case (false, false): break
        }
        for k in 0..<min(x.pre.count, y.pre.count) {
            let p = x.pre[k], q = y.pre[k]
            switch (UInt64(p), UInt64(q)) {
            case let (m?, n?): if m != n { return m < n ? -1 : 1 }
            case (.some, nil): return -1
            case (nil, .some): return 1
            case (nil, nil): if p != q { return p < q ? -1 : 1 }
            }
        }
        return x.pre.count == y.pre.count ? 0 : (x.pre.count < y.pre.count ? -1 : 1)
    }

    /// A numeric core of one to three parts (after a leading `v` or `=`), each a number.
    static func isValid(_ text: String) -> Bool {
        var s = Substring(text.trimmingSpaces)
        while s.first == "v" || s.first == "V" || s.first == "=" { s = s.dropFirst() }
        let core = s.prefix { $0 != "-" && $0 != "+" }
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        return (1...3).contains(parts.count) && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && UInt64($0) != nil }
    }

    static func parse(_ text: String) -> (core: [UInt64], pre: [Substring]) {
        var s = Substring(text.trimmingSpaces)
        while s.first == "v" || s.first == "V" || s.first == "=" { s = s.dropFirst() }
        if let plus = s.firstIndex(of: "+") { s = s[..<plus] }
        var pre: [Substring] = []
        if let dash = s.firstIndex(of: "-") {
            pre = s[s.index(after: dash)...].split(separator: ".", omittingEmptySubsequences: false)
            s = s[..<dash]
        }
        var core = s.split(separator: ".").prefix(3).map { UInt64($0) ?? 0 }
        while core.count < 3 { core.append(0) }
        return (core, pre)
    }
}

/// Versions compared part by part: numeric parts as numbers, others as text. Where one version
/// has more parts, a numeric one makes it greater (1.0.1 > 1.0), a textual one less (a
/// pre-release: 1.0-rc1 < 1.0).
public enum GenericVersion {
    public static func compare(_ a: String, _ b: String) -> Int {
        func parts(_ s: String) -> [Substring] { s.split { !$0.isLetter && !$0.isNumber } }
        let x = parts(a), y = parts(b)
        for i in 0..<max(x.count, y.count) {
            guard i < x.count else { return UInt64(y[i]) != nil ? -1 : 1 }
            guard i < y.count else { return UInt64(x[i]) != nil ? 1 : -1 }
            if let m = UInt64(x[i]), let n = UInt64(y[i]) {
                if m != n { return m < n ? -1 : 1 }
            } else if x[i] != y[i] {
                return x[i] < y[i] ? -1 : 1
            }
        }
        return 0
    }
}

extension String {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" { s = s.dropLast() }
        return s
    }
}

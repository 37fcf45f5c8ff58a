/// PEP 440 ordering (PyPI): `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, with the
/// normalisations PEP 440 allows (`alpha`, `beta`, `c`, `pre`, `preview`, `rev`, `r`, `-N` as a
/// post-release, separators `-_.` or none, implicit 0, a leading `v`). A version that does not
/// parse is compared part by part with the other (GenericVersion).
public enum PEP440Version {
    struct Parsed {
        var epoch = 0
        var release: [Int] = []
        var pre: (phase: Int, number: Int)?
        var post: Int?
        var dev: Int?
        var local: [Substring]?
    }

    public static func compare(_ a: String, _ b: String) -> Int {
        guard let x = parse(a), let y = parse(b) else { return GenericVersion.compare(a, b) }
        if x.epoch != y.epoch { return x.epoch < y.epoch ? -1 : 1 }
        for k in 0..<max(x.release.count, y.release.count) {
            let m = k < x.release.count ? x.release[k] : 0, n = k < y.release.count ? y.release[k] : 0
            if m != n { return m < n ? -1 : 1 }
        }
        // A dev release of a final version sorts before its pre-releases; a final after them.
        func preKey(_ v: Parsed) -> (Int, Int) {
            if let pre = v.pre { return (pre.phase, pre.number) }
            return v.post == nil && v.dev != nil ? (-1, 0) : (9, 0)
        }
        let p = preKey(x), q = preKey(y)
        if p != q { return p < q ? -1 : 1 }
        let postX = x.post ?? -1, postY = y.post ?? -1
        if postX != postY { return postX < postY ? -1 : 1 }
        let devX = x.dev ?? Int.max, devY = y.dev ?? Int.max
        if devX != devY { return devX < devY ? -1 : 1 }
        return compareLocal(x.local, y.local)
    }

    private static func compareLocal(_ a: [Substring]?, _ b: [Substring]?) -> Int {
        switch (a, b) {
        case (nil, nil): return 0
        case (nil, _): return -1
        case (_, nil): return 1
        case let (x?, y?):
            for k in 0..<min(x.count, y.count) {
                switch (Int(x[k]), Int(y[k])) {
                case let (m?, n?): if m != n { return m < n ? -1 : 1 }
                case (.some, nil): return 1
                case (nil, .some): return -1
                case (nil, nil): if x[k] != y[k] { return x[k] < y[k] ? -1 : 1 }
                }
            }
            return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
        }
    }

    static func parse(_ text: String) -> Parsed? {
        var s = Array(String(text.trimmingSpaces).lowercased().utf8)
        if s.first == UInt8(ascii: "v") { s.removeFirst() }
        var i = 0
        var v = Parsed()
        func isDigit(_ k: Int) -> Bool { k < s.count && s[k] >= 48 && s[k] <= 57 }
        func number() -> Int? {
            var n = 0, any = false
            while isDigit(i) { n = n &* 10 &+ Int(s[i] - 48); i += 1; any = true }
            return any ? n : nil
        }
        func isSeparator(_ k: Int) -> Bool { k < s.count && (s[k] == UInt8(ascii: "-") || s[k] == UInt8(ascii: "_") || s[k] == UInt8(ascii: ".")) }
        func word(_ words: [String]) -> String? {
            for w in words where s.count - i >= w.utf8.count && Array(s[i..<(i + w.utf8.count)]) == Array(w.utf8) {
                i += w.utf8.count
                return w
            }
            return nil
        }
        /// An optional separator, one of `words`, an optional separator, an optional number (the
        /// separator after the word is taken even without a number, as PEP 440's grammar does:
        /// `1.0a-` is `1.0a0`, `10a--1` is `10a0.post1`).
        func tagged(_ words: [String]) -> (String, Int)? {
            let start = i
            if isSeparator(i) { i += 1 }
            guard let w = word(words) else { i = start; return nil }
            if isSeparator(i) { i += 1 }
            return (w, number() ?? 0)
        }
        guard let first = number() else { return nil }
        if i < s.count && s[i] == UInt8(ascii: "!") {
            v.epoch = first
            i += 1
            guard let r = number() else { return nil }
            v.release = [r]
        } else {
            v.release = [first]
        }
        while i < s.count && s[i] == UInt8(ascii: ".") && isDigit(i + 1) {
            i += 1
            v.release.append(number() ?? 0)
        }
        // Longest words first: "preview" before "pre", "rc" before "c".
        if let (w, n) = tagged(["alpha", "beta", "preview", "pre", "rc", "a", "b", "c"]) {
            let phase = w.hasPrefix("a") ? 0 : w.hasPrefix("b") ? 1 : 2
            v.pre = (phase, n)
        }
        if let (_, n) = tagged(["post", "rev", "r"]) {
            v.post = n
        } else if i < s.count && s[i] == UInt8(ascii: "-") && isDigit(i + 1) {
            i += 1
            v.post = number()
        }
        if let (_, n) = tagged(["dev"]) { v.dev = n }
        if i < s.count && s[i] == UInt8(ascii: "+") {
            // `[a-z0-9]+([-_.][a-z0-9]+)*`: ASCII parts, one separator between two.
            let local = String(decoding: s[(i + 1)...], as: UTF8.self)
            let parts = local.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "." || $0 == "-" || $0 == "_" })
            guard parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } }) else { return nil }
            v.local = parts
            i = s.count
        }
        return i == s.count ? v : nil
    }
}

/// Maven's ordering (ComparableVersion): items split at `.`, `-` and digit/letter changes,
/// `-` and changes opening a sub-list; known qualifiers ordered
/// `alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp`, other
/// qualifiers after them in text order; trailing zeros and empty qualifiers ignored. Checked
/// against Maven's own ComparableVersion (maven-artifact 3.8.7) in the suite.
public enum MavenVersion {
    indirect enum Item {
        case number(String)
        case text(String)
        case list([Item])

        var isNull: Bool {
            switch self {
            case .number(let n): return n.isEmpty
            case .text(let t): return MavenVersion.qualifierKey(t) == MavenVersion.qualifierKey("")
            case .list(let l): return l.isEmpty
            }
        }

        /// Against a missing item.
        func compareToNull() -> Int {
            switch self {
            case .number(let n): return n.isEmpty ? 0 : 1
            case .text(let t): return MavenVersion.compareText(MavenVersion.qualifierKey(t), MavenVersion.qualifierKey(""))
            case .list(let l): return l.first?.compareToNull() ?? 0
            }
        }

        func compare(_ other: Item) -> Int {
            switch (self, other) {
            case let (.number(a), .number(b)):
                if a.count != b.count { return a.count < b.count ? -1 : 1 }
                return MavenVersion.compareText(a, b)
            case (.number, _): return 1
            case (.text, .number): return -1
            case let (.text(a), .text(b)): return MavenVersion.compareText(MavenVersion.qualifierKey(a), MavenVersion.qualifierKey(b))
            case (.text, .list): return -1
            case (.list, .number): return -1
            case (.list, .text): return 1
            case let (.list(a), .list(b)):
                for k in 0..<max(a.count, b.count) {
                    let r: Int
                    switch (k < a.count ? a[k] : nil, k < b.count ? b[k] : nil) {
                    case let (x?, y?): r = x.compare(y)
                    case let (x?, nil): r = x.compareToNull()
                    case let (nil, y?): r = -y.compareToNull()
                    case (nil, nil): r = 0
                    }
                    if r != 0 { return r }
                }
                return 0
            }
        }
    }

    static let qualifiers = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"]

    static func qualifierKey(_ q: String) -> String {
        let aliases = ["ga": "", "final": "", "release": "", "cr": "rc"]
        let name = aliases[q] ?? q
        if let k = qualifiers.firstIndex(of: name) { return String(k) }
        return "\(qualifiers.count)-\(name)"
    }

    static func compareText(_ a: String, _ b: String) -> Int { a == b ? 0 : (a < b ? -1 : 1) }

    public static func compare(_ a: String, _ b: String) -> Int { parse(a).compare(parse(b)) }

    static func parse(_ version: String) -> Item {
        let s = Array(String(version.trimmingSpaces).lowercased())
        var stack: [[Item]] = [[]]
        var start = 0
        var digits = false
        func item(_ text: String, digits: Bool, followedByDigit: Bool = false) -> Item {
            if digits {
                let trimmed = String(text.drop { $0 == "0" })
                return .number(trimmed)
            }
            if followedByDigit && text.count == 1 {
                return .text(["a": "alpha", "b": "beta", "m": "milestone"][text] ?? text)
            }
            return .text(text)
        }
        func add(_ i: Item) { stack[stack.count - 1].append(i) }
        func open() { stack.append([]) }
        for (k, c) in s.enumerated() {
            if c == "." || c == "-" {
                add(k == start ? .number("") : item(String(s[start..<k]), digits: digits))
                start = k + 1
                if c == "-" { open() }
            } else if c.isASCII && c.isNumber {
                if !digits && k > start {
                    // Maven 3.8+: "1.0.0.X1 < 1.0.0-X2": a qualifier followed by a digit starts a
                    // sub-list of its own, as if `-` came before it.
                    if !stack[stack.count - 1].isEmpty { open() }
                    add(item(String(s[start..<k]), digits: false, followedByDigit: true))
                    start = k
                    open()
                }
                digits = true
            } else {
                if digits && k > start {
                    add(item(String(s[start..<k]), digits: true))
                    start = k
                    open()
                }
                digits = false
            }
        }
        if s.count > start {
            // The same for a qualifier at the end ("1.sp" orders as "1-sp").
            if !digits && !stack[stack.count - 1].isEmpty { open() }
            add(item(String(s[start...]), digits: digits))
        }
        // Close the sub-lists from the innermost, trimming null items at their ends.
        func normalized(_ list: [Item]) -> [Item] {
            var l = list
            var k = l.count - 1
            while k >= 0 {
                if l[k].isNull { l.remove(at: k) } else if case .list = l[k] {} else { break }
                k -= 1
            }
            return l
        }
        while stack.count > 1 {
            let inner = normalized(stack.removeLast())
            stack[stack.count - 1].append(.list(inner))
        }
        return .list(normalized(stack[0]))
    }
}

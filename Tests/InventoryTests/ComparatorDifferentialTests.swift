import CairnBasics
import Foundation
import Testing
import TestSupport
@testable import Inventory

/// Generated version strings near one another (a base and its mutations), so that pairs hit the
/// edge cases: epochs, `~`, `+`, revisions, leading zeros; pre/post/dev releases, local versions,
/// spellings PEP 440 normalizes.
struct VersionGenerator {
    var rng: SplitMix64

    mutating func pick<T>(_ xs: [T]) -> T { xs[rng.below(xs.count)] }
    mutating func number() -> String {
        let n = pick([0, 1, 2, 9, 10, 11, 99, 100, 2024, rng.below(1000)])
        return rng.below(8) == 0 ? "0" + String(n) : String(n)
    }

    mutating func debian() -> String {
        var upstream = number()
        for _ in 0..<rng.below(4) {
            upstream += pick([".", ".", "+", "~", "-"]) + pick([number(), number(), "rc" + number(), "a", "dfsg", "b" + number(), ""])
        }
        if rng.below(5) == 0 { upstream += pick(["~", "~~", "~rc1", "a", "+git1", "z"]) }
        // An upstream with `-` needs a revision; the revision has no `-`.
        var revision: String? = upstream.contains("-") || rng.below(2) == 0 ? number() : nil
        if revision != nil, rng.below(3) == 0 { revision! += pick(["+deb12u" + number(), "~bpo12+1", ".1", "ubuntu" + number(), "+b1", "~"]) }
        let epoch = rng.below(6) == 0 ? String(rng.below(3)) + ":" : ""
        return epoch + upstream + (revision.map { "-" + $0 } ?? "")
    }

    mutating func pep440() -> String {
        var v = rng.below(10) == 0 ? String(rng.below(3)) + "!" : ""
        if rng.below(12) == 0 { v = pick(["v", "V"]) + v }
        v += (0...rng.below(3)).map { _ in number() }.joined(separator: ".")
        if rng.below(3) == 0 {
            v += pick(["", ".", "-", "_"]) + pick(["a", "b", "rc", "c", "alpha", "beta", "pre", "preview", "A", "RC"]) + pick(["", number()])
        }
        if rng.below(4) == 0 { v += pick([".post" + number(), "-" + number(), ".post", "post" + number(), ".rev" + number(), "-r" + number()]) }
        if rng.below(4) == 0 { v += pick([".dev" + number(), ".dev", "dev" + number(), "-dev" + number()]) }
        if rng.below(6) == 0 {
            v += "+" + (0...rng.below(3)).map { _ in pick(["ubuntu", number(), "abc", "1a", "local"]) }.joined(separator: pick([".", "-", "_"]))
        }
        return v
    }

    /// A version and a near one: the same, or one mutation of it, or another version.
    mutating func pair(_ insertions: [String], _ make: (inout VersionGenerator) -> String) -> (String, String) {
        let a = make(&self)
        switch rng.below(4) {
        case 0: return (a, make(&self))
        case 1: return (a, a)
        default:
            var b = Array(a)
            var at = rng.below(b.count + 1)
            // Inside a word (`post`, `rc`) an insertion only makes an invalid version.
            while at > 0, at < b.count, b[at - 1].isLetter, b[at].isLetter { at -= 1 }
            if at < b.count, b[at].isNumber, rng.below(2) == 0 {
                b[at] = Character(String((Int(String(b[at]))! + 1) % 10))
            } else {
                b.insert(contentsOf: pick(insertions), at: at)
            }
            return (a, String(b))
        }
    }
}

/// The reference answers (-1, 0, 1, or nil where the tool refuses the input) for pairs.
enum ReferenceComparator {
    /// `dpkg --compare-versions`, the tool that defines Debian's order (one process per question).
    static func dpkg(_ pairs: [(String, String)]) throws -> [Int?] {
        let dir = TempDir("dpkg-pairs")
        try writeFile(dir.path + "/pairs", pairs.map { "\($0.0) \($0.1)" }.joined(separator: "\n") + "\n")
        let script = """
            while read -r a b; do
              if dpkg --compare-versions "$a" lt "$b" 2>/dev/null; then echo -1
              elif dpkg --compare-versions "$a" eq "$b" 2>/dev/null; then echo 0
              elif dpkg --compare-versions "$a" gt "$b" 2>/dev/null; then echo 1
              else echo x; fi
            done < pairs
            """
        return try answers(sh(script, cwd: dir.path), count: pairs.count, tool: "dpkg")
    }

    /// Python's `packaging.version.Version`, the PEP 440 reference implementation.
    static func packaging(_ pairs: [(String, String)]) throws -> [Int?] {
        let dir = TempDir("pep440-pairs")
        try writeFile(dir.path + "/pairs", pairs.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n") + "\n")
        let script = """
            python3 -c '
            import sys
            from packaging.version import Version, InvalidVersion
            out = []
            for line in open("pairs"):
                a, b = line.rstrip("\\n").split("\\t")
                try:
                    x, y = Version(a), Version(b)
                    out.append(str((x > y) - (x < y)))
                except InvalidVersion:
                    out.append("x")
            print("\\n".join(out))
            '
            """
        return try answers(sh(script, cwd: dir.path), count: pairs.count, tool: "packaging")
    }

    static func answers(_ r: RunResult, count: Int, tool: String) throws -> [Int?] {
        guard r.status == 0 else { throw TestSupportError("\(tool): \(r.stderr)") }
        let lines = r.stdout.split(separator: "\n").map { Int($0) }
        guard lines.count == count else { throw TestSupportError("\(tool) answered \(lines.count) of \(count) pairs: \(r.stderr)") }
        return lines
    }
}

/// Pairs where Cairn's comparator and the reference disagree, with how many the tool refused.
func disagreements(_ pairs: [(String, String)], _ reference: [Int?], _ ecosystem: Ecosystem) -> (wrong: [String], refused: Int) {
    var wrong: [String] = []
    var refused = 0
    for (pair, expected) in zip(pairs, reference) {
        guard let expected else { refused += 1; continue }
        let got = ecosystem.compare(pair.0, pair.1).signum()
        if got != expected { wrong.append("\(pair.0) vs \(pair.1): Cairn \(got), reference \(expected)") }
    }
    return (wrong, refused)
}

/// Issue 39: each comparator against the tool that defines its order, on a fixed sample of
/// generated pairs (6,000 Debian, 16,000 PEP 440, of which at least 20,000 valid; `CAIRN_VERSION_PAIRS_SCALE=50` makes it the
/// million of bench/versions.sh). 0 disagreements, and few refused inputs (the generator's).
@Test(.requires("dpkg", "python3"))
func comparatorsAgreeWithDpkgAndPackaging() throws {
    let scale = Int(ProcessInfo.processInfo.environment["CAIRN_VERSION_PAIRS_SCALE"] ?? "") ?? 1
    var gen = VersionGenerator(rng: SplitMix64(state: 39))
    let debian = (0..<6_000 * scale).map { _ in gen.pair(["0", "~", ".0", "1", "a", ".1", "+"]) { $0.debian() } }
    let pep440 = (0..<16_000 * scale).map { _ in gen.pair(["0", "1", "9"]) { $0.pep440() } }

    let dpkg = disagreements(debian, try scale > 1 ? ReferenceComparator.perlDpkg(debian) : ReferenceComparator.dpkg(debian), .debian)
    #expect(dpkg.wrong.isEmpty, "\(dpkg.wrong.count) of \(debian.count) Debian pairs disagree with dpkg: \(dpkg.wrong.prefix(20))")
    #expect(dpkg.refused < debian.count / 20, "dpkg refused \(dpkg.refused) generated versions")
    let pep = disagreements(pep440, try ReferenceComparator.packaging(pep440), .pypi)
    #expect(pep.wrong.isEmpty, "\(pep.wrong.count) of \(pep440.count) PEP 440 pairs disagree with packaging: \(pep.wrong.prefix(20))")
    #expect(pep.refused < pep440.count / 10, "packaging refused \(pep.refused) generated versions")
    #expect(debian.count - dpkg.refused + pep440.count - pep.refused >= 20_000 * scale, "pairs compared")
    print("comparators: \(debian.count) Debian pairs (\(dpkg.refused) refused) and \(pep440.count) PEP 440 pairs (\(pep.refused) refused), \(dpkg.wrong.count + pep.wrong.count) disagreements")
}

extension ReferenceComparator {
    /// dpkg's own Perl implementation (`Dpkg::Version`, from dpkg's source, in dpkg-dev): the
    /// million-pair run cannot afford a dpkg process per pair.
    static func perlDpkg(_ pairs: [(String, String)]) throws -> [Int?] {
        let dir = TempDir("dpkg-pairs")
        try writeFile(dir.path + "/pairs", pairs.map { "\($0.0) \($0.1)" }.joined(separator: "\n") + "\n")
        let script = """
            perl -MDpkg::Version -ne 'chomp; my ($a, $b) = split / /;
              if (version_check($a) && version_check($b)) { my $c = version_compare($a, $b); print(($c <=> 0), "\\n") } else { print "x\\n" }' pairs
            """
        return try answers(sh(script, cwd: dir.path), count: pairs.count, tool: "Dpkg::Version")
    }
}

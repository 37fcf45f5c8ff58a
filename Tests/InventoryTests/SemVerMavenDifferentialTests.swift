import CairnBasics
import Foundation
import Testing
import TestSupport
@testable import Inventory

extension VersionGenerator {
    /// SemVer 2.0 versions: a full core, often a prerelease (numeric and alphanumeric
    /// identifiers), sometimes build metadata (which orders nothing).
    mutating func semver() -> String {
        var v = "\(pick([0, 1, 2, 9, 10, 11])).\(pick([0, 1, 2, 10, 12])).\(pick([0, 1, 2, 3, 10, 99]))"
        if rng.below(2) == 0 {
            v += "-" + (0...rng.below(3)).map { _ in pick(["alpha", "beta", "rc", "0", "1", "2", "10", "11", "a1", "x-y", "RC", "Beta"]) }.joined(separator: ".")
        }
        if rng.below(5) == 0 { v += "+" + pick(["build.1", "sha.5114f85", "001", "exp-1"]) }
        return v
    }

    /// Maven versions: numbers with `.` and `-`, the qualifiers ComparableVersion knows (and
    /// their short forms, cases), unknown ones, digit-letter transitions, zeros that vanish.
    mutating func maven() -> String {
        var v = (0...rng.below(3)).map { _ in pick(["0", "1", "2", "10", "01", "3"]) }.joined(separator: ".")
        for _ in 0..<rng.below(3) {
            v += pick(["-", ".", "-", ""]) + pick(["alpha", "beta", "milestone", "rc", "cr", "SNAPSHOT", "ga", "final", "release", "sp",
                                                 "a1", "b2", "m3", "RC1", "Final", "foo", "bar", "1", "0", "2", "20"])
        }
        return v
    }
}

extension ReferenceComparator {
    /// node-semver's `compare` (npm's order; it refuses what is not SemVer 2.0).
    static func nodeSemver(_ pairs: [(String, String)]) throws -> [Int?] {
        let dir = TempDir("semver-pairs")
        try writeFile(dir.path + "/pairs", pairs.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n") + "\n")
        let script = """
            NODE_PATH=/usr/share/nodejs node -e '
            const semver = require("semver"), fs = require("fs");
            const out = [];
            for (const line of fs.readFileSync("pairs", "utf8").split("\\n")) {
              if (!line) continue;
              const [a, b] = line.split("\\t");
              try { out.push(String(semver.compare(a, b))); } catch (e) { out.push("x"); }
            }
            console.log(out.join("\\n"));
            '
            """
        return try answers(sh(script, cwd: dir.path), count: pairs.count, tool: "node-semver")
    }

    /// Maven's own `ComparableVersion` (maven-artifact), whose main compares each argument with
    /// the next: the pairs go as consecutive arguments and every other comparison is kept.
    static func maven(_ pairs: [(String, String)], jar: String) throws -> [Int?] {
        var out: [Int?] = []
        for chunk in stride(from: 0, to: pairs.count, by: 5_000).map({ Array(pairs[$0..<min($0 + 5_000, pairs.count)]) }) {
            let r = try run(["java", "-cp", jar, "org.apache.maven.artifact.versioning.ComparableVersion"] + chunk.flatMap { [$0.0, $0.1] })
            guard r.status == 0 else { throw TestSupportError("ComparableVersion: \(r.stderr)") }
            let ops = r.stdout.split(separator: "\n").filter { $0.hasPrefix("   ") }.map { $0.split(separator: " ")[1] }
            guard ops.count == chunk.count * 2 - 1 else { throw TestSupportError("ComparableVersion answered \(ops.count) comparisons") }
            out += stride(from: 0, to: ops.count, by: 2).map { ["<": -1, "==": 0, ">": 1][String(ops[$0])] }
        }
        return out
    }
}

/// Issue 39: npm's (and Go's) SemVer order against node-semver, Maven's against Maven's own
/// ComparableVersion, on generated near pairs: 0 disagreements.
@Test(.requires("node", "java"))
func semverAndMavenAgreeWithNodeSemverAndComparableVersion() throws {
    let jar = "/usr/share/java/maven-artifact-3.x.jar"
    try #require(FileManager.default.fileExists(atPath: jar), "maven-artifact (libmaven3-core-java) is installed by scripts/deps")
    var gen = VersionGenerator(rng: SplitMix64(state: 3906))
    let semver = (0..<12_000).map { _ in gen.pair(["0", "1", ".0", "-rc", ".1", "alpha"]) { $0.semver() } }
    let maven = (0..<12_000).map { _ in gen.pair(["0", "-", ".", "1", "a", "-SNAPSHOT", ".0"]) { $0.maven() } }
    let npm = disagreements(semver, try ReferenceComparator.nodeSemver(semver), .npm)
    #expect(npm.wrong.isEmpty, "\(npm.wrong.count) of \(semver.count) SemVer pairs disagree with node-semver: \(npm.wrong.prefix(20))")
    #expect(npm.refused < semver.count / 3, "node-semver refused \(npm.refused) generated versions")
    let mvn = disagreements(maven, try ReferenceComparator.maven(maven, jar: jar), .maven)
    #expect(mvn.wrong.isEmpty, "\(mvn.wrong.count) of \(maven.count) Maven pairs disagree with ComparableVersion: \(mvn.wrong.prefix(20))")
    #expect(mvn.refused == 0, "ComparableVersion orders any string")
    print("comparators: \(semver.count) SemVer pairs (\(npm.refused) refused), \(maven.count) Maven pairs, \(npm.wrong.count + mvn.wrong.count) disagreements")
}

import CairnBasics
import Foundation
import Testing
import TestSupport
@testable import Inventory

/// Random CVSS vectors: every base metric, and often threat, environmental and supplemental ones.
struct CVSSVectorGenerator {
    var rng: SplitMix64

    mutating func pick<T>(_ xs: [T]) -> T { xs[rng.below(xs.count)] }

    mutating func v4() -> String {
        var parts = CVSS4.mandatory.map { "\($0):\(pick(CVSS4.values[$0]!.sorted()))" }
        for key in ["E", "CR", "IR", "AR", "MAV", "MAC", "MAT", "MPR", "MUI", "MVC", "MVI", "MVA", "MSC", "MSI", "MSA", "S", "R", "RE"]
        where rng.below(3) == 0 {
            parts.append("\(key):\(pick(CVSS4.values[key]!.sorted()))")
        }
        return "CVSS:4.0/" + parts.joined(separator: "/")
    }

    mutating func v3() -> String {
        let metrics: [(String, [String])] = [("AV", ["N", "A", "L", "P"]), ("AC", ["L", "H"]), ("PR", ["N", "L", "H"]), ("UI", ["N", "R"]),
                                             ("S", ["U", "C"]), ("C", ["H", "L", "N"]), ("I", ["H", "L", "N"]), ("A", ["H", "L", "N"])]
        return pick(["CVSS:3.1/", "CVSS:3.0/"]) + metrics.map { "\($0.0):\(pick($0.1))" }.joined(separator: "/")
    }
}

/// Red Hat's `cvss` library (PyPI), an implementation of both specifications independent of
/// Cairn's: the score of each vector, or nil where it refuses the vector.
func referenceCVSSScores(_ vectors: [String]) throws -> [Double?] {
    let dir = TempDir("cvss-vectors")
    try writeFile(dir.path + "/vectors", vectors.joined(separator: "\n") + "\n")
    let script = """
        python3 -c '
        from cvss import CVSS3, CVSS4
        out = []
        for line in open("vectors"):
            v = line.strip()
            try:
                out.append(str(CVSS4(v).base_score if v.startswith("CVSS:4") else CVSS3(v).base_score))
            except Exception:
                out.append("x")
        print("\\n".join(out))
        '
        """
    let r = try sh(script, cwd: dir.path)
    guard r.status == 0 else { throw TestSupportError("cvss: \(r.stderr)") }
    let lines = r.stdout.split(separator: "\n").map { Double($0) }
    guard lines.count == vectors.count else { throw TestSupportError("cvss answered \(lines.count) of \(vectors.count) vectors") }
    return lines
}

/// Issue 39: severity from CVSS v3 and v4 vectors is computed, and the computation agrees with an
/// independent implementation on 20,000 random v4 vectors (threat and environmental metrics
/// included) and 5,000 v3 vectors (`CAIRN_CVSS_VECTORS_SCALE=N` multiplies them). Vectors the
/// specification refuses score nil.
@Test(.requires("python3"))
func cvssScoresAgreeWithAnIndependentImplementation() throws {
    let scale = Int(ProcessInfo.processInfo.environment["CAIRN_CVSS_VECTORS_SCALE"] ?? "") ?? 1
    var gen = CVSSVectorGenerator(rng: SplitMix64(state: 4))
    let vectors = (0..<20_000 * scale).map { _ in gen.v4() } + (0..<5_000 * scale).map { _ in gen.v3() }
    let reference = try referenceCVSSScores(vectors)
    var wrong: [String] = []
    for (vector, expected) in zip(vectors, reference) {
        let got = vector.hasPrefix("CVSS:4") ? CVSS4.score(vector) : CVSS3.baseScore(vector)
        if got != expected { wrong.append("\(vector): Cairn \(got.map { "\($0)" } ?? "nil"), cvss \(expected.map { "\($0)" } ?? "refused")") }
    }
    #expect(reference.allSatisfy { $0 != nil }, "the generator made only valid vectors")
    #expect(wrong.isEmpty, "\(wrong.count) of \(vectors.count) scores disagree: \(wrong.prefix(10))")
    print("cvss: \(vectors.count) vectors scored, \(wrong.count) disagreements")
}

@Test func cvss4RefusesWhatIsNotAVector() {
    #expect(CVSS4.score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") == 9.3)
    #expect(CVSS4.score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N") == 0)
    #expect(CVSS4.score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N") == nil, "SA missing")
    #expect(CVSS4.score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/AV:L") == nil, "AV twice")
    #expect(CVSS4.score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:S/SA:N") == nil, "S is only for MSI")
    #expect(CVSS4.score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == nil)
    #expect(CVSS4.score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/XX:Y") == nil)
}

@Test func severityLevelComesFromV4VectorsToo() {
    let record = OSVRecord(id: "GHSA-v4", severity: [.init(type: "CVSS_V4", score: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")])
    #expect(record.severityLevel == "CRITICAL")
    let low = OSVRecord(id: "GHSA-v4-low", severity: [.init(type: "CVSS_V4", score: "CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N")])
    #expect(low.severityLevel == "LOW")
}

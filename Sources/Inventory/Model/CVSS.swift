import Foundation

/// CVSS v3.x base scores from a vector (`CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H`).
public enum CVSS3 {
    public static func baseScore(_ vector: String) -> Double? {
        var m: [String: String] = [:]
        for part in vector.split(separator: "/").dropFirst() {
            let kv = part.split(separator: ":", maxSplits: 1).map(String.init)
            if kv.count == 2 { m[kv[0]] = kv[1] }
        }
        let changed = m["S"] == "C"
        guard let av = ["N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2][m["AV"] ?? ""],
              let ac = ["L": 0.77, "H": 0.44][m["AC"] ?? ""],
              let pr = (changed ? ["N": 0.85, "L": 0.68, "H": 0.5] : ["N": 0.85, "L": 0.62, "H": 0.27])[m["PR"] ?? ""],
              let ui = ["N": 0.85, "R": 0.62][m["UI"] ?? ""],
              m["S"] == "U" || changed else { return nil }
        let cia = ["H": 0.56, "L": 0.22, "N": 0.0]
        guard let c = cia[m["C"] ?? ""], let i = cia[m["I"] ?? ""], let a = cia[m["A"] ?? ""] else { return nil }
        let iss = 1 - (1 - c) * (1 - i) * (1 - a)
        let impact = changed ? 7.52 * (iss - 0.029) - 3.25 * pow(iss - 0.02, 15) : 6.42 * iss
        guard impact > 0 else { return 0 }
        let exploitability = 8.22 * av * ac * pr * ui
        return roundUp(min((changed ? 1.08 : 1) * (impact + exploitability), 10))
    }

    /// CVSS v3.1's Roundup: the smallest one-decimal number not below `x`.
    static func roundUp(_ x: Double) -> Double {
        let n = Int((x * 100_000).rounded())
        return n % 10_000 == 0 ? Double(n) / 100_000 : (floor(Double(n) / 10_000) + 1) / 10
    }

    public static func level(_ score: Double) -> String {
        score >= 9 ? "CRITICAL" : score >= 7 ? "HIGH" : score >= 4 ? "MEDIUM" : score > 0 ? "LOW" : "NONE"
    }
}

/// CVSS v4.0 scores from a vector (`CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N`,
/// threat and environmental metrics included), by the algorithm of the specification
/// (https://www.first.org/cvss/v4-0/specification-document, section 8): the vector's macrovector
/// (six equivalence classes) is looked up in the standard's table of expert-assigned scores, then
/// lowered by how far the vector lies from the most severe vector of its macrovector, relative to
/// the next lower macrovectors. Checked against Red Hat's `cvss` library in the tests.
public enum CVSS4 {
    /// The score, or nil for a vector that is not CVSS v4.0: a wrong prefix, a mandatory base
    /// metric missing, an unknown or repeated metric, a value the metric does not have.
    public static func score(_ vector: String) -> Double? {
        guard let m = metrics(vector) else { return nil }
        if ["VC", "VI", "VA", "SC", "SI", "SA"].allSatisfy({ m[$0] == "N" }) { return 0 }
        let eq = macrovector(m)
        guard var value = lookup(eq) else { return nil }
        let lower = lowerScores(eq)
        guard let distances = distancesFromMaximum(m, eq) else { return nil }
        let steps: [Double?] = [maxSeverity.eq1[eq[0]], maxSeverity.eq2[eq[1]], maxSeverity.eq3eq6[eq[2]][eq[5]],
                                maxSeverity.eq4[eq[3]], nil]
        var sum = 0.0
        var existing = 0
        for (i, next) in lower.enumerated() {
            guard let next else { continue }
            existing += 1
            guard let step = steps[i] else { continue }  // eq5's distance is always 0
            sum += (value - next) * (distances[i] / (step * 0.1))
        }
        value -= existing == 0 ? 0 : sum / Double(existing)
        // Rounded to one decimal as the specification's calculator does, with its 1e-6 nudge so
        // that a score of x.x5 computed as x.x4999… rounds up.
        return ((min(max(value, 0), 10) + 1e-6) * 10).rounded() / 10
    }

    /// The vector's effective metrics: base values, replaced by modified (`M…`) ones where given;
    /// E undefined is Attacked and CR/IR/AR undefined High, as the specification assumes.
    static func metrics(_ vector: String) -> [String: String]? {
        var parts = vector.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.first == "CVSS:4.0" else { return nil }
        parts.removeFirst()
        var given: [String: String] = [:]
        for part in parts {
            let kv = part.split(separator: ":", maxSplits: 1).map(String.init)
            guard kv.count == 2, let allowed = values[kv[0]], allowed.contains(kv[1]), given[kv[0]] == nil else { return nil }
            given[kv[0]] = kv[1]
        }
        guard mandatory.allSatisfy({ given[$0] != nil }) else { return nil }
        var m = given
        for key in mandatory { if let v = given["M" + key], v != "X" { m[key] = v } }
        if (m["E"] ?? "X") == "X" { m["E"] = "A" }
        for key in ["CR", "IR", "AR"] where (m[key] ?? "X") == "X" { m[key] = "H" }
        return m
    }

    static func macrovector(_ m: [String: String]) -> [Int] {
        let (av, pr, ui) = (m["AV"], m["PR"], m["UI"])
        let eq1 = av == "N" && pr == "N" && ui == "N" ? 0 : (av == "N" || pr == "N" || ui == "N") && av != "P" ? 1 : 2
        let eq2 = m["AC"] == "L" && m["AT"] == "N" ? 0 : 1
        let eq3 = m["VC"] == "H" && m["VI"] == "H" ? 0 : m["VC"] == "H" || m["VI"] == "H" || m["VA"] == "H" ? 1 : 2
        let eq4 = m["SI"] == "S" || m["SA"] == "S" ? 0 : m["SC"] == "H" || m["SI"] == "H" || m["SA"] == "H" ? 1 : 2
        let eq5 = ["A": 0, "P": 1, "U": 2][m["E"] ?? "A"] ?? 0
        let high = (m["CR"] == "H" && m["VC"] == "H") || (m["IR"] == "H" && m["VI"] == "H") || (m["AR"] == "H" && m["VA"] == "H")
        return [eq1, eq2, eq3, eq4, eq5, high ? 0 : 1]
    }

    /// The scores of the next lower macrovector in eq1, eq2, eq3 with eq6 (which the
    /// specification moves together), eq4 and eq5; nil where there is none.
    static func lowerScores(_ eq: [Int]) -> [Double?] {
        func bumped(_ i: Int) -> [Int] { var e = eq; e[i] += 1; return e }
        let eq36: Double?
        switch (eq[2], eq[5]) {
        case (0, 0): eq36 = [lookup(bumped(5)), lookup(bumped(2))].compactMap { $0 }.max()
        case (1, 0): eq36 = lookup(bumped(5))
        default: eq36 = lookup(bumped(2))
        }
        return [lookup(bumped(0)), lookup(bumped(1)), eq36, lookup(bumped(3)), lookup(bumped(4))]
    }

    /// How far the vector lies below the first of its macrovector's most severe vectors that it
    /// does not exceed, per class (eq1, eq2, eq3+eq6, eq4, eq5), in the specification's units.
    static func distancesFromMaximum(_ m: [String: String], _ eq: [Int]) -> [Double]? {
        let candidates = maxComposed.eq1[eq[0]].flatMap { a in maxComposed.eq2[eq[1]].flatMap { b in
            maxComposed.eq3eq6[eq[2]][eq[5]].flatMap { c in maxComposed.eq4[eq[3]].map { d in a + b + c + d } } } }
        for candidate in candidates {
            var max: [String: String] = [:]
            for part in candidate.split(separator: "/") {
                let kv = part.split(separator: ":").map(String.init)
                max[kv[0]] = kv[1]
            }
            var d: [String: Double] = [:]
            for (key, levels) in CVSS4.levels {
                guard let a = m[key].flatMap({ levels[$0] }), let b = max[key].flatMap({ levels[$0] }) else { return nil }
                d[key] = a - b
            }
            guard d.values.allSatisfy({ $0 >= 0 }) else { continue }
            func sum(_ keys: String...) -> Double { keys.reduce(0) { $0 + d[$1]! } }
            return [sum("AV", "PR", "UI"), sum("AC", "AT"), sum("VC", "VI", "VA", "CR", "IR", "AR"), sum("SC", "SI", "SA"), 0]
        }
        return nil
    }

    static func lookup(_ eq: [Int]) -> Double? {
        guard eq[0] < 3, eq[1] < 2, eq[2] < 3, eq[3] < 3, eq[4] < 3, eq[5] < 2 else { return nil }
        let index = ((((eq[0] * 2 + eq[1]) * 3 + eq[2]) * 3 + eq[3]) * 3 + eq[4]) * 2 + eq[5]
        let tenths = table[index]
        return tenths < 0 ? nil : Double(tenths) / 10
    }
}

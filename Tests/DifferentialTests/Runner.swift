import CNBCore
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// One differential case: inputs laid down by `setup`, the same for both lifecycles; `execute`
/// runs one lifecycle on them and observes what it produced.
struct DifferentialCase: Sendable {
    /// `<phase>/<scenario>@<api>`: what the differences table matches against.
    var id: String
    var setup: @Sendable (CaseRoot) throws -> Void
    var execute: @Sendable (CaseRoot, LifecycleUnderTest) throws -> Observation
}

/// The table of intentional differences (`Tests/Fixtures/differential/differences.toml`): each
/// entry a glob over `<case id> <artifact>#<path>`, the reason, and the spec sentence allowing it.
struct ListedDifference {
    var match: String
    var reason: String
    var spec: String
    /// A difference seen in some runs only (`optional = true`): not reported when it does not occur.
    var optional = false

    static let path = fixturesRoot + "/differential/differences.toml"

    static func load() throws -> [ListedDifference] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let table = try TOMLParser.parse(text)
        return try (table["difference"]?.array ?? []).enumerated().map { i, entry in
            guard let match = entry["match"]?.string, let reason = entry["reason"]?.string, let spec = entry["spec"]?.string,
                  !reason.isEmpty, !spec.isEmpty else {
                throw TestSupportError("\(path): difference[\(i)] needs match, reason and spec (non-empty strings)")
            }
            return ListedDifference(match: match, reason: reason, spec: spec, optional: entry["optional"]?.bool ?? false)
        }
    }

    func matches(_ caseID: String, _ d: Difference) -> Bool {
        fnmatch(match, caseID + " " + d.key, 0) == 0
    }
}

/// The outcome of a set of cases: counts for the summary line, and the unlisted differences.
struct Tally {
    var cases = 0, identical = 0, listedOnly = 0
    var unlisted: [(caseID: String, difference: Difference)] = []
    /// The output of both lifecycles for each case with an unlisted difference.
    var logs: [String: (reference: String, cairn: String)] = [:]
    var usedListings = Set<Int>()

    var summary: String {
        "\(cases) cases, \(identical) identical, \(listedOnly) with listed differences only, \(unlisted.count) unlisted differences"
    }
}

enum DifferentialRunner {
    /// Runs every case through both lifecycles (reference first, then Cairn, at the same paths).
    static func run(_ cases: [DifferentialCase], listed: [ListedDifference]) throws -> Tally {
        let lifecycles = try Lifecycles.both()
        var tally = Tally()
        for c in cases {
            let root = CaseRoot()
            var observed: [Observation] = []
            for lifecycle in lifecycles {
                try root.reset(c.setup)
                observed.append(try c.execute(root, lifecycle))
            }
            tally.cases += 1
            let differences = Difference.between(observed[0], observed[1])
            if differences.isEmpty { tally.identical += 1; continue }
            var allListed = true
            for d in differences {
                if let i = listed.firstIndex(where: { $0.matches(c.id, d) }) {
                    tally.usedListings.insert(i)
                } else {
                    allListed = false
                    tally.unlisted.append((c.id, d))
                    tally.logs[c.id] = (observed[0].log, observed[1].log)
                }
            }
            if allListed { tally.listedOnly += 1 }
        }
        return tally
    }

    /// Runs a phase's cases, prints its summary line and records each unlisted difference.
    static func check(_ phase: String, _ cases: [DifferentialCase]) throws {
        let listed = try ListedDifference.load()
        let tally = try run(cases, listed: listed)
        print("differential \(phase): \(tally.summary)")
        for (caseID, d) in tally.unlisted {
            Issue.record("\(caseID): \(d) — not in \(ListedDifference.path)")
        }
        for (i, entry) in listed.enumerated() where entry.match.hasPrefix(phase + "/") && !entry.optional && !tally.usedListings.contains(i) {
            Issue.record("\(ListedDifference.path): difference[\(i)] (\(entry.match)) matches no difference any more: remove it")
        }
        for (caseID, logs) in tally.logs.sorted(by: { $0.key < $1.key }) {
            print("differential \(caseID) output\n--- reference:\n\(logs.reference.suffix(1500))\n--- cairn:\n\(logs.cairn.suffix(1500))")
        }
    }

    /// The environment a platform gives a phase: CNB_* values as given, nothing from the test
    /// process (HOME inside the case, a fixed PATH).
    static func environment(_ root: CaseRoot, _ values: [String: String]) -> [String: String] {
        var env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": root.path + "/home"]
        env.merge(values) { $1 }
        return env
    }
}

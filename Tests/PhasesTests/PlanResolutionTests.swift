import Buildpacks
import Phases
import Testing

/// Build plan resolution as a pure function, against the reference lifecycle's own cases.
@Suite struct PlanResolutionTests {
    func plan(_ provides: [String] = [], _ requires: [String] = [], or: [([String], [String])] = []) -> BuildPlan {
        BuildPlan(provides: provides.map(Provide.init), requires: requires.map { Require(name: $0) },
                  or: or.map { BuildPlan.Alternative(provides: $0.0.map(Provide.init), requires: $0.1.map { Require(name: $0) }) })
    }

    func resolve(_ inputs: [(String, Bool, BuildPlan)]) -> Result<PlanResolution.Resolved<String>, PlanResolution.Failure> {
        PlanResolution.resolve(inputs.map { PlanResolution.Input(element: $0.0, optional: $0.1, plan: $0.2) }, describe: { $0 })
    }

    /// The reference's "falls back to alternate build plans": an optional module is optional
    /// only with its last alternative, so A and B stay with their `or` plans.
    @Test func fallsBackToAlternateBuildPlansAsTheReferenceDoes() throws {
        let result = try resolve([
            ("A", true, plan(["dep2-missing"], or: [(["dep1-present"], [])])),
            ("B", true, plan([], ["dep3-missing"], or: [([], ["dep1-present"])])),
            ("C", false, plan(["dep5-missing"], ["dep4-missing"], or: [(["dep6-present"], ["dep6-present"])])),
            ("D", true, plan(["dep8-missing"], ["dep7-missing"], or: [(["dep10-missing"], ["dep9-missing"])])),
        ]).get()
        #expect(result.elements == ["A", "B", "C"])
        #expect(result.entries.map(\.providers) == [["A"], ["C"]])
        #expect(result.entries.map { $0.requires.map(\.name) } == [["dep1-present"], ["dep6-present"]])
        #expect(result.trial == 16)
    }

    /// The reference's "removes optional buildpacks that have unmet requires / unused provides"
    /// in one pass: A requires a missing dep, C provides it unused.
    @Test func optionalModulesWithUnmetRequiresOrUnusedProvidesAreDropped() throws {
        let result = try resolve([
            ("A", true, plan([], ["dep-missing"])),
            ("B", false, plan(["dep-present"], ["dep-present"])),
            ("C", true, plan(["dep-missing"])),
        ]).get()
        #expect(result.elements == ["B"])
        #expect(result.entries == [PlanResolution.Entry(providers: ["B"], requires: [Require(name: "dep-present")])])
    }

    @Test func aRequiredModuleWithAnUnmetRequireFailsEveryTrial() {
        guard case .failure(let failure) = resolve([("A", false, plan([], ["nothing"]))]) else {
            Issue.record("expected a failure")
            return
        }
        #expect(failure.reason.contains("A requires \"nothing\""))
    }

    @Test func providersAccumulateAcrossRequires() throws {
        let result = try resolve([
            ("A", false, plan(["x"])),
            ("B", false, plan(["x"], ["x"])),
            ("C", false, plan([], ["x"])),
        ]).get()
        #expect(result.entries.count == 1)
        #expect(result.entries[0].providers == ["A", "B"])
        #expect(result.entries[0].requires.count == 2)
    }
}

@Suite struct GoFlagsTests {
    let booleans: Set<String> = ["skip-layers", "daemon"]

    @Test func goStyleFormsBecomeCanonical() throws {
        #expect(try GoFlags.normalize(["-layers=/layers", "-app", "/w", "--group=/g", "img"], booleans: booleans)
                == ["--layers=/layers", "--app=/w", "--group=/g", "--", "img"])
    }

    @Test func emptyValuesMeanNotGiven() throws {
        #expect(try GoFlags.normalize(["-run-image=", "-cache-image", "", "-tag=", "img"], booleans: booleans) == ["--", "img"])
    }

    @Test func booleansTakeGoValues() throws {
        #expect(try GoFlags.normalize(["-skip-layers=false", "-daemon=true"], booleans: booleans) == ["--daemon"])
        #expect(try GoFlags.normalize(["-skip-layers", "-daemon=0"], booleans: booleans) == ["--skip-layers"])
        #expect(throws: GoFlags.UsageError.self) { try GoFlags.normalize(["-skip-layers=maybe"], booleans: booleans) }
    }

    @Test func parsingStopsAtTheFirstPositional() throws {
        #expect(try GoFlags.normalize(["img", "-layers=/x"], booleans: booleans) == ["--", "img", "-layers=/x"])
        #expect(try GoFlags.normalize(["--", "-img"], booleans: booleans) == ["--", "-img"])
    }

    @Test func aValueFlagWithoutValueIsAUsageError() {
        #expect(throws: GoFlags.UsageError.self) { try GoFlags.normalize(["-layers"], booleans: booleans) }
    }
}

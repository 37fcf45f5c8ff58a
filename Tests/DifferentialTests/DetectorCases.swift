import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The Platform API versions every phase is compared at (issue 37: 0.7, 0.9, 0.12, 0.13, 0.15 at least).
let comparedPlatformAPIs = ["0.7", "0.9", "0.11", "0.12", "0.13", "0.14", "0.15"]

/// Detector scenarios: orders, plans and detect outcomes. Each runs at every compared Platform
/// API; the detector's group.toml, plan.toml, exit code and the environment each buildpack's
/// bin/detect saw are compared.
let detectorScenarios: [(name: String, setup: @Sendable (CaseRoot) throws -> Void)] = [
    ("single-with-plan", { r in
        try r.buildpack("a", api: "0.9")
        try r.appFile("detect-plan-a@1.0.0.toml", "[[provides]]\nname = \"x\"\n[[requires]]\nname = \"x\"\n[requires.metadata]\nv = 1\nlist = [\"p\", \"q\"]\n")
        try r.order([["a"]])
    }),
    ("nested-composites", { r in
        for id in ["x", "y", "z"] { try r.buildpack(id, api: "0.10") }
        try r.composite("meta", api: "0.10", order: "[[order]]\n[[order.group]]\nid = \"x\"\nversion = \"1.0.0\"\n[[order]]\n[[order.group]]\nid = \"inner\"\nversion = \"1.0.0\"\n")
        try r.composite("inner", api: "0.10", order: "[[order]]\n[[order.group]]\nid = \"y\"\nversion = \"1.0.0\"\n")
        try r.appFile("detect-exit-x@1.0.0", "100")
        try r.order([["meta", "z"]])
    }),
    ("optional-fails", { r in
        try r.buildpack("a", api: "0.12")
        try r.buildpack("b", api: "0.12")
        try r.appFile("detect-exit-b@1.0.0", "100")
        try r.order([["a", "b?"]])
    }),
    ("optional-composite-fails", { r in
        for id in ["y", "q"] { try r.buildpack(id, api: "0.8") }
        try r.composite("meta", api: "0.8", order: "[[order]]\n[[order.group]]\nid = \"y\"\nversion = \"1.0.0\"\n")
        try r.appFile("detect-exit-y@1.0.0", "100")
        try r.order([["meta?", "q"]])
    }),
    ("or-plans", { r in
        try r.buildpack("a", api: "0.9")
        try r.buildpack("b", api: "0.9")
        try r.appFile("detect-plan-a@1.0.0.toml", "[[provides]]\nname = \"node\"\n[[or]]\n[[or.provides]]\nname = \"npm\"\n")
        try r.appFile("detect-plan-b@1.0.0.toml", "[[requires]]\nname = \"npm\"\n[requires.metadata]\nversion = \"10\"\n")
        try r.order([["a", "b"]])
    }),
    ("all-fail", { r in
        try r.buildpack("a", api: "0.12")
        try r.buildpack("b", api: "0.12")
        try r.appFile("detect-exit-a@1.0.0", "100")
        try r.appFile("detect-exit-b@1.0.0", "100")
        try r.order([["a"], ["b"]])
    }),
    ("one-errors", { r in
        try r.buildpack("a", api: "0.12")
        try r.buildpack("b", api: "0.12")
        try r.appFile("detect-exit-a@1.0.0", "100")
        try r.appFile("detect-exit-b@1.0.0", "3")
        try r.order([["a"], ["b"]])
    }),
    ("requires-provided-later", { r in
        try r.buildpack("needs", api: "0.11")
        try r.buildpack("gives", api: "0.11")
        try r.appFile("detect-plan-needs@1.0.0.toml", "[[requires]]\nname = \"x\"\n")
        try r.appFile("detect-plan-gives@1.0.0.toml", "[[provides]]\nname = \"x\"\n")
        try r.order([["needs", "gives"], ["gives", "needs"]])
    }),
    ("unused-provide", { r in
        try r.buildpack("p", api: "0.12")
        try r.buildpack("main", api: "0.12")
        try r.appFile("detect-plan-p@1.0.0.toml", "[[provides]]\nname = \"unused\"\n")
        try r.order([["p", "main"], ["p?", "main"]])
    }),
    ("mixed-apis-and-versions", { r in
        try r.buildpack("old", api: "0.7")
        try r.buildpack("new", "2.0.1", api: "0.12")
        try r.buildpack("new", "1.0.0", api: "0.12")
        try r.appFile("detect-plan-old@1.0.0.toml", "[[provides]]\nname = \"dep\"\n")
        try r.appFile("detect-plan-new@2.0.1.toml", "[[requires]]\nname = \"dep\"\n[requires.metadata]\nlaunch = true\n")
        try r.order([["old", "new@2.0.1"]])
    }),
    ("platform-env-and-build-config", { r in
        try r.buildpack("a", api: "0.10")
        try r.write("platform/env/GREETING", "hello")
        try r.write("build-config/env/FROM_OPERATOR", "operator")
        try r.write("build-config/env/GREETING.override", "operator-greeting")
        try r.order([["a"]])
    }),
    ("missing-buildpack", { r in
        try r.buildpack("a", api: "0.12")
        try r.order([["a", "absent"]])
    }),
]

let detectorCases: [DifferentialCase] = detectorScenarios.flatMap { scenario in
    comparedPlatformAPIs.map { api in
        DifferentialCase(id: "detector/\(scenario.name)@\(api)", setup: { r in
            try r.standardDirectories()
            try scenario.setup(r)
        }, execute: { r, lifecycle in
            try runDetector(r, lifecycle, platformAPI: api)
        })
    }
}

/// Runs the detector with platform.md's flags and observes group.toml, plan.toml, the exit code
/// and what each bin/detect saw.
func runDetector(_ r: CaseRoot, _ lifecycle: LifecycleUnderTest, platformAPI: String) throws -> Observation {
    let args = ["-app", r.app, "-buildpacks", r.buildpacks, "-group", r.layers + "/group.toml", "-layers", r.layers,
                "-order", r.path + "/order.toml", "-plan", r.layers + "/plan.toml", "-platform", r.platform]
    let result = try r.runAsUser([lifecycle.phase("detector")] + args,
                                 environment: DifferentialRunner.environment(r, ["CNB_PLATFORM_API": platformAPI,
                                                                                 "CNB_BUILD_CONFIG_DIR": r.path + "/build-config"]))
    var o = Observation()
    o.exit(result.status)
    o.log = result.stdout + result.stderr
    o.toml(r.path, "layers/group.toml")
    o.toml(r.path, "layers/plan.toml")
    o.recorded(r.path, presenceOnly: detectEnvRandom)
    return o
}

/// Values that differ from run to run in both lifecycles, compared by presence: the temporary
/// plan path (and the arguments that carry it).
let detectEnvRandom: Set<String> = ["CNB_BUILD_PLAN_PATH", "ARGS"]

@Suite(.enabled(if: geteuid() == 0, "runs both lifecycles as uid 1000 with setpriv (CI runs as root)")) struct DifferentialDetector {
    @Test func detectorMatchesTheReference() throws {
        try DifferentialRunner.check("detector", detectorCases)
    }
}

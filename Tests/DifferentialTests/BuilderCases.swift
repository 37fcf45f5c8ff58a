import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Builder scenarios: a group and plan as the detector would leave them, buildpacks scripted by
/// `build-<id>@<v>.sh` in the app directory. Compared at every Platform API: the exit code, the
/// whole `<layers>` tree (config/metadata.toml, layer TOMLs, env files, SBOM files, modes,
/// owners), the Buildpack Plan and environment each bin/build saw.
struct BuilderScenario: Sendable {
    var name: String
    var group: [(id: String, api: String)]
    var plan: String = ""
    var scripts: [String: String]
    /// Added to each buildpack's `[buildpack]` table.
    var descriptor = ""
    /// More inputs (platform env, build config).
    var setup: @Sendable (CaseRoot) throws -> Void = { _ in }
}

let builderScenarios: [BuilderScenario] = [
    BuilderScenario(name: "launch-layer-and-processes", group: [("a", "0.12")], scripts: ["a": """
        mkdir -p "$LAYERS/tools/bin" "$LAYERS/tools/env.launch"
        printf '#!/bin/sh\\necho tool\\n' > "$LAYERS/tools/bin/tool"; chmod 755 "$LAYERS/tools/bin/tool"
        printf 'launch' > "$LAYERS/tools/env.launch/MODE.override"
        printf '[types]\\nlaunch = true\\n[metadata]\\nversion = "1.2"\\n' > "$LAYERS/tools.toml"
        cat > "$LAYERS/launch.toml" <<'T'
        [[processes]]
        type = "web"
        command = ["tool", "serve"]
        args = ["--port", "8080"]
        default = true
        [[processes]]
        type = "worker"
        command = ["tool"]
        working-dir = "/tmp"
        [[labels]]
        key = "org.example.team"
        value = "cnb"
        T
        """]),
    BuilderScenario(name: "build-and-cache-layers-feed-next-buildpack", group: [("a", "0.10"), ("b", "0.10")], scripts: [
        "a": """
        mkdir -p "$LAYERS/deps/bin" "$LAYERS/deps/env.build" "$LAYERS/cache-only"
        printf 'value-a' > "$LAYERS/deps/env.build/FROM_A.default"
        printf '/extra' > "$LAYERS/deps/env.build/PATH.append"
        printf '[types]\\nbuild = true\\ncache = true\\n' > "$LAYERS/deps.toml"
        printf '[types]\\ncache = true\\n[metadata]\\nkey = "k"\\n' > "$LAYERS/cache-only.toml"
        printf '[metadata]\\nremember = "this"\\n' > "$LAYERS/store.toml"
        """,
        "b": "mkdir -p \"$LAYERS/x\"\nprintf '[types]\\nlaunch = true\\n' > \"$LAYERS/x.toml\"\n",
    ]),
    BuilderScenario(name: "sbom-files", group: [("a", "0.12")], scripts: ["a": sbomScript],
                    descriptor: "sbom-formats = [\"application/vnd.cyclonedx+json\", \"application/spdx+json\"]"),
    BuilderScenario(name: "sbom-format-not-declared", group: [("a", "0.12")], scripts: ["a": sbomScript]),
    BuilderScenario(name: "plan-and-unmet", group: [("a", "0.12"), ("b", "0.12")], plan: """
        [[entries]]
        [[entries.providers]]
        id = "a"
        version = "1.0.0"
        [[entries.requires]]
        name = "node"
        [entries.requires.metadata]
        version = "20"
        [[entries]]
        [[entries.providers]]
        id = "a"
        version = "1.0.0"
        [[entries.providers]]
        id = "b"
        version = "1.0.0"
        [[entries.requires]]
        name = "npm"
        """, scripts: ["a": "printf '[[unmet]]\\nname = \"npm\"\\n' > \"$LAYERS/build.toml\"\n"]),
    BuilderScenario(name: "process-overrides-and-slices", group: [("a", "0.9"), ("b", "0.12")], scripts: [
        "a": "printf '[[processes]]\\ntype = \"web\"\\ncommand = [\"echo\", \"a\"]\\ndefault = true\\n' > \"$LAYERS/launch.toml\"\n",
        "b": "printf '[[processes]]\\ntype = \"web\"\\ncommand = [\"echo\", \"b\"]\\n[[slices]]\\npaths = [\"static/*\"]\\n' > \"$LAYERS/launch.toml\"\n",
    ]),
    BuilderScenario(name: "old-buildpack-api-process", group: [("old", "0.7")], scripts: ["old": """
        printf '[[processes]]\\ntype = "web"\\ncommand = "echo $GREETING"\\nargs = ["x"]\\ndirect = false\\n[[bom]]\\nname = "dep"\\n[bom.metadata]\\nversion = "1"\\n' > "$LAYERS/launch.toml"
        """]),
    BuilderScenario(name: "platform-env-and-build-config", group: [("a", "0.10"), ("b", "0.12")], scripts: [
        "a": "mkdir -p \"$LAYERS/x/env\"\nprintf 'from-layer' > \"$LAYERS/x/env/FROM_LAYER\"\nprintf '[types]\\nbuild = true\\n' > \"$LAYERS/x.toml\"\n",
    ], setup: { r in
        try r.write("platform/env/GREETING", "hello")
        try r.write("build-config/env/FROM_OPERATOR", "operator")
        try r.write("build-config/env/GREETING.override", "operator-greeting")
    }),
    BuilderScenario(name: "buildpack-fails", group: [("a", "0.12")], scripts: ["a": "echo failing >&2\nexit 7\n"]),
    BuilderScenario(name: "invalid-layer-toml", group: [("a", "0.12")], scripts: ["a": "mkdir -p \"$LAYERS/bad\"\nprintf '[types\\n' > \"$LAYERS/bad.toml\"\n"]),
    BuilderScenario(name: "group-api-does-not-parse", group: [("a", "0.2wrongapi")], scripts: [:]),
]

let sbomScript = """
    mkdir -p "$LAYERS/l"
    printf '[types]\\nlaunch = true\\n' > "$LAYERS/l.toml"
    printf '{"bomFormat":"CycloneDX","specVersion":"1.4"}' > "$LAYERS/l.sbom.cdx.json"
    printf '{"bomFormat":"CycloneDX","specVersion":"1.4","x":1}' > "$LAYERS/launch.sbom.cdx.json"
    printf '{"spdxVersion":"SPDX-2.3"}' > "$LAYERS/build.sbom.spdx.json"
    """

let builderCases: [DifferentialCase] = builderScenarios.flatMap { scenario in
    comparedPlatformAPIs.map { api in
        DifferentialCase(id: "builder/\(scenario.name)@\(api)", setup: { r in
            try builderInputs(r, scenario)
        }, execute: { r, lifecycle in
            try runBuilder(r, lifecycle, platformAPI: api)
        })
    }
}

func builderInputs(_ r: CaseRoot, _ s: BuilderScenario) throws {
    try r.standardDirectories()
    var group = ""
    for (id, api) in s.group {
        // A buildpack's own descriptor carries a parsable API; group.toml says which it ran at.
        try r.buildpack(id, api: APIOrder.parses(api) ? api : "0.12", extra: s.descriptor)
        group += "[[group]]\nid = \"\(id)\"\nversion = \"1.0.0\"\napi = \"\(api)\"\n"
    }
    try r.write("layers/group.toml", group)
    try r.write("layers/plan.toml", s.plan)
    for (id, script) in s.scripts { try r.appFile("build-\(id)@1.0.0.sh", script) }
    try s.setup(r)
    try r.own("layers")
}

func runBuilder(_ r: CaseRoot, _ lifecycle: LifecycleUnderTest, platformAPI: String) throws -> Observation {
    let args = ["-app", r.app, "-buildpacks", r.buildpacks, "-group", r.layers + "/group.toml", "-layers", r.layers,
                "-plan", r.layers + "/plan.toml", "-platform", r.platform]
    let result = try r.runAsUser([lifecycle.phase("builder")] + args,
                                 environment: DifferentialRunner.environment(r, ["CNB_PLATFORM_API": platformAPI,
                                                                                 "CNB_BUILD_CONFIG_DIR": r.path + "/build-config"]))
    var o = Observation()
    o.exit(result.status)
    o.log = result.stdout + result.stderr
    o.tree(r.path, "layers")
    o.recorded(r.path, presenceOnly: buildEnvRandom)
    return o
}

/// Values that differ from run to run in both lifecycles: the temporary Buildpack Plan path
/// (and the arguments that carry it).
let buildEnvRandom: Set<String> = ["CNB_BP_PLAN_PATH", "ARGS"]

extension APIOrder {
    static func parses(_ s: String) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }
}

@Suite(.enabled(if: geteuid() == 0, "runs both lifecycles as uid 1000 with setpriv (CI runs as root)")) struct DifferentialBuilder {
    @Test func builderMatchesTheReference() throws {
        try DifferentialRunner.check("builder", builderCases)
    }
}

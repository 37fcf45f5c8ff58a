import Buildpacks
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Writes group.toml and plan.toml directly, so builder tests do not depend on the detector.
func prepareBuild(_ w: Workspace, _ buildpacks: [(String, String)], plan: [(name: String, providers: [String])] = []) throws {
    let group = GroupFile(group: try buildpacks.map { GroupElement(id: try BuildpackID($0.0), version: "1.0.0", api: APIVersion($0.1)!) })
    try TOMLFile.write(group, to: w.layers + "/group.toml")
    let entries = try plan.map { e in
        PlanFile.Entry(providers: try e.providers.map { PlanFile.Provider(id: try BuildpackID($0), version: "1.0.0") },
                       requires: [Require(name: e.name, metadata: ["from": .string("plan")])])
    }
    try TOMLFile.write(PlanFile(entries: entries), to: w.layers + "/plan.toml")
}

@Suite struct BuilderTests {
    @Test func envFileSuffixesFollowTheModificationRules() throws {
        let w = try Workspace()
        try w.buildpack("first")
        try w.buildpack("second")
        try w.buildpack("reader")
        try w.platformEnv("USER_OVERRIDE", "user")
        try writeFile(w.buildConfig + "/env/OP_DEFAULT", "operator")       // no suffix = default for build-config
        try writeFile(w.buildConfig + "/env/OP_OVERRIDE.override", "operator-wins")
        try w.appFile("build-first@1.0.0.sh", #"""
            mkdir -p "$LAYERS/a/env" "$LAYERS/b/env" "$LAYERS/a/env.build" "$LAYERS/a/env.launch"
            printf '[types]\nbuild = true\n' > "$LAYERS/a.toml"
            printf '[types]\nbuild = true\n' > "$LAYERS/b.toml"
            printf 'a1' > "$LAYERS/a/env/APPEND.append";   printf ',' > "$LAYERS/a/env/APPEND.delim"
            printf 'b1' > "$LAYERS/b/env/APPEND.append";   printf ',' > "$LAYERS/b/env/APPEND.delim"
            printf 'a1' > "$LAYERS/a/env/PREPEND.prepend"; printf ':' > "$LAYERS/a/env/PREPEND.delim"
            printf 'b1' > "$LAYERS/b/env/PREPEND.prepend"; printf ':' > "$LAYERS/b/env/PREPEND.delim"
            printf 'a' > "$LAYERS/a/env/OVERRIDE.override"
            printf 'b' > "$LAYERS/b/env/OVERRIDE"
            printf 'a' > "$LAYERS/a/env/DEFAULT.default"
            printf 'b' > "$LAYERS/b/env/DEFAULT.default"
            printf 'build-only' > "$LAYERS/a/env.build/BUILD_ONLY"
            printf 'launch-only' > "$LAYERS/a/env.launch/LAUNCH_ONLY"
            printf 'bp' > "$LAYERS/a/env/USER_OVERRIDE"
            printf 'bp' > "$LAYERS/a/env/OP_OVERRIDE"
            printf 'bp' > "$LAYERS/a/env/OP_DEFAULT"
            """#)
        try w.appFile("build-second@1.0.0.sh", #"""
            mkdir -p "$LAYERS/c/env"
            printf '[types]\nbuild = true\n' > "$LAYERS/c.toml"
            printf 'c1' > "$LAYERS/c/env/APPEND.append"; printf ',' > "$LAYERS/c/env/APPEND.delim"
            printf 'c1' > "$LAYERS/c/env/PREPEND.prepend"; printf ':' > "$LAYERS/c/env/PREPEND.delim"
            printf 'c' > "$LAYERS/c/env/OVERRIDE.override"
            printf 'c' > "$LAYERS/c/env/DEFAULT.default"
            """#)
        try prepareBuild(w, [("first", "0.12"), ("second", "0.12"), ("reader", "0.12")])
        let r = try w.run("builder")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let env = try w.recordedEnv("build", "reader@1.0.0")
        #expect(env["APPEND"] == "a1,b1,c1")           // earlier buildpacks first, layers ascending
        #expect(env["PREPEND"] == "c1:b1:a1")          // later buildpacks first, layers descending
        #expect(env["OVERRIDE"] == "c")                // later wins
        #expect(env["DEFAULT"] == "a")                 // earlier wins
        #expect(env["BUILD_ONLY"] == "build-only")
        #expect(env["LAUNCH_ONLY"] == nil)
        #expect(env["USER_OVERRIDE"] == "user")        // user-provided overrides buildpack values
        #expect(env["OP_OVERRIDE"] == "operator-wins") // operator applied after buildpacks
        #expect(env["OP_DEFAULT"] == "bp")             // operator default does not replace a set value
    }

    @Test func layerTypesDecideVisibilityAndIgnoredLayersAreRenamed() throws {
        let w = try Workspace()
        try w.buildpack("tools")
        try w.buildpack("user")
        try w.appFile("build-tools@1.0.0.sh", #"""
            for l in build-a build-b launch-only ignored cache-only; do mkdir -p "$LAYERS/$l/bin" "$LAYERS/$l/lib"; done
            printf '[types]\nbuild = true\n' > "$LAYERS/build-a.toml"
            printf '[types]\nbuild = true\nlaunch = true\n' > "$LAYERS/build-b.toml"
            printf '[types]\nlaunch = true\n' > "$LAYERS/launch-only.toml"
            printf '[types]\ncache = true\n' > "$LAYERS/cache-only.toml"
            printf '[metadata]\nnote = "no types"\n' > "$LAYERS/ignored.toml"
            mkdir -p "$LAYERS/no-toml"
            """#)
        try prepareBuild(w, [("tools", "0.12"), ("user", "0.12")])
        let r = try w.run("builder")
        #expect(r.status == 0, "\(r.stderr)")
        let env = try w.recordedEnv("build", "user@1.0.0")
        let l = w.layers + "/tools"
        #expect(env["PATH"] == "\(l)/build-a/bin:\(l)/build-b/bin:/usr/local/bin:/usr/bin:/bin")
        #expect(env["LD_LIBRARY_PATH"] == "\(l)/build-a/lib:\(l)/build-b/lib")
        #expect(env["LIBRARY_PATH"] == "\(l)/build-a/lib:\(l)/build-b/lib")
        #expect(w.exists(l + "/ignored.ignore") && !w.exists(l + "/ignored"))
        #expect(w.exists(l + "/no-toml.ignore"))
        #expect(w.exists(l + "/launch-only") && w.exists(l + "/cache-only"))
        // Layers go under <layers>/<buildpack ID>, owned by the CNB user.
        if geteuid() == 0 {
            var st = stat()
            stat(l, &st)
            #expect(st.st_uid == uid_t(cnbUser))
        }
    }

    @Test func processesDefaultsLabelsAndSlicesAreAggregated() throws {
        let w = try Workspace()
        try w.buildpack("one")
        try w.buildpack("two")
        try w.buildpack("legacy", api: "0.8")
        try w.appFile("build-one@1.0.0.sh", #"""
            cat > "$LAYERS/launch.toml" <<'T'
            [[labels]]
            key = "shared"
            value = "one"
            [[processes]]
            type = "web"
            command = ["./server", "--port"]
            args = ["8080"]
            default = true
            [[processes]]
            type = "worker"
            command = ["./worker"]
            working-dir = "/workspace/jobs"
            exec-env = ["production"]
            [[slices]]
            paths = ["static/*"]
            T
            """#)
        try w.appFile("build-two@1.0.0.sh", #"""
            cat > "$LAYERS/launch.toml" <<'T'
            [[labels]]
            key = "shared"
            value = "two"
            [[processes]]
            type = "worker"
            command = ["./better-worker"]
            [[slices]]
            paths = ["assets"]
            T
            """#)
        try w.appFile("build-legacy@1.0.0.sh", #"""
            cat > "$LAYERS/launch.toml" <<'T'
            [[processes]]
            type = "shell"
            command = "echo hello"
            direct = false
            T
            """#)
        try prepareBuild(w, [("one", "0.12"), ("two", "0.12"), ("legacy", "0.8")])
        let r = try w.run("builder")
        #expect(r.status == 0, "\(r.stderr)")
        let m = try w.metadata()
        #expect(m.buildpackDefaultProcessType == "web")
        // Sorted by type, as the reference writes them.
        #expect(m.processes.map(\.type.value) == ["shell", "web", "worker"])
        let worker = try #require(m.processes.first { $0.type.value == "worker" })
        #expect(worker.command == ["./better-worker"] && worker.buildpackID.value == "two" && worker.execEnv == ["*"])
        let web = try #require(m.processes.first { $0.type.value == "web" })
        #expect(web.command == ["./server", "--port"] && web.args == ["8080"] && web.direct)
        let shell = try #require(m.processes.first { $0.type.value == "shell" })
        #expect(shell.command == ["echo hello"] && !shell.direct)
        #expect(m.labels == [LaunchFile.Label(key: "shared", value: "two")])
        #expect(m.slices.map(\.paths) == [["static/*"], ["assets"]])
        #expect(m.buildpacks.map(\.id.value) == ["one", "two", "legacy"])
    }

    @Test func redefiningTheDefaultProcessWithoutDefaultLeavesNone() throws {
        let w = try Workspace()
        try w.buildpack("one")
        try w.buildpack("two")
        try w.appFile("build-one@1.0.0.sh", "printf '[[processes]]\\ntype = \"web\"\\ncommand = [\"a\"]\\ndefault = true\\n' > \"$LAYERS/launch.toml\"\n")
        try w.appFile("build-two@1.0.0.sh", "printf '[[processes]]\\ntype = \"web\"\\ncommand = [\"b\"]\\n' > \"$LAYERS/launch.toml\"\n")
        try prepareBuild(w, [("one", "0.12"), ("two", "0.12")])
        #expect(try w.run("builder").status == 0)
        #expect(try w.metadata().buildpackDefaultProcessType == nil)
    }

    @Test func unmetEntriesGoToTheNextProvider() throws {
        let w = try Workspace()
        try w.buildpack("first")
        try w.buildpack("second")
        try w.buildpack("third")
        try w.appFile("build-first@1.0.0.sh", "printf '[[unmet]]\\nname = \"node\"\\n' > \"$LAYERS/build.toml\"\n")
        try prepareBuild(w, [("first", "0.12"), ("second", "0.12"), ("third", "0.12")],
                         plan: [("node", ["first", "third"]), ("python", ["first", "second"])])
        let r = try w.run("builder")
        #expect(r.status == 0, "\(r.stderr)")
        let first = try TOMLFile.read(BuildpackPlan.self, from: w.out + "/build-first@1.0.0-plan.toml")
        let second = try TOMLFile.read(BuildpackPlan.self, from: w.out + "/build-second@1.0.0-plan.toml")
        let third = try TOMLFile.read(BuildpackPlan.self, from: w.out + "/build-third@1.0.0-plan.toml")
        #expect(first.entries.map(\.name) == ["node", "python"])
        #expect(second.entries.map(\.name) == [], "python was met by first")
        #expect(third.entries.map(\.name) == ["node"], "node was unmet by first")
        #expect(third.entries.first?.metadata?["from"] == .string("plan"))
    }

    @Test func legacyBOMTablesAreIgnoredWithAWarning() throws {
        let w = try Workspace()
        try w.buildpack("old-bom")
        try w.appFile("build-old-bom@1.0.0.sh", #"""
            printf '[[bom]]\nname = "openssl"\n[[processes]]\ntype = "web"\ncommand = ["x"]\n' > "$LAYERS/launch.toml"
            """#)
        try prepareBuild(w, [("old-bom", "0.12")])
        let r = try w.run("builder")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("old-bom@1.0.0: the [[bom]] table in launch.toml is not supported by Buildpack API 0.12"), "\(r.stderr)")
        #expect(try w.metadata().processes.map(\.type.value) == ["web"], "the rest of launch.toml still counts")
    }

    @Test func failingBuildExits51WithTheBuildpacksOutput() throws {
        let w = try Workspace()
        try w.buildpack("broken")
        try w.buildpack("never")
        try w.appFile("build-broken@1.0.0.sh", "echo 'compiler says no' >&2\nexit 1\n")
        try prepareBuild(w, [("broken", "0.12"), ("never", "0.12")])
        let r = try w.run("builder")
        #expect(r.status == 51)
        #expect(r.stderr.contains("compiler says no"))
        #expect(r.stderr.contains("ERROR: failed to build: buildpack broken@1.0.0 failed: bin/build exited with status 1"))
        #expect(!w.exists(w.out + "/build-never@1.0.0.env"))
    }

    @Test(arguments: [
        ("mkdir -p \"$LAYERS/launch\"; printf '[types]\\nlaunch = true\\n' > \"$LAYERS/launch.toml.x\"", "a layer must not be named \"launch\""),
        ("echo '{}' > \"$LAYERS/launch.sbom.txt\"", "unsupported SBOM format \"txt\""),
        ("printf '[[unmet]]\\nname = \"ghost\"\\n' > \"$LAYERS/build.toml\"", "build.toml lists unmet \"ghost\""),
        ("printf '[[processes]]\\ntype = \"web\"\\n' > \"$LAYERS/launch.toml\"", "launch.toml: key \"processes[0].command\": required key is missing"),
        ("printf '[types]\\nlaunch = 1\\n' > \"$LAYERS/x.toml\"; mkdir -p \"$LAYERS/x\"", "x.toml: key \"types.launch\": expected a boolean"),
    ])
    func invalidBuildpackOutputIsReported(_ script: String, _ message: String) throws {
        let w = try Workspace()
        try w.buildpack("bp")
        try w.appFile("build-bp@1.0.0.sh", script + "\n")
        try prepareBuild(w, [("bp", "0.12")])
        let r = try w.run("builder")
        #expect(r.status != 0)
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test func buildEnvironmentInputs() throws {
        let w = try Workspace()
        try w.buildpack("new")
        try w.buildpack("old", api: "0.7")
        try prepareBuild(w, [("new", "0.12"), ("old", "0.7")])
        let r = try w.run("builder", ["-log-level", "debug"], env: ["CNB_EXEC_ENV": "development"])
        #expect(r.status == 0, "\(r.stderr)")
        let new = try w.recordedEnv("build", "new@1.0.0")
        #expect(new["CNB_LAYERS_DIR"] == w.layers + "/new")
        #expect(new["CNB_BUILDPACK_DIR"] == w.buildpacks + "/new/1.0.0")
        #expect(new["CNB_PLATFORM_DIR"] == w.platform)
        #expect(new["CNB_BP_PLAN_PATH"] != nil)
        #expect(new["CNB_EXEC_ENV"] == "development")
        #expect(new["PWD"] == w.app)
        if geteuid() == 0 { #expect(new["UID"] == String(cnbUser)) }
        let old = try w.recordedEnv("build", "old@1.0.0")
        #expect(old["ARGS"]?.hasPrefix(w.layers + "/old " + w.platform + " ") == true)
        #expect(old["CNB_EXEC_ENV"] == nil)
    }

    @Test(.requiresRoot("the refusal is of root itself")) func refusesToRunBuildpacksAsRoot() throws {
        let w = try Workspace()
        try w.buildpack("bp")
        try prepareBuild(w, [("bp", "0.12")])
        let r = try w.run("builder", env: ["CNB_USER_ID": "0", "CNB_GROUP_ID": "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("buildpacks never run as root"))
    }
}

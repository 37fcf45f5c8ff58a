import Buildpacks
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

func ids(_ g: GroupFile) -> [String] { g.group.map { "\($0.id)@\($0.version)" } }

@Suite struct DetectorTests {
    @Test func firstPassingGroupWins() throws {
        let w = try Workspace()
        for id in ["a", "b", "c"] { try w.buildpack(id) }
        try w.appFile("detect-exit-b@1.0.0", "100")
        try w.order([["a", "b"], ["c", "a"], ["a"]])
        let r = try w.run("detector")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(ids(try w.group()) == ["c@1.0.0", "a@1.0.0"])
        #expect(try w.group().group.first?.api == APIVersion(0, 12))
        #expect(r.stdout.contains("======== Results ========"))
        #expect(r.stdout.contains("pass: c@1.0.0"))
        // a's bin/detect ran once although a is in three groups.
        #expect(try String(contentsOfFile: w.out + "/detect-a@1.0.0.env", encoding: .utf8).contains("CNB_BUILDPACK_DIR"))
    }

    @Test func detectionThatIsDecidedLeavesNoDetectProcessBehind() throws {
        // Group 1 passes at once; group 2's bin/detect would run for 30 s. The detector returns
        // without waiting for it, and the process is gone by then, not orphaned.
        let w = try Workspace()
        try w.buildpack("a")
        let slow = w.buildpacks + "/slow/1.0.0"
        try writeFile(slow + "/buildpack.toml", "api = \"0.12\"\n[buildpack]\nid = \"slow\"\nversion = \"1.0.0\"\n")
        try writeFile(slow + "/bin/detect", "#!/bin/sh\necho $$ > '\(w.out)/slow.pid'\nexec sleep 30\n")
        try writeFile(slow + "/bin/build", "#!/bin/sh\nexit 0\n")
        chmod(slow + "/bin/detect", 0o755)
        chmod(slow + "/bin/build", 0o755)
        // a's detect waits until slow's has started, so both run at once.
        try w.appFile("detect-wait-a@1.0.0", w.out + "/slow.pid")
        try w.order([["a"], ["slow"]])
        let start = Date()
        let r = try w.run("detector")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(ids(try w.group()) == ["a@1.0.0"])
        #expect(Date().timeIntervalSince(start) < 20)
        let pid = try String(contentsOfFile: w.out + "/slow.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let state = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        #expect(state.isEmpty || state.contains("State:\tZ"), "slow's bin/detect (pid \(pid)) still runs: \(state.prefix(80))")
    }

    @Test func optionalBuildpacksThatFailAreLeftOut() throws {
        let w = try Workspace()
        for id in ["a", "b", "c"] { try w.buildpack(id) }
        try w.appFile("detect-exit-b@1.0.0", "100")
        try w.order([["a", "b?", "c?"]])
        #expect(try w.run("detector").status == 0)
        #expect(ids(try w.group()) == ["a@1.0.0", "c@1.0.0"])
        // group.toml holds no detection-only keys (platform.md, group.toml).
        #expect(try w.group().group.last?.optional == nil)
        #expect(!(try String(contentsOfFile: w.layers + "/group.toml", encoding: .utf8)).contains("optional"))
    }

    @Test func groupOfOnlyFailingOptionalBuildpacksFails() throws {
        let w = try Workspace()
        try w.buildpack("a")
        try w.appFile("detect-exit-a@1.0.0", "100")
        try w.order([["a?"]])
        let r = try w.run("detector")
        #expect(r.status == 20)
        #expect(r.stderr.contains("no buildpack passed detection"))
    }

    @Test func nestedCompositesExpandDepthFirstAndOptionalCompositesFallBack() throws {
        let w = try Workspace()
        for id in ["x", "y", "z", "q"] { try w.buildpack(id) }
        try w.composite("meta", order: """
            [[order]]
            [[order.group]]
            id = "x"
            version = "1.0.0"
            [[order]]
            [[order.group]]
            id = "inner"
            version = "1.0.0"
            """)
        try w.composite("inner", order: "[[order]]\n[[order.group]]\nid = \"y\"\nversion = \"1.0.0\"\n")
        try w.appFile("detect-exit-x@1.0.0", "100")
        try w.order([["meta", "z"]])
        #expect(try w.run("detector").status == 0)
        #expect(ids(try w.group()) == ["y@1.0.0", "z@1.0.0"])

        // An optional composite whose groups all fail is dropped from the group.
        try w.appFile("detect-exit-y@1.0.0", "100")
        try w.order([["meta?", "q"]])
        let r = try w.run("detector")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(ids(try w.group()) == ["q@1.0.0"])
    }

    @Test func orAlternativesArePickedLeftToRight() throws {
        let w = try Workspace()
        try w.buildpack("a")
        try w.buildpack("b")
        try w.appFile("detect-plan-a@1.0.0.toml", """
            [[provides]]
            name = "node"
            [[or]]
            [[or.provides]]
            name = "npm"
            """)
        try w.appFile("detect-plan-b@1.0.0.toml", "[[requires]]\nname = \"npm\"\n[requires.metadata]\nversion = \"10\"\n")
        try w.order([["a", "b"]])
        let r = try w.run("detector")
        #expect(r.status == 0, "\(r.stderr)")
        let plan = try w.plan()
        #expect(plan.entries.count == 1)
        #expect(plan.entries[0].providers.map(\.id.value) == ["a"])
        #expect(plan.entries[0].requires == [Require(name: "npm", metadata: ["version": .string("10")])])
    }

    @Test func aRequirementMustBeProvidedEarlierOrBySelf() throws {
        let w = try Workspace()
        try w.buildpack("needs")
        try w.buildpack("gives")
        try w.appFile("detect-plan-needs@1.0.0.toml", "[[requires]]\nname = \"x\"\n")
        try w.appFile("detect-plan-gives@1.0.0.toml", "[[provides]]\nname = \"x\"\n")
        // Provided only by a later buildpack: fails, with the reason.
        try w.order([["needs", "gives"]])
        let late = try w.run("detector")
        #expect(late.status == 20)
        #expect(late.stderr.contains("needs@1.0.0 requires \"x\", which no earlier buildpack (or itself) provides"), "\(late.stderr)")
        // Provided earlier: passes; the plan names the provider and the requirement.
        try w.order([["gives", "needs"]])
        #expect(try w.run("detector").status == 0)
        #expect(try w.plan().entries.map { $0.providers.map(\.id.value) } == [["gives"]])
        // Provided and required by the same buildpack: passes.
        try w.appFile("detect-plan-needs@1.0.0.toml", "[[provides]]\nname = \"x\"\n[[requires]]\nname = \"x\"\n")
        try w.order([["needs"]])
        #expect(try w.run("detector").status == 0)
    }

    @Test func unusedProvidesFailRequiredAndDropOptionalBuildpacks() throws {
        let w = try Workspace()
        try w.buildpack("p")
        try w.buildpack("main")
        try w.appFile("detect-plan-p@1.0.0.toml", "[[provides]]\nname = \"unused\"\n")
        try w.order([["p", "main"]])
        let r = try w.run("detector")
        #expect(r.status == 20)
        #expect(r.stderr.contains("p@1.0.0 provides \"unused\", which neither it nor a later buildpack requires"))
        try w.order([["p?", "main"]])
        #expect(try w.run("detector").status == 0)
        #expect(ids(try w.group()) == ["main@1.0.0"])
    }

    @Test func exitCodes() throws {
        let w = try Workspace()
        try w.buildpack("a")
        try w.buildpack("b")
        try w.order([["a"], ["b"]])
        try w.appFile("detect-exit-a@1.0.0", "100")
        try w.appFile("detect-exit-b@1.0.0", "100")
        let failed = try w.run("detector")
        #expect(failed.status == 20)
        #expect(failed.stderr.contains("ERROR: failed to detect: no buildpack group passed detection"))
        try w.appFile("detect-exit-b@1.0.0", "3")
        let errored = try w.run("detector")
        #expect(errored.status == 21)
        #expect(errored.stderr.contains("err : b@1.0.0 — bin/detect exited with status 3"))
        #expect(errored.stderr.contains("======== Output: b@1.0.0 ========\ndetect output of b@1.0.0"))
    }

    @Test func extensionsRunFirstAndAreOptional() throws {
        let w = try Workspace()
        try w.buildpack("web")
        try w.imageExtension("ext-pass", plan: "[[provides]]\nname = \"curl\"\n", detect: false)
        try w.imageExtension("ext-fail")
        try w.appFile("detect-exit-ext-fail@1.0.0", "100")
        try w.appFile("detect-plan-web@1.0.0.toml", "[[requires]]\nname = \"curl\"\n")
        try w.order([["web"]], extensions: [["ext-fail", "ext-pass"]])
        let r = try w.run("detector")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let g = try w.group()
        #expect(ids(g) == ["web@1.0.0"])
        #expect(g.groupExtensions?.map(\.id.value) == ["ext-pass"])
        // No bin/generate and no generate/ directory: nothing generated, nothing to extend.
        #expect(try w.analyzed().buildImage?.extend == false)
        #expect(try w.analyzed().runImage?.extend == nil)
        // The extension provides "curl": that entry is the extension's, not left for buildpacks.
        #expect(try w.plan().entries.isEmpty)
        // An extension whose provide nobody requires is left out; the group still passes.
        try w.appFile("detect-plan-web@1.0.0.toml", "")
        #expect(try w.run("detector").status == 0)
        #expect(try w.group().groupExtensions == nil)
    }

    @Test func unsupportedBuildpackAPIExits12() throws {
        let w = try Workspace()
        try w.buildpack("old", api: "0.6")
        try w.order([["old"]])
        let r = try w.run("detector")
        #expect(r.status == 12)
        #expect(r.stderr.contains("buildpack old@1.0.0 declares buildpack API 0.6, which this lifecycle does not support"))
    }

    @Test func unsupportedPlatformAPIExits11() throws {
        let w = try Workspace()
        let r = try w.run("detector", env: ["CNB_PLATFORM_API": "0.3"])
        #expect(r.status == 11)
        #expect(r.stderr.contains("platform API version \"0.3\" is not supported"))
    }

    @Test(arguments: [
        ("buildpack.toml", "api = \"0.12\"\n[buildpack]\nid = \"a\"\nversion = 1\n", "buildpack.toml: key \"buildpack.version\": expected a string"),
        ("order.toml", "[[order]]\n[[order.group]]\nid = \"a\"\nversion = \"1.0.0\"\noptional = \"yes\"\n", "order.toml: key \"order[0].group[0].optional\": expected a boolean"),
        ("plan", "[[requires]]\nname = 3\n", "plan.toml: key \"requires[0].name\": expected a string"),
        ("analyzed.toml", "[run-image]\nimage = [1]\n", "analyzed.toml: key \"run-image.image\": expected a string"),
    ])
    func malformedFilesAreNamedWithTheirKey(_ which: String, _ text: String, _ expected: String) throws {
        let w = try Workspace()
        try w.buildpack("a")
        try w.order([["a"]])
        switch which {
        case "buildpack.toml": try writeFile(w.buildpacks + "/a/1.0.0/buildpack.toml", text)
        case "order.toml": try writeFile(w.root + "/order.toml", text)
        case "analyzed.toml": try writeFile(w.layers + "/analyzed.toml", text)
        default: try w.appFile("detect-plan-a@1.0.0.toml", text)
        }
        let r = try w.run("detector")
        #expect(r.status != 0)
        #expect((r.stdout + r.stderr).contains(expected), "\(r.stdout)\(r.stderr)")
    }

    @Test func detectEnvironmentFollowsTheSpec() throws {
        let w = try Workspace()
        try w.buildpack("new", api: "0.12")
        try w.buildpack("old", api: "0.7")
        try w.buildpack("clear", extra: "clear-env = true")
        try w.platformEnv("USER_VAR", "from-platform")
        try w.platformEnv("PATH", "/platform/bin")
        try writeFile(w.buildConfig + "/env/OPERATOR", "from-operator")
        try writeFile(w.layers + "/analyzed.toml", """
            [run-image]
            image = "run"
            [run-image.target]
            os = "linux"
            arch = "amd64"
            [run-image.target.distro]
            name = "debian"
            version = "12"
            """)
        try w.order([["new", "old", "clear"]])
        let r = try w.run("detector", env: ["SECRET_HOST_VAR": "x", "CNB_EXEC_ENV": "test"])
        #expect(r.status == 0, "\(r.stderr)")
        let new = try w.recordedEnv("detect", "new@1.0.0")
        #expect(new["CNB_BUILDPACK_DIR"] == w.buildpacks + "/new/1.0.0")
        #expect(new["CNB_PLATFORM_DIR"] == w.platform)
        #expect(new["CNB_BUILD_PLAN_PATH"]?.hasSuffix("/plan.toml") == true)
        #expect(new["CNB_EXEC_ENV"] == "test")
        #expect(new["CNB_TARGET_OS"] == "linux" && new["CNB_TARGET_ARCH"] == "amd64")
        #expect(new["CNB_TARGET_DISTRO_NAME"] == "debian" && new["CNB_TARGET_DISTRO_VERSION"] == "12")
        #expect(new["USER_VAR"] == "from-platform")
        #expect(new["OPERATOR"] == "from-operator")
        #expect(new["PATH"] == "/platform/bin:/usr/local/bin:/usr/bin:/bin")
        #expect(new["SECRET_HOST_VAR"] == nil, "only the allowlisted lifecycle env reaches buildpacks")
        // Positional arguments at every API (deprecated, not removed), as the reference passes them.
        #expect(new["ARGS"] == "\(w.platform) \(new["CNB_BUILD_PLAN_PATH"] ?? "?")")
        #expect(new["PWD"] == w.app)
        if geteuid() == 0 { #expect(new["UID"] == String(cnbUser)) }
        // Buildpack API 0.7: positional arguments, no CNB_EXEC_ENV, no targets.
        let old = try w.recordedEnv("detect", "old@1.0.0")
        #expect(old["ARGS"]?.hasPrefix(w.platform + " ") == true)
        #expect(old["CNB_EXEC_ENV"] == nil)
        #expect(old["CNB_TARGET_OS"] == nil)
        // clear-env: no user-provided variables.
        let clear = try w.recordedEnv("detect", "clear@1.0.0")
        #expect(clear["USER_VAR"] == nil)
        #expect(clear["PATH"] == "/usr/local/bin:/usr/bin:/bin")
    }

    @Test func targetsMustMatchTheRunImage() throws {
        let w = try Workspace()
        try w.buildpack("arm", extra: "[[targets]]\nos = \"linux\"\narch = \"arm64\"\n")
        try w.buildpack("any")
        try writeFile(w.layers + "/analyzed.toml", "[run-image]\nimage = \"r\"\n[run-image.target]\nos = \"linux\"\narch = \"amd64\"\n")
        try w.order([["arm"], ["any"]])
        let r = try w.run("detector", ["-log-level", "debug"])
        #expect(r.status == 0)
        #expect(ids(try w.group()) == ["any@1.0.0"])
        #expect(!w.exists(w.out + "/detect-arm@1.0.0.env"), "a buildpack without a matching target is not run")
    }

    @Test func systemBuildpacksWrapEveryGroup() throws {
        let w = try Workspace()
        for id in ["pre", "post", "a", "b"] { try w.buildpack(id) }
        try writeFile(w.root + "/system.toml", """
            [[system.pre.buildpacks]]
            id = "pre"
            version = "1.0.0"
            [[system.post.buildpacks]]
            id = "post"
            version = "1.0.0"
            optional = true
            """)
        try w.appFile("detect-exit-post@1.0.0", "100")
        try w.order([["a"], ["b", "pre"]])
        #expect(try w.run("detector").status == 0)
        #expect(ids(try w.group()) == ["pre@1.0.0", "a@1.0.0"])
        // Not merged when the group already has that ID.
        try w.appFile("detect-exit-a@1.0.0", "100")
        #expect(try w.run("detector").status == 0)
        #expect(ids(try w.group()) == ["b@1.0.0", "pre@1.0.0"])
    }

    @Test func execEnvSkipsBuildpacksThatDoNotSupportIt() throws {
        let w = try Workspace()
        try w.buildpack("prod-only", extra: "[[buildpack.exec-env]]\nname = \"production\"\n")
        try w.buildpack("testing", extra: "[[buildpack.exec-env]]\nname = \"test\"\n")
        try w.order([["prod-only"], ["testing"]])
        #expect(try w.run("detector", env: ["CNB_EXEC_ENV": "test"]).status == 0)
        #expect(ids(try w.group()) == ["testing@1.0.0"])
        #expect(try w.run("detector").status == 0)
        #expect(ids(try w.group()) == ["prod-only@1.0.0"])
        // The flag wins over the environment variable.
        #expect(try w.run("detector", ["-exec-env", "test"], env: ["CNB_EXEC_ENV": "production"]).status == 0)
        #expect(ids(try w.group()) == ["testing@1.0.0"])
    }

    @Test func eachDetectRunsOncePerBuildEvenAcrossManyGroups() throws {
        let w = try Workspace()
        // Each detect appends to a counter file; 10 groups share 3 buildpacks.
        for id in ["a", "b", "c"] { try w.buildpack(id) }
        for id in ["a", "b", "c"] {
            let path = w.buildpacks + "/\(id)/1.0.0/bin/detect"
            var s = try String(contentsOfFile: path, encoding: .utf8)
            s = s.replacingOccurrences(of: "exit 0\n", with: "echo run >> \"$out/count-\(id)\"\nexit 100\n")
            try s.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
        try w.appFile("detect-exit-c@1.0.0", "0")
        try w.order((0..<9).map { _ in ["a", "b"] } + [["c"]])
        let r = try w.run("detector")
        #expect(r.status == 0, "\(r.stderr)")
        for id in ["a", "b"] {
            #expect(try String(contentsOfFile: w.out + "/count-\(id)", encoding: .utf8) == "run\n")
        }
    }
}

@Suite struct MultiCallTests {
    @Test func aLinkNamedAfterThePhaseRunsThatPhase() throws {
        let w = try Workspace()
        try w.buildpack("a")
        try w.order([["a"]])
        let link = w.root + "/detector"
        #expect(symlink(lifecycleBinary, link) == 0)
        var env = ProcessInfo.processInfo.environment
        env["CNB_PLATFORM_API"] = "0.15"
        env["CNB_APP_DIR"] = w.app
        env["CNB_USER_ID"] = String(cnbUser)
        env["CNB_GROUP_ID"] = String(cnbUser)
        let r = try run([link, "-layers", w.layers, "-buildpacks", w.buildpacks, "-order", w.root + "/order.toml",
                         "-platform", w.platform], environment: env)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(ids(try w.group()) == ["a@1.0.0"])
    }

    @Test func unknownPhaseIsAUsageError() throws {
        let r = try run([lifecycleBinary, "deploy"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("unknown phase \"deploy\""))
        #expect(r.stderr.contains("analyzer, builder, creator, detector, exporter, extender, rebaser, restorer"))
    }
}

@Suite struct DetectorOutputTests {
    /// group.toml and plan.toml as written, byte for byte; flags are relative to the working
    /// directory (buildpacks run elsewhere, so the lifecycle must make them absolute).
    @Test func writesGroupAndPlanExactly() throws {
        let w = try Workspace()
        try w.buildpack("a", extra: "homepage = \"https://a.example\"")
        try w.buildpack("b", api: "0.11")
        try w.appFile("detect-plan-a@1.0.0.toml", "[[provides]]\nname = \"node\"\n")
        try w.appFile("detect-plan-b@1.0.0.toml", "[[requires]]\nname = \"node\"\n[requires.metadata]\nversion = \"20\"\nlaunch = true\n")
        try w.order([["a", "b"]])
        let r = try w.run("detector", ["-app", "app", "-layers", "layers", "-buildpacks", "buildpacks", "-order", "order.toml"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: w.layers + "/group.toml", encoding: .utf8) == """
            [[group]]
            api = "0.12"
            homepage = "https://a.example"
            id = "a"
            version = "1.0.0"

            [[group]]
            api = "0.11"
            id = "b"
            version = "1.0.0"

            """)
        #expect(try String(contentsOfFile: w.layers + "/plan.toml", encoding: .utf8) == """
            [[entries]]

            [[entries.providers]]
            id = "a"
            version = "1.0.0"

            [[entries.requires]]
            name = "node"

            [entries.requires.metadata]
            launch = true
            version = "20"

            """)
    }
}

import Buildpacks
import Foundation
import OCI
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The lifecycle as platforms and buildpacks written for the reference drive it: one test per
/// behaviour of issue "Interoperability", each of which Cairn got wrong before.
@Suite struct InteropTests {
    // MARK: Arguments, as Go's flag package reads them

    @Test func goStyleFlagsWithEmptyValuesAndFalseBooleansAreAccepted() throws {
        let w = try Workspace()
        try w.buildpack("a")
        try prepareBuild(w, [("a", "0.12")])
        // A fresh <layers> holding only group.toml: nothing to restore, and no error.
        let r = try w.run("restorer", ["-group=\(w.layers)/group.toml", "-layers=\(w.layers)", "-cache-dir=", "-cache-image=",
                                       "-skip-layers=false", "-log-level=debug", "-build-image="])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let b = try w.run("builder", ["--app", w.app, "-layers", w.layers, "-no-color"])
        #expect(b.status == 0, "\(b.stdout)\(b.stderr)")
    }

    @Test func usageErrorsExitInTheGenericRange() throws {
        let w = try Workspace()
        let unknown = try w.run("detector", ["-no-such-flag=1"])
        #expect(unknown.status == 3, "\(unknown.stderr)")
        #expect(unknown.stderr.contains("no-such-flag"), "\(unknown.stderr)")
        let stray = try w.run("detector", ["stray-argument"])
        #expect((1...10).contains(stray.status), "\(stray.status) \(stray.stderr)")
        let badBool = try w.run("restorer", ["-skip-layers=maybe"])
        #expect(badBool.status == 3 && badBool.stderr.contains("-skip-layers"), "\(badBool.stderr)")
    }

    @Test func platformAPIIsCheckedBeforeAnyOtherInput() throws {
        let w = try Workspace()
        let r = try w.run("exporter", ["-flag-from-the-future=x"], env: ["CNB_PLATFORM_API": "0.99"])
        #expect(r.status == 11, "\(r.stderr)")
        #expect(r.stderr.contains("0.99"), "\(r.stderr)")
    }

    // MARK: Buildpacks written for the reference

    @Test func detectAndBuildGetPositionalArgumentsAtEveryBuildpackAPI() throws {
        let w = try Workspace()
        try w.buildpack("modern", api: "0.12")
        try w.order([["modern"]])
        #expect(try w.run("detector").status == 0)
        let detect = try w.recordedEnv("detect", "modern@1.0.0")
        let args = detect["ARGS"]?.split(separator: " ").map(String.init) ?? []
        #expect(args.count == 2 && args[0] == w.platform && args[1] == detect["CNB_BUILD_PLAN_PATH"], "\(args)")
        #expect(try w.run("builder").status == 0)
        let build = try w.recordedEnv("build", "modern@1.0.0")
        #expect(build["ARGS"] == "\(w.layers)/modern \(w.platform) \(build["CNB_BP_PLAN_PATH"] ?? "?")")
    }

    @Test func aTopLevelVersionInRequiresIsAnError() throws {
        let w = try Workspace()
        try w.buildpack("a")
        try w.appFile("detect-plan-a@1.0.0.toml", """
            [[provides]]
            name = "node"
            [[requires]]
            name = "node"
            version = "20"
            """)
        try w.order([["a"]])
        let r = try w.run("detector")
        #expect(r.status == 21, "\(r.stdout)\(r.stderr)")
        #expect((r.stdout + r.stderr).contains("top-level \"version\""), "\(r.stdout)\(r.stderr)")
    }

    @Test func planTOMLAsPlatformMDDefinesItIsAccepted() throws {
        let w = try Workspace()
        try w.buildpack("a")
        try TOMLFile.write(GroupFile(group: [GroupElement(id: try BuildpackID("a"), version: "1.0.0", api: APIVersion(0, 12))]),
                           to: w.layers + "/group.toml")
        try writeFile(w.layers + "/plan.toml", """
            [[entries]]
              [[entries.providers]]
                id = "a"
                version = "1.0.0"
              [[entries.requires]]
                name = "node"
            """)
        let r = try w.run("builder")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: w.out + "/build-a@1.0.0-plan.toml", encoding: .utf8).contains("node"))
    }

    // MARK: The builder's checks and SBOM copies

    @Test func builderCopiesSBOMFilesWherePlatformMDListsThemAndRemovesStaleOnes() throws {
        let w = try Workspace()
        try w.buildpack("bp", extra: "sbom-formats = [\"application/vnd.cyclonedx+json\", \"application/spdx+json\"]")
        try w.appFile("build-bp@1.0.0.sh", #"""
            for l in run tools cached; do mkdir -p "$LAYERS/$l"; done
            printf '[types]\nlaunch = true\n' > "$LAYERS/run.toml"
            printf '[types]\nbuild = true\n' > "$LAYERS/tools.toml"
            printf '[types]\ncache = true\n' > "$LAYERS/cached.toml"
            for f in launch build run tools cached; do echo "{\"f\":\"$f\"}" > "$LAYERS/$f.sbom.cdx.json"; done
            echo '{}' > "$LAYERS/run.sbom.spdx.json"
            """#)
        try prepareBuild(w, [("bp", "0.12")])
        try writeFile(w.layers + "/sbom/launch/old_bp/sbom.cdx.json", "{}")
        let r = try w.run("builder")
        #expect(r.status == 0, "\(r.stderr)")
        let sbom = w.layers + "/sbom"
        for (path, content) in [("launch/bp/sbom.cdx.json", "launch"), ("build/bp/sbom.cdx.json", "build"),
                                ("launch/bp/run/sbom.cdx.json", "run"), ("build/bp/tools/sbom.cdx.json", "tools"),
                                ("build/bp/cached/sbom.cdx.json", "cached")] {
            let text = try? String(contentsOfFile: sbom + "/" + path, encoding: .utf8)
            #expect(text?.contains("\"\(content)\"") == true, "\(path): \(text ?? "missing")")
        }
        #expect(w.exists(sbom + "/launch/bp/run/sbom.spdx.json"))
        #expect(!w.exists(sbom + "/launch/old_bp"), "a stale <layers>/sbom is removed before building")
    }

    @Test(arguments: [
        // A format the buildpack did not declare in sbom-formats.
        ("echo '{}' > \"$LAYERS/launch.sbom.spdx.json\"", "0.12", "launch.sbom.spdx.json: SBOM format application/spdx+json is not declared"),
        // Buildpack API 0.9+: no `direct`, no string `command`.
        ("printf '[[processes]]\\ntype = \"web\"\\ncommand = [\"x\"]\\ndirect = true\\n' > \"$LAYERS/launch.toml\"", "0.12",
         "launch.toml: process \"web\": key \"direct\" is not allowed"),
        ("printf '[[processes]]\\ntype = \"web\"\\ncommand = \"x\"\\n' > \"$LAYERS/launch.toml\"", "0.9",
         "launch.toml: process \"web\": key \"command\" must be an array"),
        // Layer types outside [types].
        ("mkdir -p \"$LAYERS/x\"; printf 'launch = true\\n' > \"$LAYERS/x.toml\"", "0.12", "x.toml: key \"launch\" must be in the [types] table"),
    ])
    func buildpackOutputTheSpecForbidsFailsTheBuild(_ script: String, _ api: String, _ message: String) throws {
        let w = try Workspace()
        try w.buildpack("bp", api: api, extra: "sbom-formats = [\"application/vnd.cyclonedx+json\"]")
        try w.appFile("build-bp@1.0.0.sh", script + "\n")
        try prepareBuild(w, [("bp", api)])
        let r = try w.run("builder")
        #expect(r.status != 0)
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test func anOlderBuildpackMayStillUseAStringCommandAndDirect() throws {
        let w = try Workspace()
        try w.buildpack("old", api: "0.8")
        try w.appFile("build-old@1.0.0.sh", #"printf '[[processes]]\ntype = "web"\ncommand = "x y"\ndirect = false\n' > "$LAYERS/launch.toml""#)
        try prepareBuild(w, [("old", "0.8")])
        let r = try w.run("builder")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try w.metadata().processes.first?.direct == false)
    }
}

/// Behaviour that follows CNB_PLATFORM_API: stack.toml before 0.12, run.toml from 0.12; the
/// operator's build config from 0.12.
@Suite struct PlatformAPIVersionTests {
    func analyze(_ api: String, store: String, w: Workspace) throws -> (RunResult, String) {
        try writeFile(w.root + "/stack.toml", "[run-image]\nimage = \"tiny/run:latest\"\nmirrors = [\"mirror.example/tiny/run\"]\n")
        try writeFile(w.root + "/run.toml", "[[images]]\nimage = \"tiny/run:latest\"\nmirrors = [\"from-run-toml.example/run\"]\n")
        let r = try w.run("analyzer", ["-store=\(store)", "-stack=\(w.root)/stack.toml", "-run=\(w.root)/run.toml",
                                       "-layers=\(w.layers)", "app"], env: ["CNB_PLATFORM_API": api])
        return (r, (try? String(contentsOfFile: w.layers + "/analyzed.toml", encoding: .utf8)) ?? "")
    }

    @Test func theRunImageComesFromStackTOMLBefore012AndRunTOMLAfter() throws {
        let stack = try TinyStack.shared()
        let w = try Workspace()
        let store = w.root + "/store"
        _ = try sh("cp -a '\(stack.store)' '\(store)'")
        // Only stack.toml names the run image at 0.9: run.toml is not read.
        try writeFile(w.root + "/run.toml", "")
        let (old, oldAnalyzed) = try analyze("0.9", store: store, w: w)
        #expect(old.status == 0, "\(old.stderr)")
        #expect(oldAnalyzed.contains("tiny/run:latest"), "\(oldAnalyzed)")
        let (new, newAnalyzed) = try analyze("0.12", store: store, w: w)
        #expect(new.status == 0 && newAnalyzed.contains("tiny/run:latest"), "\(new.stderr)")
        try writeFile(w.root + "/run.toml", "")
        let none = try w.run("analyzer", ["-store=\(store)", "-run=\(w.root)/run.toml", "-stack=\(w.root)/stack.toml", "app"],
                             env: ["CNB_PLATFORM_API": "0.12"])
        #expect(none.status != 0 && none.stderr.contains("run.toml"), "stack.toml is not read from 0.12: \(none.stderr)")
    }

    @Test func aPreviousImageWithAnUnreadableLabelIsSaidNotSilentlyIgnored() throws {
        let stack = try TinyStack.shared()
        let w = try Workspace()
        let store = w.root + "/store"
        _ = try sh("cp -a '\(stack.store)' '\(store)'")
        let s = try ImageStore(root: store)
        let run = try s.resolve(TinyStack.runImage)
        _ = try s.beginWriteSession().commitImage(base: run, layers: [], history: [], created: run.config.created ?? "", reference: "app") {
            $0.config?.labels?[CNBLabel.lifecycleMetadata] = "{not json"
        }
        try writeFile(w.root + "/run.toml", "[[images]]\nimage = \"tiny/run:latest\"\n")
        let r = try w.run("analyzer", ["-store=\(store)", "-run=\(w.root)/run.toml", "-layers=\(w.layers)", "app"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect((r.stdout + r.stderr).contains("previous image app: label \(CNBLabel.lifecycleMetadata) is not valid JSON"), "\(r.stdout)\(r.stderr)")
    }

    /// Platform API 0.11 brought `/cnb/build-config/env`; the reference applies it at every
    /// version (Tests/DifferentialTests, platform-env-and-build-config), and so does Cairn.
    @Test func buildConfigEnvironmentAppliesAtEveryPlatformAPI() throws {
        for (api, expected) in [("0.7", "operator" as String?), ("0.11", "operator"), ("0.12", "operator")] {
            let w = try Workspace()
            try w.buildpack("bp")
            try writeFile(w.buildConfig + "/env/OPERATOR_SETTING", "operator")
            try prepareBuild(w, [("bp", "0.12")])
            let r = try w.run("builder", env: ["CNB_PLATFORM_API": api])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try w.recordedEnv("build", "bp@1.0.0")["OPERATOR_SETTING"] == expected, "Platform API \(api)")
        }
    }
}

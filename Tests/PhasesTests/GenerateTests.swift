import Buildpacks
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The detector's generate step (image_extension.md, Phase: Generation; platform.md, detector),
/// driven through the real `lifecycle detector` with fixture extensions.
@Suite struct GenerateTests {
    /// web requires curl (from ext-curl), base (from ext-switch) and python (itself).
    func workspace() throws -> Workspace {
        let w = try Workspace()
        try w.buildpack("web")
        try w.appFile("detect-plan-web@1.0.0.toml", """
            [[provides]]
            name = "python"
            [[requires]]
            name = "python"
            [[requires]]
            name = "curl"
            [requires.metadata]
            version = "8"
            [[requires]]
            name = "base"
            """)
        try w.imageExtension("ext-curl", generate: true)
        try w.appFile("detect-plan-ext-curl@1.0.0.toml", "[[provides]]\nname = \"curl\"\n")
        try w.imageExtension("ext-switch", generate: true)
        try w.appFile("detect-plan-ext-switch@1.0.0.toml", "[[provides]]\nname = \"base\"\n")
        try w.order([["web"]], extensions: [["ext-curl", "ext-switch"]])
        try writeFile(w.layers + "/analyzed.toml", """
            [run-image]
            image = "tiny/run"
            reference = "tiny/run@sha256:\(String(repeating: "a", count: 64))"
            [run-image.target]
            os = "linux"
            arch = "amd64"
            """)
        try writeFile(w.root + "/run.toml", "[[images]]\nimage = \"tiny/run\"\n")
        return w
    }

    func generates(_ w: Workspace, _ ext: String, _ files: [String: String]) throws {
        for (name, text) in files { try writeFile("\(w.app)/generate-\(ext)@1.0.0/\(name)", text) }
    }

    func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    @Test func dockerfilesArePlacedAndTheLastSwitchChoosesTheRunImage() throws {
        let w = try workspace()
        try generates(w, "ext-curl", [
            "build.Dockerfile": "ARG base_image\nFROM ${base_image}\nRUN echo build > /curl\n",
            "run.Dockerfile": "ARG base_image\nFROM ${base_image}\nRUN echo run > /curl\n",
            "extend-config.toml": "[[build.args]]\nname = \"CURL_VERSION\"\nvalue = \"8\"\n",
        ])
        try generates(w, "ext-switch", [
            "run.Dockerfile": "# switch the base\nFROM registry.example/run:v2 AS run\n",
            "context.run/marker": "x",
        ])
        let r = try w.run("detector", ["-run", w.root + "/run.toml"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("Running generate for extension ext-curl@1.0.0"))

        // Platform API >= 0.13: <generated>/<id>/ holds what each extension wrote.
        let gen = w.layers + "/generated"
        #expect(try read(gen + "/ext-curl/build.Dockerfile").contains("RUN echo build"))
        #expect(try read(gen + "/ext-curl/extend-config.toml").contains("CURL_VERSION"))
        #expect(w.exists(gen + "/ext-switch/context.run/marker"))
        // ext-curl's run.Dockerfile comes before the switch: it has no effect and is set aside.
        #expect(w.exists(gen + "/ext-curl/run.Dockerfile.ignore"))
        #expect(!w.exists(gen + "/ext-curl/run.Dockerfile"))
        #expect(w.exists(gen + "/ext-switch/run.Dockerfile"))

        let analyzed = try w.analyzed()
        #expect(analyzed.runImage?.image == "registry.example/run:v2")
        #expect(analyzed.runImage?.reference == nil, "reference is cleared: it named the old run image")
        #expect(analyzed.runImage?.target == nil, "target is cleared")
        #expect(analyzed.runImage?.extend == false, "the switching Dockerfile only chooses the image")
        #expect(analyzed.buildImage?.extend == true)
        #expect(r.stderr.contains("registry.example/run:v2 chosen by extension ext-switch is not listed in \(w.root)/run.toml"),
                "\(r.stderr)")

        // Entries extensions provide go to the extensions; buildpacks get the rest.
        #expect(try w.plan().entries.map { $0.requires.map(\.name) } == [["python"]])
        let curlPlan = try TOMLFile.read(BuildpackPlan.self, from: w.out + "/generate-ext-curl@1.0.0.plan")
        #expect(curlPlan.entries.map(\.name) == ["curl"])
        #expect(curlPlan.entries.first?.metadata?["version"] == .string("8"))

        let env = try w.recordedEnv("generate", "ext-curl@1.0.0")
        #expect(env["CNB_OUTPUT_DIR"] == gen + "/ext-curl")
        #expect(env["CNB_EXTENSION_DIR"] == w.extensions + "/ext-curl/1.0.0")
        #expect(env["CNB_PLATFORM_DIR"] == w.platform)
        #expect(env["CNB_TARGET_OS"] == "linux")
        #expect(env["PWD"] == w.app)
        // Positional arguments, as the reference passes them: output dir, platform, plan.
        #expect(env["ARGS"] == "\(gen)/ext-curl \(w.platform) \(env["CNB_BP_PLAN_PATH"] ?? "?")")
        if geteuid() == 0 { #expect(env["UID"] == String(cnbUser)) }
        #expect(env["CNB_LAYERS_DIR"] == nil)
    }

    @Test func runDockerfilesFromTheBaseImageExtendTheOriginalRunImage() throws {
        let w = try workspace()
        try generates(w, "ext-curl", ["run.Dockerfile": "ARG base_image\nFROM ${base_image}\nUSER root\nRUN true\nUSER 1001\n"])
        try generates(w, "ext-switch", ["run.Dockerfile": "ARG base_image\nFROM $base_image\nLABEL io.buildpacks.rebasable=true\n"])
        let r = try w.run("detector")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let analyzed = try w.analyzed()
        #expect(analyzed.runImage?.image == "tiny/run")
        #expect(analyzed.runImage?.reference?.hasPrefix("tiny/run@sha256:") == true)
        #expect(analyzed.runImage?.target?.os == "linux")
        #expect(analyzed.runImage?.extend == true)
        #expect(analyzed.buildImage?.extend == false)
        #expect(w.exists(w.layers + "/generated/ext-curl/run.Dockerfile"))
    }

    @Test func aSwitchFollowedByAnExtensionExtendsTheNewRunImage() throws {
        let w = try workspace()
        try generates(w, "ext-curl", ["run.Dockerfile": "FROM --platform=linux/amd64 other/run:1\n"])
        try generates(w, "ext-switch", ["run.Dockerfile": "ARG base_image\nFROM ${base_image}\nRUN true\n"])
        let r = try w.run("detector")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let analyzed = try w.analyzed()
        #expect(analyzed.runImage?.image == "other/run:1")
        #expect(analyzed.runImage?.extend == true)
    }

    @Test func legacyPlatformAPIPlacesDockerfilesByKind() throws {
        let w = try workspace()
        try generates(w, "ext-curl", [
            "build.Dockerfile": "ARG base_image\nFROM ${base_image}\n",
            "run.Dockerfile": "ARG base_image\nFROM ${base_image}\nRUN true\n",
            "extend-config.toml": "[[run.args]]\nname = \"A\"\nvalue = \"1\"\n",
        ])
        let r = try w.run("detector", env: ["CNB_PLATFORM_API": "0.12"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let gen = w.layers + "/generated"
        #expect(w.exists(gen + "/build/ext-curl/Dockerfile"))
        #expect(w.exists(gen + "/run/ext-curl/Dockerfile"))
        #expect(w.exists(gen + "/run/ext-curl/extend-config.toml"))
        #expect(!w.exists(gen + "/ext-curl"), "the extension's output went to a temp dir, not <generated>/<id>")
    }

    @Test func anExtensionWithoutBinGenerateUsesItsGenerateDirectory() throws {
        let w = try workspace()
        try FileManager.default.removeItem(atPath: w.extensions + "/ext-switch/1.0.0/bin/generate")
        try writeFile(w.extensions + "/ext-switch/1.0.0/generate/run.Dockerfile", "FROM prepared/run\n")
        let r = try w.run("detector")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(try w.analyzed().runImage?.image == "prepared/run")
        #expect(w.exists(w.layers + "/generated/ext-switch/run.Dockerfile"))
    }

    @Test func aFailingGenerateExits91() throws {
        let w = try workspace()
        try w.appFile("generate-exit-ext-switch@1.0.0", "7")
        let r = try w.run("detector")
        #expect(r.status == 91, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("image extension ext-switch@1.0.0 failed: bin/generate exited with status 7"), "\(r.stderr)")
        #expect(r.stdout.contains("generate output of ext-switch"), "the extension's own output is shown")
    }

    @Test(arguments: [
        ("build.Dockerfile", "FROM ${base_image}\n", "build.Dockerfile: key \"line 1\": a build.Dockerfile must begin with \"ARG base_image\""),
        ("build.Dockerfile", "ARG base_image\nFROM ubuntu\n", "build.Dockerfile: key \"line 2\": a build.Dockerfile must build FROM ${base_image}"),
        ("run.Dockerfile", "FROM a\nRUN x\nFROM b\n", "run.Dockerfile: key \"line 3\": a run.Dockerfile must contain exactly one FROM"),
        ("run.Dockerfile", "RUN x\n", "a run.Dockerfile must contain one FROM"),
        ("extend-config.toml", "[[build.args]]\nname = \"A\"\n", "extend-config.toml: key \"build.args[0].value\""),
        ("x.sbom.cdx.json", "{}", "image extensions must not write SBOM files"),
    ])
    func invalidOutputExits92NamingTheFile(_ name: String, _ text: String, _ expected: String) throws {
        let w = try workspace()
        try generates(w, "ext-curl", [name: text])
        let r = try w.run("detector")
        #expect(r.status == 92, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains(expected), "\(r.stderr)")
    }

    @Test func aDockerfileThatIsASymlinkIsRefused() throws {
        let w = try workspace()
        try FileManager.default.createDirectory(atPath: "\(w.app)/generate-ext-curl@1.0.0", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(w.app)/generate-ext-curl@1.0.0/run.Dockerfile", withDestinationPath: "/etc/shadow")
        let r = try w.run("detector")
        #expect(r.status == 92, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("ext-curl/run.Dockerfile must be a regular file"), "\(r.stderr)")
    }

    @Test func unrecommendedInstructionsOnlyWarn() throws {
        let w = try workspace()
        try generates(w, "ext-curl", ["build.Dockerfile": "ARG base_image\nFROM ${base_image}\nEXPOSE 80\n"])
        let r = try w.run("detector")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("build.Dockerfile: line 3: EXPOSE is not recommended"), "\(r.stderr)")
    }

    /// As the reference creator: an order with image extensions is refused before anything
    /// runs, since the creator does not extend images.
    @Test func creatorRefusesAnOrderWithExtensions() throws {
        let stack = try TinyStack.shared()
        let c = try CreatorRun()
        let store = c.tmp.path + "/store"
        _ = try sh("cp -a '\(stack.store)' '\(store)'")
        // An extension that is not even installed: looking it up would fail the build.
        try writeFile(c.order, """
            [[order-extensions]]
            [[order-extensions.group]]
            id = "not-installed"
            version = "1.0.0"

            [[order]]
            [[order.group]]
            id = "examples/procfile"
            version = "0.1.0"
            """)
        let r = try c.create(["-store", store], image: "hello")
        #expect(r.status == 3, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("the creator does not apply image extensions"), "\(r.stderr)")
        #expect(!r.stdout.contains("ANALYZING"))
    }
}

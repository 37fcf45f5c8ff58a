import Buildpacks
import Foundation
import Testing

/// Decodes, re-encodes and decodes again: the value must survive.
func roundTrip<T: Codable & Equatable>(_ type: T.Type, _ toml: String, file: String = "test.toml") throws -> T {
    let value = try TOMLFile.decode(type, from: toml, file: file)
    let text = try TOMLFile.encode(value)
    let again = try TOMLFile.decode(type, from: text, file: "re-encoded")
    #expect(again == value, "re-encoded:\n\(text)")
    return value
}

@Suite struct APIVersionTests {
    @Test(arguments: [("0.12", "0.12"), ("1", "1.0"), ("0.7", "0.7"), ("10.20", "10.20")])
    func parses(_ input: String, _ printed: String) {
        #expect(APIVersion(input)?.description == printed)
    }

    @Test(arguments: ["", "0.", ".1", "a.b", "0.1.2", "-1.0", "0.1a", " 0.1"])
    func rejects(_ input: String) {
        #expect(APIVersion(input) == nil)
    }

    @Test func ordersAndGatesFeatures() {
        #expect(APIVersion(0, 9) < APIVersion(0, 10))
        #expect(APIVersion(1, 0) > APIVersion(0, 99))
        #expect(APIVersion(0, 12).supports(BuildpackFeature.execEnv))
        #expect(!APIVersion(0, 11).supports(BuildpackFeature.execEnv))
        #expect(SupportedAPIs.isSupported(buildpack: APIVersion(0, 7)))
        #expect(!SupportedAPIs.isSupported(buildpack: APIVersion(0, 6)))
        #expect(SupportedAPIs.isSupported(platform: APIVersion(0, 15)))
        #expect(!SupportedAPIs.isSupported(platform: APIVersion(0, 16)))
    }
}

@Suite struct SpecFileTests {
    @Test func buildpackTOML() throws {
        let bp = try roundTrip(BuildpackDescriptor.self, """
        api = "0.12"
        [buildpack]
        id = "example/node"
        name = "Node"
        version = "1.2.3"
        clear-env = true
        sbom-formats = ["application/vnd.cyclonedx+json"]
        [[buildpack.licenses]]
        type = "MIT"
        [[buildpack.exec-env]]
        name = "test"
        [[targets]]
        os = "linux"
        arch = "amd64"
        [[targets.distros]]
        name = "debian"
        version = "12"
        [metadata]
        nested = { a = 1, b = [true, false], c = 1.5 }
        """)
        #expect(bp.buildpack.id.value == "example/node")
        #expect(bp.buildpack.clearEnv)
        #expect(bp.targets.first?.distros?.first?.version == "12")
        #expect(bp.metadata?.table?["nested"]?.table?["a"] == .integer(1))
        #expect(bp.buildpack.execEnv?.map(\.name) == ["test"])
    }

    @Test func compositeBuildpackAndLegacyStacks() throws {
        let composite = try roundTrip(BuildpackDescriptor.self, """
        api = "0.7"
        [buildpack]
        id = "meta"
        version = "0.0.1"
        [[order]]
        [[order.group]]
        id = "a"
        version = "1.0.0"
        optional = true
        [[order.group]]
        id = "b"
        version = "1.0.0"
        """)
        #expect(composite.isComposite)
        #expect(composite.order?.first?.group.map(\.optional) == [true, false])
        let stacks = try TOMLFile.decode(BuildpackDescriptor.self, from: """
        api = "0.9"
        [buildpack]
        id = "old"
        version = "1.0.0"
        [[stacks]]
        id = "io.buildpacks.stacks.bionic"
        """, file: "buildpack.toml")
        #expect(stacks.effectiveTargets(hasBuildExecutable: true)
            == [Target(os: "linux", arch: "amd64", distros: [.init(name: "ubuntu", version: "18.04")])])
        let any = try TOMLFile.decode(BuildpackDescriptor.self, from: """
        api = "0.9"
        [buildpack]
        id = "any"
        version = "1.0.0"
        [[stacks]]
        id = "*"
        """, file: "buildpack.toml")
        #expect(any.effectiveTargets(hasBuildExecutable: true) == nil)
    }

    @Test func orderGroupPlanLaunchFiles() throws {
        let order = try roundTrip(OrderFile.self, """
        [[order]]
        [[order.group]]
        id = "a"
        version = "1"
        [[order-extensions]]
        [[order-extensions.group]]
        id = "ext"
        version = "2"
        """)
        #expect(order.orderExtensions?.first?.group.first?.id.value == "ext")
        _ = try roundTrip(GroupFile.self, """
        [[group]]
        id = "a"
        version = "1"
        api = "0.12"
        homepage = "https://example.com"
        [[group-extensions]]
        id = "ext"
        version = "2"
        api = "0.10"
        """)
        let plan = try roundTrip(BuildPlan.self, """
        [[provides]]
        name = "node"
        [[requires]]
        name = "node"
        [requires.metadata]
        version = "20"
        [[or]]
        [[or.provides]]
        name = "npm"
        """)
        #expect(plan.alternatives.count == 2)
        #expect(plan.requires.first?.metadata?["version"] == .string("20"))
        _ = try roundTrip(PlanFile.self, """
        [[entries]]
        [[entries.providers]]
        id = "a"
        version = "1"
        [[entries.requires]]
        name = "node"
        [entries.requires.metadata]
        launch = true
        """)
        let launch = try roundTrip(LaunchFile.self, """
        [[labels]]
        key = "k"
        value = "v"
        [[processes]]
        type = "web"
        command = ["node", "server.js"]
        args = ["--port", "8080"]
        default = true
        working-dir = "/workspace/app"
        exec-env = ["production"]
        [[slices]]
        paths = ["static/*"]
        """)
        #expect(launch.processes.first?.isDefault == true)
        // Buildpack API < 0.9: command is a string.
        let old = try TOMLFile.decode(LaunchFile.self, from: """
        [[processes]]
        type = "web"
        command = "node server.js"
        direct = false
        """, file: "launch.toml")
        #expect(old.processes.first?.command == ["node server.js"])
        #expect(old.processes.first?.direct == false)
    }

    @Test func platformFiles() throws {
        _ = try roundTrip(AnalyzedFile.self, """
        [image]
        reference = "registry.example.com/app@sha256:abc"
        [run-image]
        image = "run:latest"
        reference = "sha256:def"
        extend = false
        [run-image.target]
        os = "linux"
        arch = "amd64"
        [run-image.target.distro]
        name = "debian"
        version = "12"
        """)
        _ = try roundTrip(RunFile.self, """
        [[images]]
        image = "r.io/run"
        mirrors = ["m.io/run"]
        """)
        let system = try roundTrip(SystemFile.self, """
        [[system.pre.buildpacks]]
        id = "pre"
        version = "1"
        [[system.post.buildpacks]]
        id = "post"
        version = "1"
        optional = true
        """)
        #expect(system.pre.map(\.id.value) == ["pre"])
        #expect(system.post.first?.optional == true)
        _ = try roundTrip(ReportFile.self, """
        [image]
        tags = ["a:1"]
        digest = "sha256:x"
        manifest-size = 123
        """)
        _ = try roundTrip(LayerMetadataFile.self, """
        [types]
        launch = true
        cache = true
        [metadata]
        exec-env = ["test"]
        version = "1"
        """)
        _ = try roundTrip(BuildFile.self, "[[unmet]]\nname = \"x\"\n")
        _ = try roundTrip(StoreFile.self, "[metadata]\ncount = 3\n")
        _ = try roundTrip(BuildMetadataFile.self, """
        buildpack-default-process-type = "web"
        [[buildpacks]]
        id = "a"
        version = "1"
        api = "0.12"
        [[processes]]
        type = "web"
        command = ["run"]
        args = []
        direct = true
        buildpack-id = "a"
        exec-env = ["*"]
        [[slices]]
        paths = ["a"]
        """)
    }

    /// Malformed input: the error names the file and the key, and says what was expected.
    @Test(arguments: [
        ("buildpack.toml", "api = 0.12\n[buildpack]\nid = \"a\"\nversion = \"1\"\n", "buildpack.toml: key \"api\": expected a string"),
        ("buildpack.toml", "api = \"zero\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n", "buildpack.toml: key \"api\": \"zero\" is not an API version"),
        ("buildpack.toml", "api = \"0.12\"\n[buildpack]\nid = \"a b\"\nversion = \"1\"\n", "buildpack.toml: key \"buildpack.id\": \"a b\" may contain only"),
        ("buildpack.toml", "api = \"0.12\"\n[buildpack]\nid = \"app\"\nversion = \"1\"\n", "key \"buildpack.id\": \"app\" is reserved"),
        ("buildpack.toml", "api = \"0.12\"\n[buildpack]\nid = \"a\"\n", "buildpack.toml: key \"buildpack.version\": required key is missing"),
        ("buildpack.toml", "api = \"0.12\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\nsbom-formats = [\"text/plain\"]\n", "key \"buildpack.sbom-formats\": \"text/plain\" is not a supported SBOM media type"),
        ("launch.toml", "[[processes]]\ntype = \"web\"\ncommand = []\n", "launch.toml: key \"processes[0].command\": command must not be empty"),
        ("launch.toml", "[[processes]]\ntype = \"w b\"\ncommand = [\"x\"]\n", "launch.toml: key \"processes[0].type\""),
        ("launch.toml", "[[processes]]\ntype = \"w\"\ncommand = [\"x\"]\n[[processes]]\ntype = \"w\"\ncommand = [\"y\"]\n", "key \"processes[1].type\": process type \"w\" is declared twice"),
        ("order.toml", "[[order]]\n[[order.group]]\nversion = \"1\"\n", "order.toml: key \"order[0].group[0].id\": required key is missing"),
        ("group.toml", "[[group]]\nid = \"a\"\nversion = \"1\"\napi = \"x\"\n", "group.toml: key \"group[0].api\""),
        ("plan.toml", "[[entries]]\nproviders = 3\n", "plan.toml: key \"entries[0].providers\": expected an array"),
        ("layer.toml", "[types]\nlaunch = \"yes\"\n", "layer.toml: key \"types.launch\": expected a boolean"),
        ("syntax.toml", "a = \n", "syntax.toml:1:"),
        ("extension.toml", "api = \"0.12\"\n[extension]\nid = \"e\"\nversion = \"1\"\n[[order]]\n", "extension.toml: key \"order\": an image extension cannot have an order"),
        ("run.toml", "[[images]]\nmirrors = [\"m\"]\n", "run.toml: key \"images[0].image\": required key is missing"),
        ("system.toml", "[[system.pre.buildpacks]]\nid = \"x y\"\n", "system.toml: key \"system.pre.buildpacks[0].id\""),
        ("store.toml", "metadata = 3\n", "store.toml: key \"metadata\": expected a table"),
        ("build.toml", "[[unmet]]\nname = false\n", "build.toml: key \"unmet[0].name\": expected a string"),
        ("analyzed.toml", "[run-image.target]\nos = 1\n", "analyzed.toml: key \"run-image.target.os\": expected a string"),
        ("metadata.toml", "[[processes]]\ntype = \"web\"\ncommand = [\"x\"]\n", "metadata.toml: key \"processes[0].buildpack-id\": required key is missing"),
        ("report.toml", "[image]\ntags = \"a\"\n", "report.toml: key \"image.tags\": expected an array"),
        ("project.toml", "[_]\nschema-version = \"x\"\n", "project.toml: key \"_.schema-version\""),
    ])
    func malformedFilesNameFileAndKey(_ file: String, _ text: String, _ expected: String) {
        do {
            switch file {
            case "buildpack.toml": _ = try TOMLFile.decode(BuildpackDescriptor.self, from: text, file: file)
            case "launch.toml": _ = try TOMLFile.decode(LaunchFile.self, from: text, file: file)
            case "order.toml": _ = try TOMLFile.decode(OrderFile.self, from: text, file: file)
            case "group.toml": _ = try TOMLFile.decode(GroupFile.self, from: text, file: file)
            case "plan.toml": _ = try TOMLFile.decode(PlanFile.self, from: text, file: file)
            case "layer.toml": _ = try TOMLFile.decode(LayerMetadataFile.self, from: text, file: file)
            case "extension.toml": _ = try TOMLFile.decode(ExtensionDescriptor.self, from: text, file: file)
            case "run.toml": _ = try TOMLFile.decode(RunFile.self, from: text, file: file)
            case "system.toml": _ = try TOMLFile.decode(SystemFile.self, from: text, file: file)
            case "store.toml": _ = try TOMLFile.decode(StoreFile.self, from: text, file: file)
            case "build.toml": _ = try TOMLFile.decode(BuildFile.self, from: text, file: file)
            case "analyzed.toml": _ = try TOMLFile.decode(AnalyzedFile.self, from: text, file: file)
            case "metadata.toml": _ = try TOMLFile.decode(BuildMetadataFile.self, from: text, file: file)
            case "report.toml": _ = try TOMLFile.decode(ReportFile.self, from: text, file: file)
            case "project.toml": _ = try TOMLFile.decode(ProjectDescriptor.self, from: text, file: file)
            default: _ = try TOMLFile.decode(OrderFile.self, from: text, file: file)
            }
            Issue.record("\(file) was accepted")
        } catch {
            #expect("\(error)".contains(expected), "got: \(error)")
        }
    }

    @Test func writerQuotesAndOrders() throws {
        let text = try TOMLFile.encode(LaunchFile(labels: [.init(key: "a\"b", value: "line\nbreak")]))
        #expect(text == "processes = []\nslices = []\n\n[[labels]]\nkey = \"a\\\"b\"\nvalue = \"line\\nbreak\"\n")
    }
}

@Suite struct ProjectDescriptorTests {
    @Test func readsTheSpecExample() throws {
        let p = try roundTrip(ProjectDescriptor.self, """
        [_]
        id = "io.buildpacks.my-app"
        version = "0.1"
        schema-version = "0.2"
        [_.metadata]
        cdn = "https://cdn.example.com"
        [[_.metadata.assets]]
        url = "https://cdn.example.com/assets/foo.jar"
        buzz = ["a", "b", "c"]
        [io.buildpacks]
        builder = "cnbs/sample-builder:bionic"
        include = ["cmd/", "go.mod", "*.go"]
        [[io.buildpacks.group]]
        id = "io.buildpacks/java"
        version = "1.0"
        [[io.buildpacks.group]]
        id = "example/post-build"
          [io.buildpacks.group.script]
          api = "0.5"
          inline = "./post-build.sh"
        [[io.buildpacks.pre.group]]
        uri = "docker://example/pre"
        [[io.buildpacks.build.env]]
        name = "JAVA_OPTS"
        value = "-Xmx1g"
        """)
        #expect(p.project?.schemaVersion == APIVersion(0, 2))
        #expect(p.buildpacks?.builder == "cnbs/sample-builder:bionic")
        #expect(p.buildpacks?.group?.last?.script?.shell == "/bin/sh")
        #expect(p.buildpacks?.pre?.group.first?.uri == "docker://example/pre")
        #expect(p.buildpacks?.build?.env?.first?.value == "-Xmx1g")
    }

    @Test func readsTheLegacyForm() throws {
        // Schema 0.1 as pack still reads it: [project] and [build].
        let p = try TOMLFile.decode(ProjectDescriptor.self, from: """
            [project]
            id = "io.buildpacks.my-app"
            version = "0.1"
            [build]
            builder = "cnbs/sample-builder:bionic"
            exclude = ["secrets/", "*.log"]
            [[build.buildpacks]]
            id = "io.buildpacks/java"
            version = "1.0"
            [[build.buildpacks]]
            uri = "./local-buildpack"
            [[build.env]]
            name = "JAVA_OPTS"
            value = "-Xmx1g"
            """, file: "project.toml")
        let settings = try #require(try p.buildpacksSettings())
        #expect(settings.builder == "cnbs/sample-builder:bionic" && settings.exclude == ["secrets/", "*.log"] && settings.include == nil)
        #expect(settings.group?.map { $0.id ?? $0.uri ?? "" } == ["io.buildpacks/java", "./local-buildpack"])
        #expect(settings.build?.env?.first?.name == "JAVA_OPTS" && settings.build?.env?.first?.value == "-Xmx1g")
        let both = try TOMLFile.decode(ProjectDescriptor.self, from: "[build]\ninclude = [\"a\"]\nexclude = [\"b\"]\n", file: "project.toml")
        #expect(throws: ProjectDescriptorError.legacyIncludeAndExclude) { try both.buildpacksSettings() }
        // [io.buildpacks] wins over a [build] table beside it.
        let newer = try TOMLFile.decode(ProjectDescriptor.self, from: "[io.buildpacks]\nbuilder = \"new\"\n[build]\nbuilder = \"old\"\n", file: "project.toml")
        #expect(try newer.buildpacksSettings()?.builder == "new")
    }

    @Test func includeAndExcludeTogetherIsAnError() {
        #expect(throws: TOMLFileError.invalid(file: "project.toml", key: "io.buildpacks", message: "include and exclude are mutually exclusive")) {
            try TOMLFile.decode(ProjectDescriptor.self, from: "[io.buildpacks]\ninclude = [\"a\"]\nexclude = [\"b\"]\n", file: "project.toml")
        }
        #expect(throws: TOMLFileError.invalid(file: "project.toml", key: "io.buildpacks.group[0]", message: "give one of version, uri or script, not several")) {
            try TOMLFile.decode(ProjectDescriptor.self, from: "[[io.buildpacks.group]]\nid = \"a\"\nversion = \"1\"\nuri = \"x\"\n", file: "project.toml")
        }
    }
}

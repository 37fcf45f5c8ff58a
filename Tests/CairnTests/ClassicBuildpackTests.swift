import Foundation
import Testing
import TestSupport

/// Classic (Cloud Foundry / Heroku) buildpacks, written here, run through Cairn's shim with
/// `cairn build --buildpack DIR` on the example builder's tiny stack.
struct ClassicBuildpackTests {
    /// A classic buildpack directory from its bin/ scripts (bash bodies) and extra files.
    func classic(_ dir: String, _ scripts: [String: String], files: [String: String] = [:]) throws -> String {
        for (name, body) in scripts { try writeFile(dir + "/bin/" + name, "#!/usr/bin/env bash\nset -e\n" + body + "\n", mode: 0o755) }
        for (name, text) in files { try writeFile(dir + "/" + name, text) }
        return dir
    }

    /// A supply buildpack (index 0) and a final compile buildpack detected by a marker file.
    func supplyAndCompile(_ tmp: TempDir) throws -> (supply: String, compile: String) {
        let supply = try classic(tmp.sub("tools-buildpack"), [
            "supply": """
                deps="$3/$4"
                mkdir -p "$deps/bin" "$deps/env" "$deps/profile.d"
                printf '#!/usr/bin/env bash\\necho "greet-tool says $*"\\n' > "$deps/bin/greet-tool"
                chmod +x "$deps/bin/greet-tool"
                printf 'hello' > "$deps/env/GREETING"
                echo 'export TOOLS_PROFILE=sourced' > "$deps/profile.d/tools.sh"
                printf 'processes:\n- type: "tool"\n  command: "greet-tool from launch.yml"\n' > "$deps/launch.yml"
                echo "supplied into $deps"
                """,
        ], files: ["VERSION": "1.2.3\n", "manifest.yml": "language: tools\n"])
        let compile = try classic(tmp.sub("marker-buildpack"), [
            "detect": #"[ -f "$1/app.marker" ] && echo MarkerApp"#,
            "compile": """
                echo "compiling in $1 with cache $2 and env dir $3"
                greet-tool "at compile" > "$1/built.txt"
                echo "GREETING=$GREETING" >> "$1/built.txt"
                date +%s > "$2/last-build"
                """,
            "release": """
                cat <<'YAML'
                ---
                config_vars:
                  CONFIG_VAR: configured
                default_process_types:
                  web: cat built.txt; echo "profile=$TOOLS_PROFILE app=$APP_PROFILE var=$CONFIG_VAR deps=$DEPS_DIR"
                YAML
                """,
        ])
        return (supply, compile)
    }

    @Test func aSupplyAndAFinalCompileBuildpackBuildAndRun() throws {
        let b = try ExampleBuilder.shared()
        let tmp = TempDir("classic")
        let (supply, compile) = try supplyAndCompile(tmp)
        let app = tmp.sub("app")
        try writeFile(app + "/app.marker", "")
        try writeFile(app + "/.profile.d/app.sh", "export APP_PROFILE=yes\n")
        let r = try cairnAt(["build", "classic-app", "--path", app, "--builder", ExampleBuilder.name, "--buildpack", supply, "--buildpack", compile],
                            home: b.home)
        try #require(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("as classic/tools@1.2.3 (name from manifest.yml language, version from VERSION)"), "\(r.stderr)")
        #expect(r.stderr.contains("as classic/marker-buildpack@0.0.0 (name from the directory name, version from the default"), "\(r.stderr)")
        #expect(r.stdout.contains("---> classic/marker-buildpack detected: MarkerApp"), "the detected name is shown: \(r.stdout)")
        #expect(r.stdout.contains("---> classic/tools: supply (index 0)") && r.stdout.contains("---> classic/marker-buildpack: compile"))
        let ran = try cairnAt(["run", "classic-app"], home: b.home)
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stdout.contains("greet-tool says at compile"), "the compile saw the supply's deps on PATH: \(ran.stdout)")
        #expect(ran.stdout.contains("GREETING=hello"), "deps env/ is build env for later buildpacks: \(ran.stdout)")
        #expect(ran.stdout.contains("profile=sourced app=yes var=configured"), "profile.d scripts and config_vars at launch: \(ran.stdout)")
        let labels = execConfig(try inspectJSON("classic-app", home: b.home))["Labels"] as? [String: String] ?? [:]
        #expect(labels["io.buildpacks.rebasable"] == "true")
        let tool = try cairnAt(["run", "classic-app", "--process", "tool"], home: b.home)
        #expect(tool.stdout.contains("greet-tool says from launch.yml"), "a launch.yml process: \(tool.stdout)\n\(tool.stderr)")

        // Without the marker the final buildpack fails detection.
        let other = tmp.sub("other")
        try writeFile(other + "/README", "no marker\n")
        let failed = try cairnAt(["build", "classic-other", "--path", other, "--builder", ExampleBuilder.name, "--buildpack", supply,
                                  "--buildpack", compile], home: b.home)
        #expect(failed.status != 0)
        #expect((failed.stdout + failed.stderr).contains("fail: classic/marker-buildpack"), "\(failed.stdout)\n\(failed.stderr)")
    }

    @Test func aFinalizeBuildpackWithAProcfileAndAnExportFile() throws {
        let b = try ExampleBuilder.shared()
        let tmp = TempDir("classic-finalize")
        let first = try classic(tmp.sub("exporter"), [
            "supply": #"echo "supplied""#,
            "compile": "exit 1",
        ], files: ["export": "export FROM_EXPORT=exported\n"])
        let final = try classic(tmp.sub("finalizer"), [
            "supply": #"mkdir -p "$3/$4"; echo "final supply saw FROM_EXPORT=$FROM_EXPORT" | tee "$1/supply.txt""#,
            "finalize": #"echo 'export FINAL_PROFILE=from-finalize' > "$5/final.sh"; echo "finalized with index $4""#,
        ])
        let app = tmp.sub("app")
        try writeFile(app + "/Procfile", "web: cat supply.txt; echo \"final=$FINAL_PROFILE\"\n")
        let r = try cairnAt(["build", "finalized", "--path", app, "--builder", ExampleBuilder.name, "--buildpack", first, "--buildpack", final],
                            home: b.home)
        try #require(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("finalized with index 1"))
        let ran = try cairnAt(["run", "finalized"], home: b.home)
        #expect(ran.stdout.contains("final supply saw FROM_EXPORT=exported"), "\(ran.stdout)")
        #expect(ran.stdout.contains("final=from-finalize"), "\(ran.stdout)")
    }

    /// A classic buildpack as a tarball in builder.toml, beside a CNB buildpack directory.
    @Test func aClassicTarballInBuilderToml() throws {
        let tmp = TempDir("classic-builder")
        let home = tmp.sub("home")
        _ = try sh("mkdir -p '\(home)' && cp -a '\(try TinyStack.shared().store)' '\(home)/store'")
        let dir = try classic(tmp.sub("src/hello-classic"), [
            "detect": #"[ -f "$1/hello.txt" ] && echo Hello"#,
            "compile": #"tr a-z A-Z < "$1/hello.txt" > "$1/upper.txt""#,
            "release": "printf -- '---\\ndefault_process_types:\\n  web: cat upper.txt\\n'",
        ], files: ["VERSION": "2.0.0\n"])
        _ = try sh("tar -czf '\(tmp.path)/hello-classic.tgz' -C '\(tmp.path)/src' hello-classic")
        try writeFile(tmp.path + "/builder.toml", """
            [[buildpacks]]
            uri = "hello-classic.tgz"

            [[order]]
              [[order.group]]
              id = "classic/hello-classic"
              version = "2.0.0"

            [build]
            image = "tiny/build:latest"

            [[run.images]]
            image = "tiny/run:latest"
            """)
        _ = dir
        let made = try cairnAt(["builder", "create", "classic-builder", "--config", tmp.path + "/builder.toml"], home: home)
        try #require(made.status == 0, "\(made.stderr)")
        let app = tmp.sub("app")
        try writeFile(app + "/hello.txt", "hello from a tarball\n")
        let built = try cairnAt(["build", "upper", "--path", app, "--builder", "classic-builder"], home: home)
        try #require(built.status == 0, "\(built.stdout)\n\(built.stderr)")
        #expect(try cairnAt(["run", "upper"], home: home).stdout == "HELLO FROM A TARBALL\n")
    }

    @Test func aFailingCompileFailsTheBuildWithTheBuildpacksNameAndOutput() throws {
        let b = try ExampleBuilder.shared()
        let tmp = TempDir("classic-fail")
        let broken = try classic(tmp.sub("broken"), ["compile": #"echo "compile is about to fail"; exit 3"#])
        let app = tmp.sub("app")
        try writeFile(app + "/README", "x\n")
        let r = try cairnAt(["build", "broken", "--path", app, "--builder", ExampleBuilder.name, "--buildpack", broken], home: b.home)
        #expect(r.status != 0)
        #expect(r.stdout.contains("compile is about to fail"), "\(r.stdout)")
        #expect((r.stdout + r.stderr).contains("classic/broken@0.0.0"), "\(r.stdout)\n\(r.stderr)")
    }
}

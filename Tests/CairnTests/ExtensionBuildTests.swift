import Foundation
import OCI
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `cairn build` with a builder that has an image extension: phases one by one, build.Dockerfile
/// applied before the build, run.Dockerfile before the export, no daemon, no registry.
@Test(.enabled(if: geteuid() == 0 && toolAvailable("runc"), "applying Dockerfiles needs root and runc"))
func cairnBuildAppliesImageExtensions() throws {
    try requireStaticBinaries()
    let tmp = TempDir("ext-build")
    let home = tmp.sub("home")
    _ = try sh("mkdir -p '\(home)' && cp -a '\(try TinyStack.shared().store)' '\(home)/store'")
    try writeExtensionBuilderConfig(tmp.path + "/builder.toml")
    let made = try cairnAt(["builder", "create", "ext-builder", "--config", tmp.path + "/builder.toml"], home: home)
    try #require(made.status == 0, "\(made.stderr)")
    let app = tmp.sub("app")
    try writeFile(app + "/README", "an app\n")

    let first = try cairnAt(["build", "ext-app", "--path", app, "--builder", "ext-builder"], home: home)
    try #require(first.status == 0, "\(first.stdout)\n\(first.stderr)")
    #expect(first.stderr.contains("running the lifecycle phase by phase"), "\(first.stderr)")
    #expect(first.stdout.contains("ext-tool from build.Dockerfile: building as 1000"), "bin/build ran in the extended build image as the CNB user: \(first.stdout)")

    let ran = try cairnAt(["run", "ext-app"], home: home)
    #expect(ran.status == 0, "\(ran.stderr)")
    #expect(ran.stdout.contains("ext-tool from build.Dockerfile: at build time"))
    #expect(ran.stdout.contains("written by run.Dockerfile"), "RUN with an extend-config.toml arg: \(ran.stdout)")
    #expect(ran.stdout.contains("copied by run.Dockerfile"), "COPY from context.run: \(ran.stdout)")

    let inspected = try inspectJSON("ext-app", home: home)
    let labels = execConfig(inspected)["Labels"] as? [String: String] ?? [:]
    #expect(labels["io.buildpacks.rebasable"] == "true")
    let config = inspected["config"] as? [String: Any] ?? [:]
    let history = (config["history"] as? [[String: Any]] ?? []).compactMap { $0["created_by"] as? String }
    #expect(history.contains { $0.hasPrefix("Layer: 'RUN echo \"$greeting\"") && $0.hasSuffix("Created by extension: samples/tools") }, "\(history)")

    // A rebuild with unchanged extensions runs no RUN for the build image.
    let second = try cairnAt(["build", "ext-app", "--path", app, "--builder", "ext-builder"], home: home)
    try #require(second.status == 0, "\(second.stdout)\n\(second.stderr)")
    #expect(second.stderr.contains("Reusing the extended build image"), "\(second.stderr)")
    #expect(!second.stderr.contains("Applying build.Dockerfile"), "\(second.stderr)")

    // A changed app file does not invalidate them: the build.Dockerfile does not read the
    // context (the app), the run.Dockerfile's context (context.run) is unchanged.
    try writeFile(app + "/README", "an app, changed\n")
    let third = try cairnAt(["build", "ext-app", "--path", app, "--builder", "ext-builder"], home: home)
    try #require(third.status == 0, "\(third.stdout)\n\(third.stderr)")
    #expect(third.stderr.contains("Reusing the extended build image") && third.stderr.contains("Reusing the extended run image"), "\(third.stderr)")
}

/// builder.toml of a tiny-stack builder with the uses-tool buildpack and the tools extension.
func writeExtensionBuilderConfig(_ path: String) throws {
    try writeFile(path, """
        [[buildpacks]]
        uri = "\(fixturesRoot)/buildpacks/uses-tool"

        [[extensions]]
        uri = "\(fixturesRoot)/extensions/tools"

        [[order]]
          [[order.group]]
          id = "samples/uses-tool"
          version = "0.0.1"

        [[order-extensions]]
          [[order-extensions.group]]
          id = "samples/tools"
          version = "0.0.1"

        [build]
        image = "tiny/build:latest"

        [[run.images]]
        image = "tiny/run:latest"
        """)
}

/// The extender as a platform drives it: each phase a separate process in a fresh sandbox,
/// `extender -kind build` as root in a writable container of the build image (it then runs the
/// build), `extender -kind run` as root in a writable container of the run image with the
/// lifecycle mounted, then the exporter in the build image.
@Test(.enabled(if: geteuid() == 0, "the extender runs as root"))
func extenderDrivenAsAPlatformDrivesIt() throws {
    try requireStaticBinaries()
    let tmp = TempDir("extender-phases")
    let home = tmp.sub("home")
    let store = home + "/store"
    _ = try sh("mkdir -p '\(home)' && cp -a '\(try TinyStack.shared().store)' '\(store)'")
    try writeExtensionBuilderConfig(tmp.path + "/builder.toml")
    let made = try cairnAt(["builder", "create", "ext-builder", "--config", tmp.path + "/builder.toml", "--quiet"], home: home)
    try #require(made.status == 0, "\(made.stderr)")
    let builderRoot = tmp.sub("builder-root")
    let runRoot = tmp.sub("run-root")
    try unpackImage("ext-builder:latest", store: store, to: builderRoot)
    try unpackImage("tiny/run:latest", store: store, to: runRoot)
    _ = try sh("mkdir -p '\(builderRoot)/store' '\(builderRoot)/workspace' '\(builderRoot)/layers' '\(builderRoot)/platform'")
    let (layers, workspace, platform) = (tmp.sub("layers"), tmp.sub("workspace"), tmp.sub("platform"))
    try writeFile(workspace + "/README", "an app\n")
    _ = try sh("chown -R 1000:1000 '\(layers)' '\(workspace)'")

    func phase(_ root: String, writable: Bool, _ args: [String], lifecycle: String? = nil) throws -> RunResult {
        var command = ["bwrap", writable ? "--bind" : "--ro-bind", root, "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                       "--bind", layers, "/layers", "--bind", workspace, "/workspace", "--ro-bind", platform, "/platform",
                       "--bind", store, "/store", "--unshare-pid", "--die-with-parent", "--clearenv"]
        if let lifecycle { command += ["--ro-bind", lifecycle, "/cnb/lifecycle"] }
        let env = ["CNB_PLATFORM_API": "0.13", "CNB_USER_ID": "1000", "CNB_GROUP_ID": "1000",
                   "PATH": "/usr/local/bin:/usr/bin:/bin", "CNB_CAIRN_STORE": "/store"]
        for (k, v) in env.sorted(by: { $0.key < $1.key }) { command += ["--setenv", k, v] }
        command += ["--chdir", "/workspace", "--"] + args
        return try run(command)
    }
    // The extender's containers are writable copies: it changes them in place.
    let buildContainer = tmp.path + "/build-container"
    _ = try sh("cp -a '\(builderRoot)' '\(buildContainer)'")
    _ = try sh("mkdir -p '\(runRoot)/cnb/lifecycle' '\(runRoot)/layers' '\(runRoot)/workspace' '\(runRoot)/platform' '\(runRoot)/store'")
    var output = ""
    let steps: [(String, Bool, [String], String?)] = [
        (builderRoot, false, ["/cnb/lifecycle/analyzer", "-layers=/layers", "-run-image=tiny/run:latest", "-uid=1000", "-gid=1000", "ext-app"], nil),
        (builderRoot, false, ["/cnb/lifecycle/detector", "-app=/workspace", "-layers=/layers"], nil),
        (builderRoot, false, ["/cnb/lifecycle/restorer", "-layers=/layers", "-uid=1000", "-gid=1000"], nil),
        (buildContainer, true, ["/cnb/lifecycle/extender", "-kind=build", "-app=/workspace", "-layers=/layers", "-uid=1000", "-gid=1000"], nil),
        (runRoot, true, ["/cnb/lifecycle/extender", "-kind=run", "-app=/workspace", "-layers=/layers"], builderRoot + "/cnb/lifecycle"),
        (builderRoot, false, ["/cnb/lifecycle/exporter", "-app=/workspace", "-layers=/layers", "-uid=1000", "-gid=1000", "ext-app"], nil),
    ]
    for (root, writable, args, lifecycle) in steps {
        let r = try phase(root, writable: writable, args, lifecycle: lifecycle)
        output += "== \(args[0])\n\(r.stdout)\(r.stderr)"
        try #require(r.status == 0, "\(args[0]) exited \(r.status):\n\(output)")
    }
    #expect(output.contains("ext-tool from build.Dockerfile: building as 1000"), "\(output)")
    #expect(FileManager.default.fileExists(atPath: layers + "/extended/run/index.json"))
    #expect(FileManager.default.fileExists(atPath: buildContainer + "/usr/local/bin/ext-tool"))
    #expect(!FileManager.default.fileExists(atPath: builderRoot + "/usr/local/bin/ext-tool"), "the builder's own root is untouched")

    let ran = try cairnAt(["run", "ext-app"], home: home)
    #expect(ran.status == 0, "\(ran.stderr)")
    #expect(ran.stdout.contains("ext-tool from build.Dockerfile: at build time"), "\(ran.stdout)")
    #expect(ran.stdout.contains("written by run.Dockerfile"), "\(ran.stdout)")
    #expect(ran.stdout.contains("copied by run.Dockerfile"), "\(ran.stdout)")
    let labels = execConfig(try inspectJSON("ext-app", home: home))["Labels"] as? [String: String] ?? [:]
    #expect(labels["io.buildpacks.rebasable"] == "true")
}

func unpackImage(_ reference: String, store: String, to root: String) throws {
    let s = try ImageStore(root: store)
    let image = try s.resolve(reference)
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    for layer in image.manifest.layers {
        _ = try LayerExtractor.apply(blobPath: s.blobPath(layer.digest), to: root, layerName: layer.digest.short)
    }
}

/// examples/extensions/switch-run-image: a run.Dockerfile with only `FROM <image>` bases the app
/// image on that image (no extension layers), and the app image stays rebasable.
@Test(.enabled(if: geteuid() == 0, "cairn build with extensions runs as root"))
func anExtensionSwitchesTheRunImage() throws {
    try requireStaticBinaries()
    let tmp = TempDir("ext-switch")
    let home = tmp.sub("home")
    _ = try sh("mkdir -p '\(home)' && cp -a '\(try TinyStack.shared().store)' '\(home)/store'")
    // Another run image: the tiny one with a file of its own.
    try writeFile(tmp.path + "/alt/etc/alt-run-image", "the alternative run image\n")
    let imported = try cairnAt(["import", tmp.path + "/alt", "alt/run:latest", "--base", "tiny/run:latest"], home: home)
    try #require(imported.status == 0, "\(imported.stderr)")
    try writeFile(tmp.path + "/builder.toml", """
        [[buildpacks]]
        uri = "\(packageRoot)/examples/buildpacks/procfile"

        [[extensions]]
        uri = "\(packageRoot)/examples/extensions/switch-run-image"

        [[order]]
          [[order.group]]
          id = "examples/procfile"
          version = "0.1.0"

        [[order-extensions]]
          [[order-extensions.group]]
          id = "examples/switch-run-image"
          version = "0.1.0"
          optional = true

        [build]
        image = "tiny/build:latest"

        [[run.images]]
        image = "tiny/run:latest"

        [[run.images]]
        image = "alt/run:latest"
        """)
    let made = try cairnAt(["builder", "create", "switch-builder", "--config", tmp.path + "/builder.toml"], home: home)
    try #require(made.status == 0, "\(made.stderr)")
    let app = tmp.sub("app")
    try writeFile(app + "/Procfile", "web: cat /etc/alt-run-image\n")
    try writeFile(app + "/run-image.txt", "alt/run:latest\n")
    let built = try cairnAt(["build", "switched", "--path", app, "--builder", "switch-builder"], home: home)
    try #require(built.status == 0, "\(built.stdout)\n\(built.stderr)")
    let ran = try cairnAt(["run", "switched"], home: home)
    #expect(ran.stdout.contains("the alternative run image"), "\(ran.stdout)\n\(ran.stderr)")
    let labels = execConfig(try inspectJSON("switched", home: home))["Labels"] as? [String: String] ?? [:]
    #expect(labels["io.buildpacks.rebasable"] == "true", "a switch alone keeps the image rebasable")
    let metadata = try JSONSerialization.jsonObject(with: Data((labels["io.buildpacks.lifecycle.metadata"] ?? "{}").utf8)) as? [String: Any]
    #expect((metadata?["runImage"] as? [String: Any])?["image"] as? String == "alt/run:latest")

    // A run image the store does not have, in a registry (buildpacks/samples' curl extension
    // switches to `localhost:5000/run-image-curl`): pulled as pack pulls it, unless
    // --pull-policy never forbids it.
    let registry = try LocalRegistry()
    let remote = "\(registry.host)/run-image-alt:latest"
    let pushed = try cairnAt(["push", "alt/run:latest", remote, "--insecure-registry", registry.host], home: home)
    try #require(pushed.status == 0, "\(pushed.stderr)")
    try writeFile(app + "/run-image.txt", remote + "\n")
    let never = try cairnAt(["build", "from-registry", "--path", app, "--builder", "switch-builder", "--pull-policy", "never",
                             "--insecure-registry", registry.host], home: home)
    #expect(never.status != 0)
    #expect(never.stderr.contains("run image chosen by an image extension \(remote) is not in the store, and --pull-policy never forbids pulling it"),
            "\(never.stderr)")
    let pulled = try cairnAt(["build", "from-registry", "--path", app, "--builder", "switch-builder",
                              "--insecure-registry", registry.host], home: home)
    try #require(pulled.status == 0, "\(pulled.stdout)\n\(pulled.stderr)")
    #expect(try cairnAt(["run", "from-registry"], home: home).stdout.contains("the alternative run image"))

    // Without run-image.txt the extension does not apply: the builder's first run image.
    try FileManager.default.removeItem(atPath: app + "/run-image.txt")
    try writeFile(app + "/Procfile", "web: cat /etc/alt-run-image || echo no alt file\n")
    let plain = try cairnAt(["build", "plain", "--path", app, "--builder", "switch-builder"], home: home)
    try #require(plain.status == 0, "\(plain.stdout)\n\(plain.stderr)")
    #expect(try cairnAt(["run", "plain"], home: home).stdout.contains("no alt file"))
}

/// On a Debian stack, examples/extensions/apt-packages installs an Aptfile's package into the run
/// image with apt-get in a run.Dockerfile RUN; the app image runs it. Its layers are not declared
/// rebasable, so cairn rebase refuses and names the extension.
@Test(.enabled(if: geteuid() == 0 && toolAvailable("debootstrap"), "a Debian stack needs root and debootstrap"))
func aptPackagesExtensionOnADebianStack() throws {
    try requireStaticBinaries()
    let tmp = TempDir("ext-debian")
    let home = tmp.sub("home")
    _ = try sh("mkdir -p '\(home)' && cp -a '\(try DebianStack.shared().store)' '\(home)/store'")
    let made = try cairnAt(["builder", "create", "debian-builder", "--config", packageRoot + "/examples/builder-debian.toml"], home: home)
    try #require(made.status == 0, "\(made.stderr)")
    let built = try cairnAt(["build", "figlet", "--path", packageRoot + "/examples/apps/figlet", "--builder", "debian-builder"], home: home)
    try #require(built.status == 0, "\(built.stdout)\n\(built.stderr)")
    #expect(built.stdout.contains("Run image packages: figlet"), "\(built.stdout)")
    #expect(built.stdout.contains("fail: examples/switch-run-image@0.1.0 (extension)"), "an extension failing detect is left out")
    let ran = try cairnAt(["run", "figlet"], home: home)
    #expect(ran.status == 0, "\(ran.stderr)")
    #expect(ran.stdout.contains("| |__   ___| | |"), "figlet's 'hello' in the standard font: \(ran.stdout)")
    let labels = execConfig(try inspectJSON("figlet", home: home))["Labels"] as? [String: String] ?? [:]
    #expect(labels["io.buildpacks.rebasable"] == "false")
    let rebase = try cairnAt(["rebase", "figlet"], home: home)
    #expect(rebase.status != 0)
    #expect(rebase.stderr.contains("examples/apt-packages@0.1.0") && rebase.stderr.contains("not rebasable"), "\(rebase.stderr)")
}

/// `cairn extend`: a Dockerfile applied to an image in the store; a bad line is one error naming
/// the file, the line and the instruction, and nothing is stored.
@Test(.enabled(if: geteuid() == 0 && toolAvailable("runc"), "applying Dockerfiles needs root and runc"))
func cairnExtendAppliesADockerfile() throws {
    try requireStaticBinaries()
    let tmp = TempDir("cairn-extend")
    let home = tmp.sub("home")
    _ = try sh("mkdir -p '\(home)' && cp -a '\(try TinyStack.shared().store)' '\(home)/store'")
    try writeFile(tmp.path + "/ctx/notes.txt", "notes\n")
    try writeFile(tmp.path + "/ctx/run.Dockerfile", """
        ARG base_image
        FROM ${base_image}
        ARG who=nobody
        USER root
        RUN echo "hello $who" > /hello
        COPY notes.txt /opt/
        USER 1001:1001
        """)
    let r = try cairnAt(["extend", "tiny/run:latest", "--dockerfile", tmp.path + "/ctx/run.Dockerfile", "--build-arg", "who=cairn",
                         "--tag", "tiny-extended:1"], home: home)
    try #require(r.status == 0, "\(r.stderr)")
    let inspected = try inspectJSON("tiny-extended:1", home: home)
    let history = ((inspected["config"] as? [String: Any])?["history"] as? [[String: Any]] ?? []).compactMap { $0["created_by"] as? String }
    #expect(history.contains("Layer: 'RUN echo \"hello $who\" > /hello', Created by extension: cairn extend"), "\(history)")
    let ran = try cairnAt(["run", "tiny-extended:1", "--", "cat", "/hello", "/opt/notes.txt"], home: home)
    #expect(ran.stdout == "hello cairn\nnotes\n", "\(ran.stdout) \(ran.stderr)")

    // --sign: the extended image is signed and its provenance names the Dockerfile, the context,
    // the base image's digest, and the build-arg names without their values.
    _ = try cairnAt(["key", "generate", "--output-key-prefix", tmp.path + "/k"], home: home)
    let signed = try cairnAt(["extend", "tiny/run:latest", "--dockerfile", tmp.path + "/ctx/run.Dockerfile", "--build-arg", "who=s3cret-value",
                              "--tag", "tiny-extended:2", "--sign", "--key", tmp.path + "/k.key"], home: home)
    try #require(signed.status == 0, "\(signed.stderr)")
    let verified = try cairnAt(["verify", "tiny-extended:2", "--key", tmp.path + "/k.pub"], home: home)
    #expect(verified.status == 0 && verified.stdout.contains("https://slsa.dev/provenance/v1"), "\(verified.stdout)\(verified.stderr)")
    let digest = try storeDigest(home + "/store", "tiny-extended:2")
    let statement = try run(["python3", "-c", attestationReader, home + "/store", "tiny-extended:sha256-\(digest.dropFirst(7)).att"]).stdout
    #expect(statement.contains("extend/v1") && statement.contains("\"who\"") && !statement.contains("s3cret-value"), "\(statement)")

    try writeFile(tmp.path + "/ctx/bad.Dockerfile", "ARG base_image\nFROM ${base_image}\nHEALTHCHECK CMD true\n")
    let bad = try cairnAt(["extend", "tiny/run:latest", "--dockerfile", tmp.path + "/ctx/bad.Dockerfile", "--tag", "bad:1"], home: home)
    #expect(bad.status != 0)
    #expect(bad.stderr.contains("bad.Dockerfile:3: HEALTHCHECK: not allowed"), "\(bad.stderr)")
    #expect(try cairnAt(["inspect", "bad:1"], home: home).status != 0)
}

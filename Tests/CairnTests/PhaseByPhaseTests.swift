import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The CNB user of the tiny stack's build image.
let buildUser = 1000

func canRunPhasesAsUser() -> Bool {
    guard getuid() == 0, toolAvailable("setpriv"), toolAvailable("bwrap"), toolAvailable("umoci") else { return false }
    let probe = try? run(["setpriv", "--reuid=\(buildUser)", "--regid=\(buildUser)", "--clear-groups",
                          "bwrap", "--ro-bind", "/", "/", "--unshare-user", "--uid", "\(buildUser)", "--", "/bin/true"])
    return probe?.status == 0
}

/// A platform that drives the lifecycle as Tekton's `buildpacks-phases` task and kpack's build
/// pod do: every phase a separate process in a fresh container of the builder image sharing only
/// `/layers`, `/workspace`, `/platform` and the cache volume; Go-style `-flag=value` arguments,
/// empty values included; detector and builder as the build image's user, the others as root.
final class PhasePlatform {
    let tmp = TempDir("phases")
    let home: String
    let rootfs: String
    let cache: String
    let platform: String
    let registry: LocalRegistry
    var environment: [String: String] = [:]

    init(builderConfig: String, builder: String) throws {
        try requireStaticBinaries()
        let stack = try TinyStack.shared()
        chmod(tmp.path, 0o755)
        home = tmp.path + "/home"
        _ = try sh("mkdir -p '\(home)' && cp -a '\(stack.store)' '\(home)/store'")
        let made = try cairnAt(["builder", "create", builder, "--config", builderConfig, "--quiet"], home: home)
        guard made.status == 0 else { throw TestSupportError("builder create: \(made.stderr)") }
        registry = try LocalRegistry()
        // The container's root: the builder image, unpacked by an independent tool.
        rootfs = tmp.sub("bundle") + "/rootfs"
        let unpack = try run(["umoci", "raw", "unpack", "--image", "\(home)/store:\(builder):latest", rootfs])
        guard unpack.status == 0 else { throw TestSupportError("umoci raw unpack: \(unpack.stderr)") }
        try FileManager.default.createDirectory(atPath: rootfs + "/cache", withIntermediateDirectories: true)
        cache = tmp.sub("cache")
        platform = tmp.sub("platform")
        try FileManager.default.createDirectory(atPath: platform + "/env", withIntermediateDirectories: true)
        chown(cache, uid_t(buildUser), gid_t(buildUser))
        // The builder image's Env (the tiny stack's), plus what the Tekton task sets.
        environment = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/home/cnb",
                       "CNB_USER_ID": "\(buildUser)", "CNB_GROUP_ID": "\(buildUser)",
                       "CNB_PLATFORM_API": "0.13", "CNB_INSECURE_REGISTRIES": registry.host]
    }

    func cairn(_ args: [String]) throws -> RunResult {
        try cairnAt(args + ["--insecure-registry", registry.host], home: home)
    }

    /// Runs one phase in a fresh sandbox over the builder's root: nothing survives but the volumes.
    func phase(_ name: String, _ args: [String], layers: String, workspace: String, asUser: Bool) throws -> RunResult {
        try run(phaseCommand(name, args, layers: layers, workspace: workspace, asUser: asUser))
    }

    /// The command line that runs one phase in a fresh sandbox.
    func phaseCommand(_ name: String, _ args: [String], layers: String, workspace: String, asUser: Bool) -> [String] {
        var command: [String] = []
        if asUser { command += ["setpriv", "--reuid=\(buildUser)", "--regid=\(buildUser)", "--clear-groups"] }
        command += ["bwrap", "--ro-bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                    "--bind", layers, "/layers", "--bind", workspace, "/workspace", "--bind", cache, "/cache",
                    "--ro-bind", platform, "/platform", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--clearenv"]
        if asUser { command += ["--unshare-user", "--uid", "\(buildUser)", "--gid", "\(buildUser)"] }
        for (k, v) in environment.sorted(by: { $0.key < $1.key }) { command += ["--setenv", k, v] }
        return command + ["--chdir", "/workspace", "--", "/cnb/lifecycle/" + name] + args
    }

    /// One build as the Tekton task runs it, in a fresh `/layers`.
    func build(app: String, image: String, runImage: String, buildImage: String, processType: String) throws -> (layers: String, output: String) {
        let r = try build(app: app, image: image, runImage: runImage, buildImage: buildImage, processType: processType, through: "exporter")
        return (r.layers, r.output)
    }

    /// The phases up to and including `last`, in a fresh `/layers` and `/workspace`.
    func build(app: String, image: String, runImage: String, buildImage: String, processType: String,
               through last: String) throws -> (layers: String, workspace: String, output: String) {
        let layers = tmp.sub("layers-\(UUID().uuidString.prefix(8))")
        let workspace = tmp.sub("workspace-\(UUID().uuidString.prefix(8))")
        _ = try sh("cp -a '\(app)/.' '\(workspace)/' && chown -R \(buildUser):\(buildUser) '\(layers)' '\(workspace)'")
        var output = ""
        for (name, args, asUser) in Self.steps(image: image, runImage: runImage, buildImage: buildImage, processType: processType) {
            let r = try phase(name, args, layers: layers, workspace: workspace, asUser: asUser)
            output += "== \(name)\n\(r.stdout)\(r.stderr)"
            guard r.status == 0 else { throw TestSupportError("\(name) exited \(r.status):\n\(output)") }
            if name == last { break }
        }
        return (layers, workspace, output)
    }

    /// Each phase's name, arguments, and whether it runs as the build user (Tekton's task).
    static func steps(image: String, runImage: String, buildImage: String, processType: String) -> [(String, [String], Bool)] {
        [
            ("analyzer", ["-layers=/layers", "-run-image=\(runImage)", "-cache-image=", "-uid=\(buildUser)", "-gid=\(buildUser)",
                          "-skip-layers=false", "-tag=", image], false),
            ("detector", ["-app=/workspace", "-group=/layers/group.toml", "-plan=/layers/plan.toml"], true),
            ("restorer", ["-group=/layers/group.toml", "-layers=/layers", "-cache-dir=/cache", "-cache-image=",
                          "-uid=\(buildUser)", "-gid=\(buildUser)", "-skip-layers=false", "-build-image=\(buildImage)"], true),
            ("builder", ["-app=/workspace", "-layers=/layers", "-group=/layers/group.toml", "-plan=/layers/plan.toml"], true),
            ("exporter", ["-app=/workspace", "-layers=/layers", "-group=/layers/group.toml", "-cache-dir=/cache", "-cache-image=",
                          "-report=/layers/report.toml", "-process-type=\(processType)", "-uid=\(buildUser)", "-gid=\(buildUser)",
                          "-parallel=false", image], false),
        ]
    }
}

func classicBuilderConfig(_ dir: String) throws -> String {
    let path = dir + "/builder.toml"
    try writeFile(path, """
        [[buildpacks]]
        uri = "\(fixturesRoot)/buildpacks/classic"

        [[order]]
          [[order.group]]
          id = "samples/classic"
          version = "0.0.1"

        [build]
        image = "tiny/build:latest"

        [[run.images]]
        image = "tiny/run:latest"
        """)
    return path
}

/// At Platform API 0.13 (Tekton's task) and 0.9 (kpack).
@Test(.enabled(if: canRunPhasesAsUser(), "runs the phases as uid 1000 through setpriv and bubblewrap: needs root, setpriv, bwrap and umoci"), arguments: ["0.13", "0.9"])
func phasesDrivenOneContainerEachAsTektonDoes(platformAPI: String) throws {
    let configDir = TempDir("phases-config")
    let p = try PhasePlatform(builderConfig: try classicBuilderConfig(configDir.path), builder: "classic-builder")
    p.environment["CNB_PLATFORM_API"] = platformAPI
    let host = p.registry.host
    for (local, remote) in [("tiny/run:latest", "\(host)/tiny/run:latest"), ("classic-builder:latest", "\(host)/team/builder:latest")] {
        let push = try p.cairn(["push", local, remote])
        try #require(push.status == 0, "\(push.stderr)")
    }
    let app = configDir.sub("app")
    try writeFile(app + "/classic.txt", "hello classic\n")

    // The image name has no tag: it means :latest everywhere.
    let image = "\(host)/team/app"
    let first = try p.build(app: app, image: image, runImage: "\(host)/tiny/run", buildImage: "\(host)/team/builder", processType: "")
    #expect(first.output.contains("---> Classic buildpack: 'hello classic'"), "\(first.output)")
    #expect(first.output.contains("---> build number 1"), "\(first.output)")
    let group = try String(contentsOfFile: first.layers + "/group.toml", encoding: .utf8)
    #expect(!group.contains("optional"), "\(group)")
    let plan = try String(contentsOfFile: first.layers + "/plan.toml", encoding: .utf8)
    #expect(plan.contains("samples/classic") && !plan.contains("api"), "\(plan)")
    let analyzed = try String(contentsOfFile: first.layers + "/analyzed.toml", encoding: .utf8)
    if platformAPI == "0.13" {
        #expect(analyzed.contains("[build-image]") && analyzed.contains("\(host)/team/builder@sha256:"), "\(analyzed)")
    } else {
        #expect(!analyzed.contains("[build-image]"), "-build-image is recorded from Platform API 0.13: \(analyzed)")
    }
    // The builder copies SBOM files where platform.md lists them.
    #expect(FileManager.default.fileExists(atPath: first.layers + "/sbom/launch/samples_classic/greeting/sbom.cdx.json"))

    // A second build in a fresh /layers restores the cached layer.
    let second = try p.build(app: app, image: image, runImage: "\(host)/tiny/run", buildImage: "\(host)/team/builder", processType: "web")
    #expect(second.output.contains("---> build number 2"), "the cache was not restored:\n\(second.output)")

    // The registry holds the image under :latest; pulled and run, it is the second build.
    let pull = try p.cairn(["pull", "--quiet", image])
    try #require(pull.status == 0, "\(pull.stderr)")
    let ran = try cairnAt(["run", "\(image):latest"], home: p.home)
    #expect(ran.status == 0 && ran.stdout.contains("classic says: hello classic (build 2) from web"), "\(ran.stdout)\(ran.stderr)")
}

/// A buildpack written the classic way (`#!/usr/bin/env bash`, positional arguments) on a stack
/// made from a bare root filesystem that has no /proc, /dev, /sys or /tmp: it builds and runs.
@Test func classicBuildpackOnABareRootfsWithoutMountPoints() throws {
    try requireStaticBinaries()
    let stack = try TinyStack.shared()
    let tmp = TempDir("bare-rootfs")
    let home = tmp.sub("home")
    let bare = tmp.path + "/bare"
    let unpack = try run(["umoci", "raw", "unpack", "--image", "\(stack.store):\(TinyStack.runImage)", bare])
    try #require(unpack.status == 0, "\(unpack.stderr)")
    _ = try sh("rm -rf '\(bare)/proc' '\(bare)/dev' '\(bare)/sys' '\(bare)/tmp' '\(bare)/var/tmp'")
    #expect(!FileManager.default.fileExists(atPath: bare + "/proc"))
    let made = try cairnAt(["stack", "create", "bare", "--rootfs", bare, "--quiet"], home: home)
    try #require(made.status == 0, "\(made.stderr)")
    let config = tmp.path + "/builder.toml"
    try writeFile(config, """
        [[buildpacks]]
        uri = "\(fixturesRoot)/buildpacks/classic"
        [[order]]
          [[order.group]]
          id = "samples/classic"
          version = "0.0.1"
        [build]
        image = "bare/build:latest"
        [[run.images]]
        image = "bare/run:latest"
        """)
    let builder = try cairnAt(["builder", "create", "bare-builder", "--config", config, "--quiet"], home: home)
    try #require(builder.status == 0, "\(builder.stderr)")
    let app = tmp.sub("app")
    try writeFile(app + "/classic.txt", "no mount points\n")
    let built = try cairnAt(["build", "bare-app", "--path", app, "--builder", "bare-builder"], home: home)
    try #require(built.status == 0, "\(built.stdout)\(built.stderr)")
    #expect(built.stdout.contains("---> Classic buildpack: 'no mount points'"), "\(built.stdout)")
    for runtime in ["bwrap", "auto"] {
        let ran = try cairnAt(["run", "--runtime", runtime, "bare-app"], home: home)
        #expect(ran.status == 0 && ran.stdout.contains("classic says: no mount points (build 1) from web"),
                "\(runtime): \(ran.stdout)\(ran.stderr)")
    }
}

/// `cairn stack create --packages` gives a root where `#!/usr/bin/env bash` scripts run.
@Test func packagesStackHasUsrBinEnv() throws {
    let stack = try TinyStack.shared()
    let tmp = TempDir("env-check")
    let unpack = try run(["umoci", "raw", "unpack", "--image", "\(stack.store):\(TinyStack.buildImage)", tmp.path + "/root"])
    try #require(unpack.status == 0, "\(unpack.stderr)")
    let env = try FileManager.default.destinationOfSymbolicLink(atPath: tmp.path + "/root/usr/bin/env")
    #expect(env == "/bin/busybox", "\(env)")
}

/// `cairn build` drives a builder's lifecycle with platform.md's flags only: a builder whose
/// creator rejects anything else builds; `--lifecycle` runs another lifecycle instead of the
/// builder's; `--builder` pulls a builder the store lacks.
@Test func cairnBuildUsesAForeignBuildersLifecycleWithPlatformFlagsOnly() throws {
    try requireStaticBinaries()
    let stack = try TinyStack.shared()
    let tmp = TempDir("foreign-builder")
    let home = tmp.sub("home")
    _ = try sh("cp -a '\(stack.store)' '\(home)/store'")
    let made = try cairnAt(["builder", "create", "classic-builder", "--config", try classicBuilderConfig(tmp.path), "--quiet"], home: home)
    try #require(made.status == 0, "\(made.stderr)")
    let wrapped = try cairnAt(["import", fixturesRoot + "/lifecycle/strict-creator", "strict-builder", "--base", "classic-builder"], home: home)
    try #require(wrapped.status == 0, "\(wrapped.stderr)")
    let app = tmp.sub("app")
    try writeFile(app + "/classic.txt", "strict platform\n")

    let built = try cairnAt(["build", "strict-app", "--path", app, "--builder", "strict-builder"], home: home)
    #expect(built.status == 0, "\(built.stdout)\(built.stderr)")
    #expect(built.stderr.contains("strict creator: "), "the builder's own creator ran: \(built.stderr)")
    #expect(!built.stderr.contains("is not defined by platform.md"), "\(built.stderr)")
    let ran = try cairnAt(["run", "strict-app"], home: home)
    #expect(ran.stdout.contains("classic says: strict platform (build 1) from web"), "\(ran.stdout)\(ran.stderr)")

    // --lifecycle DIR: Cairn's lifecycle instead of the builder's.
    let dir = tmp.path + "/cairn-lifecycle"
    #expect(try cairnAt(["lifecycle", "install", dir], home: home).status == 0)
    let mine = try cairnAt(["build", "strict-app", "--path", app, "--builder", "strict-builder", "--lifecycle", dir], home: home)
    #expect(mine.status == 0, "\(mine.stdout)\(mine.stderr)")
    #expect(!mine.stderr.contains("strict creator: "), "\(mine.stderr)")
    #expect(mine.stdout.contains("---> build number 2"), "the cache and previous image carry over: \(mine.stdout)")

    // --lifecycle REF: a lifecycle image laid out like buildpacksio/lifecycle.
    let lifecycleImage = try cairnAt(["lifecycle", "image", "cairn/lifecycle:test"], home: home)
    try #require(lifecycleImage.status == 0, "\(lifecycleImage.stderr)")
    let inspect = try run(["skopeo", "inspect", "--config", "oci:\(home)/store:cairn/lifecycle:test"])
    #expect(inspect.stdout.contains("io.buildpacks.lifecycle.version") && inspect.stdout.contains("io.buildpacks.lifecycle.apis"), "\(inspect.stdout)")
    let byImage = try cairnAt(["build", "strict-app", "--path", app, "--builder", "strict-builder", "--lifecycle", "cairn/lifecycle:test"], home: home)
    #expect(byImage.status == 0 && !byImage.stderr.contains("strict creator: "), "\(byImage.stdout)\(byImage.stderr)")

    // --builder REF: pulled from its registry when the store lacks it.
    let registry = try LocalRegistry()
    let remote = "\(registry.host)/team/strict-builder:1"
    #expect(try cairnAt(["push", "strict-builder", remote, "--insecure-registry", registry.host], home: home).status == 0)
    let other = tmp.sub("other")
    _ = try sh("cp -a '\(stack.store)' '\(other)/store'")
    let pulled = try cairnAt(["build", "strict-app", "--path", app, "--builder", remote, "--insecure-registry", registry.host], home: other)
    #expect(pulled.status == 0, "\(pulled.stdout)\(pulled.stderr)")
    #expect(pulled.stderr.contains("strict creator: "), "\(pulled.stderr)")
}

/// Buildpackages as pack makes them: `cairn buildpack package` to the store and to a `.cnb`
/// file (pack's labels, checked by skopeo), a composite with its dependencies, builders that
/// reference them as an image and as a `.cnb`, and `cairn build --buildpack` with one.
@Test func buildpackageRoundTrip() throws {
    try requireStaticBinaries()
    let stack = try TinyStack.shared()
    let tmp = TempDir("buildpackage")
    let home = tmp.sub("home")
    _ = try sh("cp -a '\(stack.store)' '\(home)/store'")
    let classic = fixturesRoot + "/buildpacks/classic"
    let image = try cairnAt(["buildpack", "package", classic, "samples/classic-package:0.0.1"], home: home)
    try #require(image.status == 0, "\(image.stderr)")
    let cnb = tmp.path + "/classic.cnb"
    let file = try cairnAt(["buildpack", "package", classic, cnb, "--format", "file"], home: home)
    try #require(file.status == 0, "\(file.stderr)")
    for source in ["oci:\(home)/store:samples/classic-package:0.0.1", "oci-archive:\(cnb)"] {
        let inspect = try run(["skopeo", "inspect", "--config", source])
        try #require(inspect.status == 0, "\(source): \(inspect.stderr)")
        let labels = ((try JSONSerialization.jsonObject(with: inspect.stdoutData) as? [String: Any])?["config"] as? [String: Any])?["Labels"]
            as? [String: String] ?? [:]
        let metadata = try JSONSerialization.jsonObject(with: Data((labels["io.buildpacks.buildpackage.metadata"] ?? "{}").utf8)) as? [String: Any]
        #expect(metadata?["id"] as? String == "samples/classic" && metadata?["version"] as? String == "0.0.1", "\(labels)")
        let layers = try JSONSerialization.jsonObject(with: Data((labels["io.buildpacks.buildpack.layers"] ?? "{}").utf8)) as? [String: Any]
        let info = (layers?["samples/classic"] as? [String: Any])?["0.0.1"] as? [String: Any]
        #expect(info?["api"] as? String == "0.11" && (info?["layerDiffID"] as? String)?.hasPrefix("sha256:") == true, "\(labels)")
    }
    // The layer is the same whichever way it was packaged.
    let again = try cairnAt(["buildpack", "package", classic, "samples/classic-package:again", "--quiet"], home: home)
    #expect(again.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == image.stdout.split(separator: " ").last.map(String.init)?
        .trimmingCharacters(in: .whitespacesAndNewlines), "packaging is reproducible")

    // A composite whose dependency is the .cnb.
    let composite = tmp.sub("composite")
    try writeFile(composite + "/buildpack.toml", """
        api = "0.12"
        [buildpack]
        id = "samples/meta"
        version = "1.0.0"
        [[order]]
        [[order.group]]
        id = "samples/classic"
        version = "0.0.1"
        """)
    try writeFile(tmp.path + "/package.toml", "[buildpack]\nuri = \"composite\"\n\n[[dependencies]]\nuri = \"classic.cnb\"\n")
    let meta = try cairnAt(["buildpack", "package", "samples/meta-package", "--config", tmp.path + "/package.toml"], home: home)
    try #require(meta.status == 0, "\(meta.stderr)")

    // Builders referencing them: as an image (docker://), as a .cnb, as a composite package.
    let app = tmp.sub("app")
    try writeFile(app + "/classic.txt", "packaged\n")
    for (name, uri, id) in [("by-image", "docker://samples/classic-package:0.0.1", "samples/classic"), ("by-file", cnb, "samples/classic"),
                            ("by-composite", "samples/meta-package", "samples/meta")] {
        let config = tmp.path + "/\(name).toml"
        try writeFile(config, """
            [[buildpacks]]
            uri = "\(uri)"
            [[order]]
            [[order.group]]
            id = "\(id)"
            [build]
            image = "tiny/build:latest"
            [[run.images]]
            image = "tiny/run:latest"
            """)
        let builder = try cairnAt(["builder", "create", name, "--config", config, "--quiet"], home: home)
        try #require(builder.status == 0, "\(name): \(builder.stderr)")
        let built = try cairnAt(["build", "app-\(name)", "--path", app, "--builder", name], home: home)
        #expect(built.status == 0 && built.stdout.contains("---> Classic buildpack: 'packaged'"), "\(name): \(built.stdout)\(built.stderr)")
    }

    // cairn build --buildpack with a .cnb: the example builder does not have it.
    let made = try cairnAt(["builder", "create", "examples", "--config", packageRoot + "/examples/builder.toml", "--quiet"], home: home)
    try #require(made.status == 0, "\(made.stderr)")
    let withPackage = try cairnAt(["build", "app-flag", "--path", app, "--builder", "examples", "--buildpack", cnb], home: home)
    #expect(withPackage.status == 0 && withPackage.stdout.contains("---> Classic buildpack: 'packaged'"), "\(withPackage.stdout)\(withPackage.stderr)")
}

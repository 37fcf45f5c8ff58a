import CNBCore
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The image phases (analyzer, restorer, exporter, rebaser) driven as Tekton's phase task does,
/// on OCI layouts (`-layout`, Platform API 0.12+: older versions export only to a daemon or a
/// registry): a first build, a rebuild from the cache dir and the previous image, and a rebase
/// onto a newer run image. The app image is named `app`, a Docker Hub short name, so both
/// lifecycles must agree on where Docker Hub images live in a layout directory.
let imagePlatformAPIs = ["0.12", "0.13", "0.15"]

/// The run images, laid out once per test process: `tiny/run:latest` (the tiny stack) and
/// `tiny/run:2` (the same with one more layer) at their mapped paths, as the reference maps them.
enum RunImageLayouts {
    static let template: Result<String, TestSupportError> = {
        do {
            let stack = try TinyStack.shared()
            let dir = NSTemporaryDirectory() + "cairn-differential-layouts-\(getpid())"
            _ = try? sh("rm -rf '\(dir)'")
            let home = dir + "/home"
            _ = try sh("mkdir -p '\(home)' && cp -a '\(stack.store)' '\(home)/store'")
            try writeFile(dir + "/patch/etc/run-image-version", "2\n")
            let imported = try run([cairnBinary, "import", dir + "/patch", "tiny/run:2", "--base", TinyStack.runImage],
                                   environment: ["CAIRN_HOME": home, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
            guard imported.status == 0 else { throw TestSupportError("cairn import tiny/run:2: \(imported.stderr)") }
            for (ref, path) in [(TinyStack.runImage, "tiny/run/latest"), ("tiny/run:2", "tiny/run/2")] {
                let target = dir + "/layout/index.docker.io/" + path
                try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
                let copy = try run(["skopeo", "copy", "oci:\(home)/store:\(ref)", "oci:\(target):latest"])
                guard copy.status == 0 else { throw TestSupportError("skopeo copy \(ref): \(copy.stderr)") }
            }
            atexit { _ = try? sh("rm -rf '\(NSTemporaryDirectory())cairn-differential-layouts-\(getpid())'") }
            return .success(dir + "/layout")
        } catch let e as TestSupportError {
            return .failure(e)
        } catch {
            return .failure(TestSupportError("\(error)"))
        }
    }()

    static func path() throws -> String {
        switch template {
        case .success(let p): return p
        case .failure(let e): throw e
        }
    }
}

/// What the buildpacks of the image cases do: a launch layer with a tool and env, a cache-only
/// layer, a build+cache layer, processes, labels and SBOMs; the second build reuses what it can.
func imageInputs(_ r: CaseRoot) throws {
    try r.standardDirectories()
    for d in ["cache", "out2"] { try r.writable(d) }
    _ = try sh("cp -a '\(try RunImageLayouts.path())' '\(r.path)/layout' && chown -R \(differentialUser):\(differentialUser) '\(r.path)/layout'")
    try r.buildpack("example/runtime", api: "0.12", extra: "sbom-formats = [\"application/vnd.cyclonedx+json\"]")
    try r.buildpack("example/app", api: "0.10")
    try r.order([["example/runtime", "example/app"]])
    try r.appFile("index.html", "<h1>hello</h1>\n")
    try r.appFile("detect-plan-example_runtime@1.0.0.toml", "[[provides]]\nname = \"runtime\"\n")
    try r.appFile("detect-plan-example_app@1.0.0.toml", "[[requires]]\nname = \"runtime\"\n[requires.metadata]\nlaunch = true\n")
    try r.appFile("build-example_runtime@1.0.0.sh", """
        mkdir -p "$LAYERS/runtime/bin" "$LAYERS/runtime/env.launch" "$LAYERS/downloads" "$LAYERS/toolchain/bin"
        if [ ! -f "$LAYERS/downloads/pkg.tgz" ]; then echo downloaded > "$LAYERS/downloads/pkg.tgz"; fi
        printf '#!/bin/sh\\necho runtime\\n' > "$LAYERS/runtime/bin/runtime"; chmod 755 "$LAYERS/runtime/bin/runtime"
        printf '/srv' > "$LAYERS/runtime/env.launch/SERVE_ROOT.default"
        printf '[types]\\nlaunch = true\\n[metadata]\\nversion = "1.0"\\n' > "$LAYERS/runtime.toml"
        printf '[types]\\ncache = true\\n[metadata]\\nurl = "https://example.com/pkg.tgz"\\n' > "$LAYERS/downloads.toml"
        printf '[types]\\nbuild = true\\ncache = true\\n' > "$LAYERS/toolchain.toml"
        printf '{"bomFormat":"CycloneDX","specVersion":"1.4","components":[{"name":"runtime","version":"1.0"}]}' > "$LAYERS/runtime.sbom.cdx.json"
        """)
    try r.appFile("build-example_app@1.0.0.sh", """
        cat > "$LAYERS/launch.toml" <<'T'
        [[processes]]
        type = "web"
        command = ["runtime", "serve"]
        args = ["--root", "/workspace"]
        default = true
        [[processes]]
        type = "shell"
        command = ["bash"]
        [[labels]]
        key = "org.example.app"
        value = "hello"
        T
        """)
}

/// Runs the five phases of a build as uid 1000 with platform.md's flags. Returns the exit
/// codes, in order; stops at the first failure.
/// Where a build reads and writes images: OCI layouts (app `app`, cache dir), or a loopback
/// registry (app and cache image named per lifecycle, run image `tiny/run:latest` there).
enum ImageTarget {
    case layout
    case registry(app: String, cache: String, host: String)
}

func buildInPhases(_ r: CaseRoot, _ lifecycle: LifecycleUnderTest, api: String, target: ImageTarget = .layout, log: inout String,
                   observe: (String) -> Void) throws -> [Int32] {
    var values = ["CNB_PLATFORM_API": api, "CNB_EXPERIMENTAL_MODE": "silent"]
    let images: [String], cache: [String], run: String, app: String
    switch target {
    case .layout:
        (images, cache, run, app) = (["-layout", "-layout-dir", r.path + "/layout"], ["-cache-dir", r.path + "/cache"], "tiny/run:latest", "app")
    case .registry(let appName, let cacheName, let host):
        values["CNB_INSECURE_REGISTRIES"] = host
        (images, cache, run, app) = ([], ["-cache-image", cacheName], host + "/tiny/run:latest", appName)
    }
    let env = DifferentialRunner.environment(r, values)
    let ids = ["-uid", "\(differentialUser)", "-gid", "\(differentialUser)"]
    let steps: [(String, [String])] = [
        ("analyzer", images + ids + ["-layers", r.layers, "-run-image", run, app]),
        ("detector", ["-app", r.app, "-buildpacks", r.buildpacks, "-order", r.path + "/order.toml", "-layers", r.layers, "-platform", r.platform]),
        ("restorer", images + ids + ["-layers", r.layers] + cache),
        ("builder", ["-app", r.app, "-buildpacks", r.buildpacks, "-layers", r.layers, "-platform", r.platform]),
        ("exporter", images + ids + ["-app", r.app, "-layers", r.layers, "-launcher", lifecycle.launcher] + cache + [app]),
    ]
    var statuses: [Int32] = []
    for (phase, args) in steps {
        let result = try r.runAsUser([lifecycle.phase(phase)] + args, environment: env)
        statuses.append(result.status)
        log += "[\(phase)]\n" + result.stdout + result.stderr
        observe(phase)
        if result.status != 0 { break }
    }
    return statuses
}

let imageCases: [DifferentialCase] = imagePlatformAPIs.map { api in
    DifferentialCase(id: "images/build-rebuild@\(api)", setup: imageInputs, execute: { r, lifecycle in
        try buildAndRebuild(r, lifecycle, api: api, target: .layout).maskingProducedDigests(keeping: try runImageDigests())
    })
} + rebasePlatformAPIs.map { api in
    DifferentialCase(id: "images/registry-cache-image@\(api)", setup: imageInputs, execute: { r, lifecycle in
        let host = try DifferentialRegistry.host()
        let suffix = "\(lifecycle.name)-\(api.replacingOccurrences(of: ".", with: "-"))"
        let app = "\(host)/cached-app-\(suffix)", cache = "\(host)/cache-\(suffix)"
        return try buildAndRebuild(r, lifecycle, api: api, target: .registry(app: app, cache: cache, host: host))
            .replacing(app, with: "<app>").replacing(cache, with: "<cache>").replacing(host, with: "<registry>")
            .maskingProducedDigests(keeping: try runImageDigests())
    })
} + rebasePlatformAPIs.map { api in
    DifferentialCase(id: "images/rebase@\(api)", setup: imageInputs, execute: { r, lifecycle in
        try rebaseInRegistry(r, lifecycle, api: api).maskingProducedDigests(keeping: try runImageDigests())
    })
}

/// A build and a rebuild from the cache (a cache dir with layouts, a cache image in a
/// registry), each with a fresh `<layers>` (a new pod, a new Tekton run): analyzed.toml, the
/// restored layers, metadata.toml, report.toml and the image of each.
func buildAndRebuild(_ r: CaseRoot, _ lifecycle: LifecycleUnderTest, api: String, target: ImageTarget) throws -> Observation {
        var o = Observation()
        var log = ""
        for round in ["build", "rebuild"] {
            _ = try sh("rm -rf '\(r.layers)'")
            try r.writable("layers")
            let statuses = try buildInPhases(r, lifecycle, api: api, target: target, log: &log) { phase in
                switch phase {
                case "analyzer": o.toml(r.path, "layers/analyzed.toml", as: "\(round)/analyzed.toml")
                case "restorer": o.tree(r.path, "layers", as: "\(round)/restored-layers",
                                        skip: ["analyzed.toml", "group.toml", "plan.toml"])
                default: break
                }
            }
            o.artifacts["\(round)/exits"] = .array(statuses.map { .integer(Int($0)) })
            o.toml(r.path, "layers/config/metadata.toml", as: "\(round)/metadata.toml")
            o.toml(r.path, "layers/report.toml", as: "\(round)/report.toml")
            switch target {
            case .layout: try o.image(r.path + "/layout/index.docker.io/library/app/latest", as: "\(round)/image")
            case .registry(let app, _, _): try o.image(registry: app + ":latest", as: "\(round)/image")
            }
        }
        o.log = log
        return o
}

/// The reference's rebaser has no `-layout`: rebases are compared in a registry, from Platform
/// API 0.13 (the first with insecure registries, which the loopback registry needs).
let rebasePlatformAPIs = ["0.13", "0.15"]

/// Builds the app in a layout, pushes it to the loopback registry, rebases it there onto
/// `tiny/run:2` with `-force` (another run image name), and describes the result.
func rebaseInRegistry(_ r: CaseRoot, _ lifecycle: LifecycleUnderTest, api: String) throws -> Observation {
    var o = Observation()
    var log = ""
    let statuses = try buildInPhases(r, lifecycle, api: api, log: &log) { _ in }
    o.artifacts["build/exits"] = .array(statuses.map { .integer(Int($0)) })
    let registry = try DifferentialRegistry.host()
    let app = "\(registry)/app-\(lifecycle.name)-\(api.replacingOccurrences(of: ".", with: "-"))"
    let pushed = try run(["skopeo", "copy", "--dest-tls-verify=false", "oci:\(r.path)/layout/index.docker.io/library/app/latest",
                          "docker://\(app):latest"])
    guard pushed.status == 0 else { throw TestSupportError("skopeo copy to \(app): \(pushed.stderr)") }
    let env = DifferentialRunner.environment(r, ["CNB_PLATFORM_API": api, "CNB_INSECURE_REGISTRIES": registry])
    let rebase = try r.runAsUser([lifecycle.phase("rebaser"), "-uid", "\(differentialUser)", "-gid", "\(differentialUser)",
                                  "-force", "-run-image", "\(registry)/tiny/run:2",
                                  "-report", r.path + "/out/rebase-report.toml", app + ":latest"], environment: env)
    o.exit(rebase.status)
    o.log = log + "[rebaser]\n" + rebase.stdout + rebase.stderr
    o.toml(r.path, "out/rebase-report.toml", as: "rebase/report.toml")
    try o.image(registry: app + ":latest", as: "rebase/image")
    // The registry name differs per lifecycle (both rebase in one registry): compared without it.
    return o.replacing(app, with: "<app>").replacing(registry, with: "<registry>")
}

/// One loopback registry per test process, holding `tiny/run:latest` and `tiny/run:2`.
enum DifferentialRegistry {
    static let started: Result<(LocalRegistry, String), TestSupportError> = {
        do {
            let registry = try LocalRegistry()
            let layout = try RunImageLayouts.path()
            for tag in ["latest", "2"] {
                let copy = try run(["skopeo", "copy", "--dest-tls-verify=false", "oci:\(layout)/index.docker.io/tiny/run/\(tag):latest",
                                    "docker://\(registry.host)/tiny/run:\(tag)"])
                guard copy.status == 0 else { throw TestSupportError("skopeo copy tiny/run:\(tag): \(copy.stderr)") }
            }
            return .success((registry, registry.host))
        } catch let e as TestSupportError {
            return .failure(e)
        } catch {
            return .failure(TestSupportError("\(error)"))
        }
    }()

    static func host() throws -> String {
        switch started {
        case .success(let s): return s.1
        case .failure(let e): throw e
        }
    }
}

/// Every digest of the two run images (index, manifests, configs, layers, diffIDs): inputs,
/// equal for both lifecycles, so kept in observations; all other digests are produced by the
/// lifecycle (its own tar writer) and masked.
func runImageDigests() throws -> Set<String> {
    let layout = try RunImageLayouts.path()
    let found = try sh("grep -rhoE 'sha256:[0-9a-f]{64}' '\(layout)' --include='*.json' --include='*' 2>/dev/null | sort -u; for f in '\(layout)'/index.docker.io/tiny/run/*/blobs/sha256/*; do basename \"$f\"; done").stdout
    var digests = Set<String>()
    for line in found.split(separator: "\n") {
        let hex = line.hasPrefix("sha256:") ? String(line.dropFirst(7)) : String(line)
        if hex.count == 64 { digests.insert(hex) }
    }
    return digests
}

@Suite(.enabled(if: geteuid() == 0, "runs both lifecycles as uid 1000 with setpriv (CI runs as root)")) struct DifferentialImages {
    @Test func imagePhasesMatchTheReference() throws {
        try DifferentialRunner.check("images", imageCases)
    }
}

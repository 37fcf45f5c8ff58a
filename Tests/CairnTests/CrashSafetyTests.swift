import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// kill -9 at any point loses nothing (issue 17): `cairn import`, `build`, `rebase`, `push` and
/// `pull` are killed with SIGKILL (their whole process group, as a CI runner or a container stop
/// does) at points spread over their uncut run time; after each kill the store verifies, every
/// image named before is intact, and the same command then succeeds. For the registry target,
/// the tag pushed before still pulls (no manifest names a missing blob).
@Suite(.timeLimit(.minutes(10)))
struct CrashSafetyTests {
    static let points = 20

    /// One command under the harness: its counts for the summary line.
    final class Harness: @unchecked Sendable {
        let home: String
        var points = 0
        var killedMidRun = 0
        var storesVerified = 0
        var lostImages = 0
        var reruns = 0

        init(home: String) { self.home = home }

        var environment: [String: String] {
            ["CAIRN_HOME": home, "CAIRN_LIFECYCLE_BIN": staticBin,
             "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"]
        }

        func cairn(_ args: [String]) throws -> RunResult { try run([cairnBinary] + args, environment: environment) }

        /// The command's uncut run time, in seconds (it must succeed).
        func timed(_ args: [String]) throws -> Double {
            let start = Date()
            let r = try cairn(args)
            try #require(r.status == 0, "\(args): \(r.stderr)")
            return Date().timeIntervalSince(start)
        }

        /// Starts the cairn command killed after `delay` seconds; true when it was still running then.
        func killed(_ args: [String], after delay: Double) throws -> Bool {
            try CrashSafetyTests.killed([cairnBinary] + args, environment: environment, after: delay, trace: home)
        }

        /// The store verifies; returns each name's digest now (nil: the name is gone).
        func check(_ names: [String], after what: String) throws -> [String: String?] {
            let verify = try cairn(["store", "verify"])
            if verify.status == 0 && verify.stdout.contains(" 0 problems") {
                storesVerified += 1
            } else {
                Issue.record("after \(what): store verify: \(verify.stdout)\(verify.stderr)")
            }
            var now: [String: String?] = [:]
            for name in names { now[name] = try digest(name) }
            return now
        }

        func digest(_ name: String) throws -> String? {
            let r = try cairn(["inspect", "--format", "json", name])
            guard r.status == 0, let json = try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any] else { return nil }
            return json["digest"] as? String
        }

        /// Kills `args` at `points` spread over `duration` (each after `prepare`), checks, re-runs.
        /// An image is lost when, after the kill, its name is gone or names neither the image it
        /// named before nor the one the command makes when it completes (the re-run).
        func series(_ label: String, duration: Double, prepare: (Int) throws -> Void = { _ in },
                    names: [String], args: (Int) -> [String], after: (Int) throws -> Void = { _ in }) throws {
            let started = Date()
            for k in 0..<CrashSafetyTests.points {
                try prepare(k)
                var before: [String: String?] = [:]
                for name in names { before[name] = try digest(name) }
                let delay = duration * (Double(k) + 0.5) / Double(CrashSafetyTests.points)
                points += 1
                if try killed(args(k), after: delay) { killedMidRun += 1 }
                let what = "\(label) killed at \(Int(delay * 1000)) ms"
                let now = try check(names, after: what)
                let again = try cairn(args(k))
                if again.status == 0 { reruns += 1 } else { Issue.record("\(label) after a kill at \(Int(delay * 1000)) ms: \(again.stderr)") }
                for name in names {
                    let completed = try digest(name)
                    guard let current = now[name] ?? nil, current == before[name] ?? nil || current == completed else {
                        lostImages += 1
                        Issue.record("after \(what): \(name) names \(String(describing: now[name] ?? nil)), neither \(String(describing: before[name] ?? nil)) (before) nor \(String(describing: completed)) (completed)")
                        continue
                    }
                }
                try after(k)
            }
            print(String(format: "  %@: %d points in %.1f s (uncut run %.2f s)", label, CrashSafetyTests.points, Date().timeIntervalSince(started), duration))
        }

        var summary: String {
            "kill -9: \(points) points (\(killedMidRun) mid-run), \(storesVerified) stores verified, \(lostImages) lost images, \(reruns) re-runs succeeded"
        }
    }

    /// Starts `command` and SIGKILLs its whole process group after `delay` seconds; true when it
    /// was still running then. Foundation starts a child as the leader of a process group of its
    /// own, so the group is the command and its children. (Through `setsid`, as before, the group
    /// leader made setsid fork: the kill reached setsid's group, not the command, which ran to its
    /// end; measured: a 5 s sleep killed at 0.5 s was waited for 4.5 s.) Returns once no process
    /// has `trace` (an absolute path) in its command line: sandboxed children in other sessions
    /// die with their parent.
    /// With `log`, the command's output is kept there.
    static func killed(_ command: [String], environment: [String: String]?, after delay: Double, trace: String, log: String? = nil) throws -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: command[0].hasPrefix("/") ? command[0] : try which(command[0]))
        p.arguments = Array(command.dropFirst())
        if let environment { p.environment = environment }
        p.standardInput = FileHandle.nullDevice
        var output: FileHandle?
        if let log {
            FileManager.default.createFile(atPath: log, contents: nil)
            output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        }
        defer { try? output?.close() }
        p.standardOutput = output ?? FileHandle.nullDevice
        p.standardError = output ?? FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(delay)
        while p.isRunning && Date() < deadline { usleep(2_000) }
        let wasRunning = p.isRunning
        if kill(-p.processIdentifier, SIGKILL) != 0 { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        for _ in 0..<250 where processRunning(withArgument: trace) { usleep(20_000) }
        return wasRunning
    }

    /// Whether a process has an argument containing `text` (read from /proc, no process spawned).
    static func processRunning(withArgument text: String) -> Bool {
        let own = getpid()
        for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let n = Int32(pid), n != own,
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
            if String(decoding: cmdline, as: UTF8.self).contains(text) { return true }
        }
        return false
    }

    @Test func importBuildAndRebaseKilledAtAnyPointLoseNothing() throws {
        let tmp = TempDir("kill9")
        let h = Harness(home: tmp.path + "/home")
        try ExampleBuilder.make(home: h.home)
        let app = tmp.path + "/app"
        _ = try sh("cp -a '\(packageRoot)/examples/apps/hello-procfile' '\(app)'")
        let tree = tmp.path + "/tree"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        _ = try sh("head -c 8000000 /dev/urandom > '\(tree)/big' && seq 1 100000 > '\(tree)/text'")

        // import: a new version of tree:latest over the old one.
        let importTime = try h.timed(["import", tree, "tree:latest"])
        try h.series("import", duration: importTime, prepare: { k in try writeFile(tree + "/n", "\(k)\n") },
                     names: ["tree:latest"], args: { _ in ["import", tree, "tree:latest"] })

        // build: the app rebuilt after a source change, over its previous image and cache.
        try writeFile(app + "/version.txt", "first\n")
        let buildTime = try h.timed(["build", "hello", "--path", app, "--builder", ExampleBuilder.name])
        try h.series("build", duration: buildTime, prepare: { k in try writeFile(app + "/version.txt", "\(k)\n") },
                     names: ["hello:latest"],
                     args: { _ in ["build", "hello", "--path", app, "--builder", ExampleBuilder.name] })
        let ran = try h.cairn(["run", "hello"])
        #expect(ran.status == 0 && !ran.stdout.isEmpty, "the image runs after the kills: \(ran.stderr)")

        // rebase: back and forth between two run images (each rebase does work).
        let patch = tmp.path + "/patch"
        try FileManager.default.createDirectory(atPath: patch + "/etc", withIntermediateDirectories: true)
        try writeFile(patch + "/etc/cairn-patch", "patched\n")
        try #require(try h.cairn(["import", patch, "tiny/run:v2", "--base", TinyStack.runImage]).status == 0)
        let runImages = [TinyStack.runImage, "tiny/run:v2"]
        let rebaseTime = try h.timed(["rebase", "hello", "--run-image", runImages[1], "--force"])
        try h.series("rebase", duration: rebaseTime,
                     names: ["hello:latest"],
                     args: { k in ["rebase", "hello", "--run-image", runImages[k % 2], "--force"] })
        let rebasedRuns = try h.cairn(["run", "hello"])
        #expect(rebasedRuns.status == 0, "the rebased image runs: \(rebasedRuns.stderr)")
        print(h.summary)
        #expect(h.lostImages == 0 && h.storesVerified == h.points && h.reruns == h.points, "\(h.summary)")
        // Most kills land while the command runs (a fast command may finish before a late point).
        #expect(h.killedMidRun >= h.points / 2, "\(h.summary)")
    }

    @Test(.requires("docker-registry")) func pushAndPullKilledAtAnyPointLeaveNoDanglingManifest() throws {
        let tmp = TempDir("kill9-registry")
        let registry = try LocalRegistry()
        defer { registry.stop() }
        let h = Harness(home: tmp.path + "/home")
        let puller = Harness(home: tmp.path + "/puller")
        let insecure = ["--insecure-registry", registry.host]
        let remote = "\(registry.host)/kill9/app:latest"
        let tree = tmp.path + "/tree"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        func newContent(_ k: Int) throws {
            _ = try sh("head -c 8000000 /dev/urandom > '\(tree)/big'")
            try writeFile(tree + "/n", "\(k)\n")
            try #require(try h.cairn(["import", tree, "app:latest"]).status == 0)
        }
        try newContent(-1)
        let pushTime = try h.timed(["push", "app:latest", remote] + insecure)

        // push: the tag pushed before still pulls, whole, after each kill.
        var pushed = 0
        try h.series("push", duration: pushTime, prepare: newContent,
                     names: ["app:latest"], args: { _ in ["push", "app:latest", remote] + insecure },
                     after: { _ in
                         let pull = try puller.cairn(["pull", remote] + insecure)
                         #expect(pull.status == 0, "the pushed tag pulls: \(pull.stderr)")
                         if pull.status == 0 { pushed += 1 }
                     })
        #expect(pushed == Self.points)

        // pull: a new version of the tag pulled over the old one.
        let pullTime = try puller.timed(["pull", remote] + insecure)
        try puller.series("pull", duration: max(pullTime, 0.2), prepare: { k in
                              try newContent(100 + k)
                              try #require(try h.cairn(["push", "app:latest", remote] + insecure).status == 0)
                          },
                          names: [remote], args: { _ in ["pull", remote] + insecure })
        print(h.summary.replacingOccurrences(of: "kill -9:", with: "kill -9 (push):"))
        print(puller.summary.replacingOccurrences(of: "kill -9:", with: "kill -9 (pull):"))
        for x in [h, puller] {
            #expect(x.lostImages == 0 && x.storesVerified == x.points && x.reruns == x.points, "\(x.summary)")
        }
    }

    /// `lifecycle exporter` driven as Tekton's task drives it (its own container, a registry
    /// target, a cache directory), killed at any point: the tag still pulls whole and names the
    /// previous image or the new one, the cache directory verifies, and the export then succeeds.
    @Test(.enabled(if: canRunPhasesAsUser(), "runs the phases as uid 1000 through setpriv and bubblewrap: needs root, setpriv, bwrap and umoci")) func exporterKilledAtAnyPointLeavesRegistryAndCacheWhole() throws {
        let configDir = TempDir("kill9-phases")
        let p = try PhasePlatform(builderConfig: try classicBuilderConfig(configDir.path), builder: "classic-builder")
        let host = p.registry.host
        for (local, remote) in [("tiny/run:latest", "\(host)/tiny/run:latest"), ("classic-builder:latest", "\(host)/team/builder:latest")] {
            try #require(try p.cairn(["push", local, remote]).status == 0)
        }
        let app = configDir.sub("app")
        try writeFile(app + "/classic.txt", "hello classic\n")
        let image = "\(host)/team/app"
        let build = (image: image, runImage: "\(host)/tiny/run", buildImage: "\(host)/team/builder")
        _ = try p.build(app: app, image: build.image, runImage: build.runImage, buildImage: build.buildImage, processType: "")

        // The image and cache writer (`h`, over the platform's home); a puller that checks the tag;
        // a keeper that holds the previous image and pushes it back before each kill.
        let h = Harness(home: p.home)
        let puller = Harness(home: configDir.path + "/puller")
        let keeper = Harness(home: configDir.path + "/keeper")
        func pulledDigest(_ into: Harness) throws -> String? {
            let pull = try into.cairn(["pull", "--quiet", image, "--insecure-registry", host])
            guard pull.status == 0 else {
                Issue.record("the tag does not pull: \(pull.stderr)")
                return nil
            }
            return try into.digest(image + ":latest")
        }
        let before = try pulledDigest(keeper)

        // The next build up to the exporter, then its export over fresh copies of its /layers.
        try writeFile(app + "/classic.txt", "hello again\n")
        let prepared = try p.build(app: app, image: build.image, runImage: build.runImage, buildImage: build.buildImage,
                                   processType: "", through: "builder")
        let exportArgs = PhasePlatform.steps(image: build.image, runImage: build.runImage, buildImage: build.buildImage, processType: "").last!.1
        func freshLayers() throws -> String {
            let layers = p.tmp.path + "/layers-copy"
            _ = try sh("rm -rf '\(layers)' && cp -a '\(prepared.layers)' '\(layers)'")
            return layers
        }
        func export(_ layers: String) -> [String] {
            p.phaseCommand("exporter", exportArgs, layers: layers, workspace: prepared.workspace, asUser: false)
        }
        let start = Date()
        let first = try run(export(try freshLayers()))
        try #require(first.status == 0, "\(first.stderr)")
        let duration = Date().timeIntervalSince(start)
        let completed = try pulledDigest(puller)
        try #require(before != nil && completed != nil && before != completed)

        let started = Date()
        for k in 0..<Self.points {
            // Back to the previous image first, so that each kill interrupts a real change.
            try #require(try keeper.cairn(["push", image + ":latest", image + ":latest", "--insecure-registry", host]).status == 0)
            let delay = duration * (Double(k) + 0.5) / Double(Self.points)
            h.points += 1
            if try Self.killed(export(try freshLayers()), environment: nil, after: delay, trace: p.tmp.path + "/layers-copy") {
                h.killedMidRun += 1
            }
            let what = "exporter killed at \(Int(delay * 1000)) ms"
            let verify = try h.cairn(["store", "verify", "--store", p.cache])
            if verify.status == 0 && verify.stdout.contains(" 0 problems") { h.storesVerified += 1 } else {
                Issue.record("after \(what): cache verify: \(verify.stdout)\(verify.stderr)")
            }
            // Into an empty store: every blob the manifest names is fetched from the registry.
            let fresh = Harness(home: configDir.path + "/puller-\(k)")
            let now = try pulledDigest(fresh)
            _ = try sh("rm -rf '\(fresh.home)'")
            if now == nil || (now != before && now != completed) {
                h.lostImages += 1
                Issue.record("after \(what): the tag names \(String(describing: now)), neither \(before!) nor \(completed!)")
            }
            let again = try run(export(try freshLayers()))
            if again.status == 0 { h.reruns += 1 } else { Issue.record("exporter after \(what): \(again.stderr)") }
        }
        print(String(format: "  exporter: %d points in %.1f s (uncut run %.2f s)", Self.points, Date().timeIntervalSince(started), duration))
        // The cache serves the next build, and the image runs.
        let next = try p.build(app: app, image: build.image, runImage: build.runImage, buildImage: build.buildImage, processType: "")
        #expect(next.output.contains("---> build number 3"), "the cache was not restored:\n\(next.output)")
        _ = try pulledDigest(puller)
        let ran = try puller.cairn(["run", image + ":latest"])
        #expect(ran.status == 0 && ran.stdout.contains("hello again"), "\(ran.stdout)\(ran.stderr)")
        print(h.summary.replacingOccurrences(of: "kill -9:", with: "kill -9 (lifecycle exporter):"))
        #expect(h.lostImages == 0 && h.storesVerified == h.points && h.reruns == h.points, "\(h.summary)")
    }
}

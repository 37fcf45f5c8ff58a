import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Hostile buildpacks (issue 17), run by `cairn build` as processes in the build sandbox: one
/// that never exits (stopped by `--timeout`, nothing left running), one that prints 64 MB, one
/// that writes everywhere outside its layers. Each gives a clear error or a contained result;
/// nothing outside the sandbox's directories changes and the store verifies.
@Suite(.timeLimit(.minutes(5)))
struct HostileBuildpackTests {
    let tmp = TempDir("hostile")
    var home: String { tmp.path + "/home" }
    var app: String { tmp.path + "/app" }
    static let buildpack = fixturesRoot + "/buildpacks/hostile"

    init() throws {
        try ExampleBuilder.make(home: tmp.path + "/home")
        _ = try sh("cp -a '\(packageRoot)/examples/apps/hello-procfile' '\(tmp.path)/app'")
    }

    func build(_ image: String, mode: String, extra: [String] = []) throws -> (RunResult, Double) {
        let start = Date()
        let r = try cairnAt(["build", image, "--path", app, "--builder", ExampleBuilder.name, "--buildpack", Self.buildpack,
                             "--env", "HOSTILE=\(mode)"] + extra, home: home)
        return (r, Date().timeIntervalSince(start))
    }

    func storeVerifies() throws {
        let verify = try cairnAt(["store", "verify"], home: home)
        #expect(verify.status == 0 && verify.stdout.contains(" 0 problems"), "\(verify.stdout)\(verify.stderr)")
    }

    /// Processes whose command line contains `text` (read from /proc, this machine's).
    static func running(_ text: String) -> [String] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int32($0) != nil } ?? []
        return pids.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return line.contains(text) ? "\(pid): \(line)" : nil
        }
    }

    @Test func aBuildpackThatNeverExitsIsStoppedByTimeoutAndLeavesNothingRunning() throws {
        let (first, _) = try build("hostile", mode: "none")
        try #require(first.status == 0, "\(first.stderr)")
        let before = try cairnAt(["inspect", "hostile", "--format", "json"], home: home)
        let (r, seconds) = try build("hostile", mode: "hang", extra: ["--timeout", "5s"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--timeout 5s"), "\(r.stderr)")
        #expect(seconds < 60, "the build ran \(seconds) s with --timeout 5s")
        // The buildpack's background `sleep 100001` went with the sandbox.
        var left = Self.running("sleep 100001")
        for _ in 0..<20 where !left.isEmpty {
            usleep(100_000)
            left = Self.running("sleep 100001")
        }
        #expect(left.isEmpty, "still running after the timeout: \(left)")
        let after = try cairnAt(["inspect", "hostile", "--format", "json"], home: home)
        #expect(after.stdout == before.stdout, "the previous image changed")
        try storeVerifies()
        let bad = try cairnAt(["build", "x", "--path", app, "--builder", ExampleBuilder.name, "--timeout", "soon"], home: home)
        #expect(bad.status != 0 && bad.stderr.contains("--timeout soon"), "\(bad.stderr)")
        print("hostile: never-exiting buildpack stopped after \(Int(seconds)) s by --timeout 5s, 0 processes left")
    }

    @Test func aBuildpackPrintingMegabytesFinishes() throws {
        let (r, seconds) = try build("loud", mode: "loud")
        #expect(r.status == 0, "\(r.stderr.suffix(2000))")
        #expect(r.stdout.utf8.count + r.stderr.utf8.count >= 64_000_000, "the output was cut")
        #expect(r.stdout.contains("printed 64 MB") || r.stderr.contains("printed 64 MB"))
        try storeVerifies()
        print("hostile: 64 MB of buildpack output in \(String(format: "%.1f", seconds)) s")
    }

    @Test func writesOutsideTheLayersStayInTheSandbox() throws {
        let (r, _) = try build("outside", mode: "outside")
        #expect(r.status == 0, "\(r.stderr)")
        let output = r.stdout + r.stderr
        for path in ["/etc/cairn-hostile", "/cnb/cairn-hostile", "/cairn-hostile", "/cnb/buildpacks/cairn-hostile", "/platform/cairn-hostile"] {
            #expect(!output.contains("wrote \(path)"), "the buildpack could write \(path)")
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) exists on the host")
        }
        let found = try sh("find '\(home)' '\(tmp.path)' -name cairn-hostile 2>/dev/null")
        #expect(found.stdout.isEmpty, "written outside the sandbox's directories: \(found.stdout)")
        try storeVerifies()
    }

    @Test func aLayerThatLinksToTheRootIsRefusedByName() throws {
        let (r, _) = try build("symlink", mode: "symlink-root")
        #expect(r.status != 0)
        #expect(r.stderr.contains("layer root is a symbolic link (to /); a layer must be a directory"), "\(r.stderr)")
        #expect(try cairnAt(["inspect", "symlink"], home: home).status != 0, "an image was stored")
        try storeVerifies()
    }

    /// Processes of `uid` in the PID namespace of the build of `image` (its creator's), now.
    static func buildProcesses(of uid: Int, image: String) -> Int {
        let fm = FileManager.default
        let pids = (try? fm.contentsOfDirectory(atPath: "/proc"))?.filter { Int32($0) != nil } ?? []
        var namespace: String?
        for pid in pids {
            guard let data = fm.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
            let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if args.first == "/cnb/lifecycle/creator" && args.last == image {
                namespace = try? fm.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid")
                break
            }
        }
        guard let namespace else { return 0 }
        return pids.filter { pid in
            (try? fm.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid")) == namespace
                && (try? fm.attributesOfItem(atPath: "/proc/\(pid)"))?[.ownerAccountID] as? Int == uid
        }.count
    }

    @Test func aForkBombStopsAtTheProcessLimitAndLeavesNothingRunning() throws {
        // The build in the background; this thread counts the build user's processes in its sandbox.
        let result = LockedResult()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            result.set(Result { try self.build("bomb", mode: "forkbomb", extra: ["--max-processes", "100", "--timeout", "20s"]) })
            done.signal()
        }
        var peak = 0
        while done.wait(timeout: .now() + .milliseconds(100)) == .timedOut { peak = max(peak, Self.buildProcesses(of: 1000, image: "bomb")) }
        let (r, seconds) = try result.get()
        #expect(r.status != 0)
        #expect(r.stderr.contains("--timeout 20s") || r.stderr.contains("failed"), "\(r.stderr.suffix(2000))")
        // The limit counts every process of the build user on the machine (other tests' builds
        // too), so the bomb gets at most 100 and fewer when others run.
        #expect(peak <= 100, "the bomb had \(peak) processes")
        #expect(peak >= 20, "the bomb never got going (\(peak) processes): the test shows nothing")
        var left = Self.running("sleep 100002")
        for _ in 0..<20 where !left.isEmpty {
            usleep(100_000)
            left = Self.running("sleep 100002")
        }
        #expect(left.isEmpty, "still running after the build: \(left.prefix(3))")
        try storeVerifies()
        let (after, _) = try build("bomb", mode: "none")
        #expect(after.status == 0, "a build after the fork bomb: \(after.stderr)")
        print("hostile: fork bomb held at \(peak) processes in its sandbox (--max-processes 100), stopped after \(Int(seconds)) s by --timeout 20s, 0 left")
    }

    @Test func aBuildpackThatFillsTheDiskFailsClearlyAndTheStoreKeepsThePreviousImage() throws {
        let (first, _) = try build("fill", mode: "none")
        try #require(first.status == 0, "\(first.stderr)")
        let before = try cairnAt(["inspect", "fill", "--format", "json"], home: home)
        // The builds' work directories on a 64 MB file system of their own; the store is elsewhere.
        let builds = home + "/builds"
        _ = try sh("mkdir -p '\(builds)'")
        let mount = try sh("mount -t tmpfs -o size=64m cairn-fill '\(builds)'")
        try #require(mount.status == 0, "cannot mount a tmpfs: \(mount.stderr)")
        defer { _ = try? sh("umount '\(builds)'") }
        let (r, _) = try build("fill", mode: "fill", extra: ["--timeout", "2m"])
        #expect(r.status != 0, "the build succeeded with a full disk")
        #expect(r.stdout.contains("until the disk was full"), "\(r.stdout.suffix(1000))")
        #expect(r.stderr.contains("No space left on device"), "\(r.stderr.suffix(2000))")
        let after = try cairnAt(["inspect", "fill", "--format", "json"], home: home)
        #expect(after.stdout == before.stdout, "the previous image changed")
        try storeVerifies()
        let left = try sh("ls -A '\(builds)'; df -m '\(builds)' | tail -1")
        #expect(left.stdout.split(separator: "\n").count == 1, "the build's work directory was left behind: \(left.stdout)")
        let (again, _) = try build("fill", mode: "none")
        #expect(again.status == 0, "a build after the full disk: \(again.stderr)")
        let error = r.stderr.split(separator: "\n").first { $0.contains("No space left on device") } ?? ""
        print("hostile: disk filled by a buildpack: build failed with \"\(error.suffix(300))\", previous image kept, store verifies")
    }

    @Test func aDeviceNodeAndASetuidRootProgramInABuildpackArchiveAreInertInTheSandbox() throws {
        // A static program whose exit status is its effective uid (mod 256): 0 if setuid root worked.
        let source = tmp.path + "/euid.c"
        try writeFile(source, "#include <unistd.h>\nint main(void) { return geteuid() & 0xff; }\n")
        let cc = try run(["clang", "-static", "-O1", source, "-o", tmp.path + "/euid"])
        try #require(cc.status == 0, "cannot build the test program: \(cc.stderr)")
        let archive = tmp.path + "/devices-bp.tgz"
        let made = try run(["python3", fixturesRoot + "/buildpacks/devices/make_archive.py", archive, tmp.path + "/euid"])
        try #require(made.status == 0, "\(made.stderr)")
        let r = try cairnAt(["build", "devices", "--path", app, "--builder", ExampleBuilder.name, "--buildpack", archive,
                             "--buildpack", "examples/procfile"], home: home)
        #expect(r.status == 0, "\(r.stdout.suffix(2000))\(r.stderr)")
        let out = r.stdout + r.stderr
        // Both are really there (extracted as the archive says), and neither gives anything.
        #expect(out.contains("crw-rw-rw-") && out.contains("-rwsr-xr-x"), "\(out.suffix(2000))")
        #expect(out.contains("device: refused"), "\(out.suffix(2000))")
        #expect(out.contains("euid: 232"), "the setuid-root program ran as \(out.components(separatedBy: "euid: ").last?.prefix(4) ?? "?")")
        try storeVerifies()
        print("hostile: device node and setuid-root program from a buildpack archive: present, device refused, euid 1000")
    }
}

/// A result handed from one thread to another.
final class LockedResult: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<(RunResult, Double), any Error>?
    func set(_ v: Result<(RunResult, Double), any Error>) { lock.withLock { value = v } }
    func get() throws -> (RunResult, Double) { try lock.withLock { value! }.get() }
}

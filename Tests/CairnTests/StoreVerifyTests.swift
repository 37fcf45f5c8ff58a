import Foundation
import OCI
import Testing
import TestSupport

/// `cairn store verify [--repair]` on a copy of a real store: healthy, then with an orphan blob,
/// a partial temp file and a corrupt layer.
@Test func storeVerifyFindsProblemsAndRepairsOnlyGarbage() throws {
    let stack = try TinyStack.shared()
    let tmp = TempDir("store-verify")
    let store = tmp.path + "/store"
    _ = try sh("cp -a '\(stack.store)' '\(store)'")
    func verify(_ extra: [String] = []) throws -> RunResult { try run([cairnBinary, "store", "verify", "--store", store] + extra) }

    let healthy = try verify()
    #expect(healthy.status == 0, "\(healthy.stdout)\(healthy.stderr)")
    #expect(healthy.stdout.contains(" 0 problems, 0 orphan blobs, 0 temp files"), "\(healthy.stdout)")

    // Garbage: a blob nothing names and a temp file a killed writer left.
    let s = try ImageStore(root: store)
    let orphan = try s.beginWriteSession().writeBlob(Data("nobody names me".utf8), mediaType: "application/octet-stream")
    try writeFile(store + "/.cairn/tmp/partial-123", "half a layer")
    let garbage = try verify(["--format", "json"])
    #expect(garbage.status == 0, "garbage is not a problem: \(garbage.stderr)")
    let report = try #require(try JSONSerialization.jsonObject(with: garbage.stdoutData) as? [String: Any])
    #expect(report["orphans"] as? [String] == [orphan.digest.description])
    #expect(report["tempFiles"] as? [String] == ["partial-123"])

    // A corrupt layer (same size, other bytes) is a problem naming the blob; repair leaves it.
    let runImage = try s.resolve(TinyStack.runImage)
    let layer = try #require(runImage.manifest.layers.first)
    let path = s.blobPath(layer.digest)
    var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    bytes[bytes.count / 2] ^= 0xff
    unlink(path)
    try bytes.write(to: URL(fileURLWithPath: path))
    let corrupt = try verify(["--repair"])
    #expect(corrupt.status == 1)
    #expect(corrupt.stdout.contains("blob \(layer.digest) holds content whose digest is sha256:"), "\(corrupt.stdout)")
    #expect(corrupt.stdout.contains("2 removed"), "\(corrupt.stdout)")
    #expect(FileManager.default.fileExists(atPath: path), "repair never removes what a name reaches")
    #expect(!s.hasBlob(orphan.digest))
    #expect(!FileManager.default.fileExists(atPath: store + "/.cairn/tmp/partial-123"))

    // A missing blob too.
    unlink(path)
    let missing = try verify()
    #expect(missing.status == 1 && missing.stdout.contains("blob \(layer.digest) is missing"), "\(missing.stdout)")
}

/// Imports racing a `cairn prune` loop lose nothing: each import holds a write session from its
/// first blob to its name, so prune waits (before, prune removed layers an import had written
/// but not yet named: 3 of 15 images lost a blob on this machine).
@Test func importsRacingAPruneLoopLoseNothing() throws {
    let tmp = TempDir("prune-race")
    let src = tmp.path + "/src"
    try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
    _ = try sh("head -c 8000000 /dev/urandom > '\(src)/big'")
    let env = ["CAIRN_HOME": tmp.path + "/home", "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
    let pruner = try PruneLoop(environment: env)
    defer { pruner.stop() }
    for i in 0..<12 {
        try writeFile(src + "/n", "\(i)\n")
        let r = try run([cairnBinary, "import", src, "app\(i):latest"], environment: env)
        #expect(r.status == 0, "\(r.stderr)")
    }
    let verify = try run([cairnBinary, "store", "verify"], environment: env)
    #expect(verify.status == 0 && verify.stdout.contains("12 names") && verify.stdout.contains(" 0 problems"), "\(verify.stdout)\(verify.stderr)")
}

/// Concurrency (issue 17): four `cairn build`s of different apps and two of the same app (same
/// image name, same cache) into one store at once, with a `cairn prune` loop beside them: all
/// succeed, every image is named and whole, and the store verifies.
@Test(.timeLimit(.minutes(5))) func concurrentBuildsBesideAPruneLoopAllSucceed() throws {
    let tmp = TempDir("concurrent-builds")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    let env = ["CAIRN_HOME": home, "CAIRN_LIFECYCLE_BIN": staticBin,
               "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"]
    var jobs: [(name: String, path: String)] = []
    for i in 0..<4 {
        let app = tmp.path + "/app\(i)"
        _ = try sh("cp -a '\(packageRoot)/examples/apps/\(i % 2 == 0 ? "hello-procfile" : "static-site")' '\(app)'")
        _ = try sh("head -c \(1_000_000 * (i + 1)) /dev/urandom > '\(app)/data.bin'")
        jobs.append(("app\(i)", app))
    }
    let same = tmp.path + "/same"
    _ = try sh("cp -a '\(packageRoot)/examples/apps/hello-procfile' '\(same)' && head -c 3000000 /dev/urandom > '\(same)/data.bin'")
    jobs += [("same", same), ("same", same)]

    let pruner = try PruneLoop(environment: env)
    defer { pruner.stop() }
    // All six at once (not a pool as wide as the cores): each its own process, output to files.
    let builds = try jobs.enumerated().map { k, job in
        let p = Process()
        p.executableURL = URL(fileURLWithPath: cairnBinary)
        p.arguments = ["build", job.name, "--path", job.path, "--builder", ExampleBuilder.name]
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        FileManager.default.createFile(atPath: tmp.path + "/build\(k).err", contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp.path + "/build\(k).err"))
        try p.run()
        return p
    }
    var succeeded = 0
    for (k, p) in builds.enumerated() {
        p.waitUntilExit()
        let stderr = (try? String(contentsOfFile: tmp.path + "/build\(k).err", encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "cairn build \(jobs[k].name) (job \(k)): \(stderr)")
        if p.terminationStatus == 0 { succeeded += 1 }
    }
    let verify = try run([cairnBinary, "store", "verify"], environment: env)
    #expect(verify.status == 0 && verify.stdout.contains(" 0 problems"), "\(verify.stdout)\(verify.stderr)")
    for name in ["app0", "app1", "app2", "app3", "same"] {
        let inspect = try run([cairnBinary, "inspect", name], environment: env)
        #expect(inspect.status == 0, "cairn inspect \(name): \(inspect.stderr)")
    }
    print("concurrency: \(jobs.count) builds (4 apps + 2 of one app) beside a prune loop, \(succeeded) succeeded, store verify: \(verify.status == 0 ? "0 problems" : "problems")")
}

/// `cairn prune` run over and over in the background until stopped.
final class PruneLoop {
    let process = Process()

    init(environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "while :; do '\(cairnBinary)' prune >/dev/null 2>&1; done"]
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func stop() {
        _ = try? sh("kill \(process.processIdentifier); pkill -P \(process.processIdentifier); true")
        process.waitUntilExit()
    }
}

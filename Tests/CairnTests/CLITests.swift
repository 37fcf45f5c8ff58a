import Foundation
import OCI
import Testing
import TestSupport

/// Runs `cairn` with an isolated HOME and CAIRN_HOME.
func cairn(_ args: [String], home: String, extraEnv: [String: String] = [:]) throws -> RunResult {
    var env = ProcessInfo.processInfo.environment
    env["HOME"] = home
    env["CAIRN_HOME"] = home + "/cairn"
    env.removeValue(forKey: "SOURCE_DATE_EPOCH")
    env.merge(extraEnv) { $1 }
    return try run([cairnBinary] + args, environment: env)
}

@Suite struct CLITests {
    @Test func importImagesInspectRmiPrune() throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        try makeSampleTree(src)
        let imported = try cairn(["import", src, "myapp:1.0"], home: tmp.path)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("Stored myapp:1.0 sha256:"))
        // The default store is $CAIRN_HOME/store.
        #expect(FileManager.default.fileExists(atPath: tmp.path + "/cairn/store/index.json"))

        let images = try cairn(["images", "--format", "json"], home: tmp.path)
        let list = try JSONSerialization.jsonObject(with: images.stdoutData) as? [[String: Any]]
        #expect(list?.count == 1)
        #expect(list?.first?["name"] as? String == "myapp:1.0")
        let table = try cairn(["images"], home: tmp.path)
        #expect(table.stdout.hasPrefix("NAME"))
        #expect(table.stdout.contains("myapp:1.0"))

        let inspect = try cairn(["inspect", "--format", "json", "myapp:1.0"], home: tmp.path)
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let obj = try JSONSerialization.jsonObject(with: inspect.stdoutData) as? [String: Any]
        let digest = try #require(obj?["digest"] as? String)
        #expect(digest.hasPrefix("sha256:"))
        let manifest = obj?["manifest"] as? [String: Any]
        #expect((manifest?["layers"] as? [Any])?.count == 1)
        let config = obj?["config"] as? [String: Any]
        #expect((config?["rootfs"] as? [String: Any])?["type"] as? String == "layers")
        let human = try cairn(["inspect", "myapp:1.0"], home: tmp.path)
        #expect(human.stdout.contains("Digest:     \(digest)"))
        #expect(human.stdout.contains("Layers (1):"))

        let rmi = try cairn(["rmi", "myapp:1.0"], home: tmp.path)
        #expect(rmi.status == 0)
        let prune = try cairn(["prune"], home: tmp.path)
        #expect(prune.stdout.hasPrefix("Removed 3 blobs"))
        let empty = try cairn(["images", "--format", "json"], home: tmp.path)
        #expect(empty.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]" || empty.stdout.contains("[]"))
    }

    @Test func importingTheSameTreeTwiceGivesTheSameDigest() throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        try makeSampleTree(src)
        let first = try cairn(["import", "--quiet", src, "a"], home: tmp.path)
        _ = try sh("find '\(src)' -exec touch -h -d '2011-11-11' {} +" + (geteuid() == 0 ? " && chown -hR 777:777 '\(src)'" : ""))
        let second = try cairn(["import", "--quiet", src, "b"], home: tmp.path)
        #expect(first.status == 0 && second.status == 0)
        #expect(first.stdout == second.stdout)
        #expect(first.stdout.hasPrefix("sha256:"))
        // In another store, at another time: same digest.
        let other = try cairn(["import", "--quiet", "--store", tmp.path + "/other", src, "c"], home: tmp.path)
        #expect(other.stdout == first.stdout)
        // SOURCE_DATE_EPOCH changes times, hence the digest.
        let dated = try cairn(["import", "--quiet", src, "d"], home: tmp.path, extraEnv: ["SOURCE_DATE_EPOCH": "1700000000"])
        #expect(dated.stdout != first.stdout)
        let cfg = try cairn(["inspect", "--format", "json", "d"], home: tmp.path)
        #expect(cfg.stdout.contains("\"created\" : \"2023-11-14T22:13:20Z\""))
    }

    @Test(.requires("umoci"))
    func importOnABaseAddsALayer() throws {
        let tmp = TempDir()
        let base = tmp.sub("base"), app = tmp.sub("app")
        try makeSampleTree(base)
        try writeFile(app + "/app/main.sh", "echo app\n", mode: 0o755)
        try writeFile(app + "/etc/app.conf", "overridden\n")
        #expect(try cairn(["import", base, "base:1"], home: tmp.path).status == 0)
        let r = try cairn(["import", "--base", "base:1", "--compression", "zstd", app, "app:1"], home: tmp.path)
        #expect(r.status == 0, "\(r.stderr)")
        let inspect = try cairn(["inspect", "--format", "json", "app:1"], home: tmp.path)
        let obj = try JSONSerialization.jsonObject(with: inspect.stdoutData) as? [String: Any]
        let layers = (obj?["manifest"] as? [String: Any])?["layers"] as? [[String: Any]]
        #expect(layers?.map { $0["mediaType"] as? String } == [MediaType.ociLayerGzip, MediaType.ociLayerZstd])
        let history = (obj?["config"] as? [String: Any])?["history"] as? [Any]
        #expect(history?.count == 2)
    }

    @Test func errorsAreOneActionableLine() throws {
        let tmp = TempDir()
        let src = tmp.sub("src")
        let cases: [([String], String)] = [
            (["import", tmp.path + "/missing", "x"], "cannot read \(tmp.path)/missing: No such file or directory"),
            (["import", src, "Bad:Name!"], "invalid image reference \"Bad:Name!\""),
            (["import", src, "x", "--base", "nothere"], "image \"nothere\" not found in the store"),
            (["inspect", "ghost:1"], "image \"ghost:1\" not found in the store"),
            (["rmi", "ghost:1"], "image \"ghost:1\" not found in the store"),
            (["import", src, "x"], ""),  // succeeds: an empty directory is a valid (empty) layer
        ]
        for (args, message) in cases {
            let r = try cairn(args, home: tmp.path)
            if message.isEmpty {
                #expect(r.status == 0, "\(args): \(r.stderr)")
                continue
            }
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
        let badCompression = try cairn(["import", src, "x", "--compression", "lz4"], home: tmp.path)
        #expect(badCompression.status != 0)
        #expect(badCompression.stderr.contains("lz4"))
    }
}

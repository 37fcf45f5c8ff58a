import Buildpacks
import Foundation
@testable import Phases
import Testing

/// The app directory split by launch.toml `[[slices]]` (buildpack.md), called directly.
@Suite struct AppSlicesTests {
    func app(_ files: [String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.path + "/slices-" + UUID().uuidString
        for f in files {
            let path = dir + "/" + f
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(f.utf8).write(to: URL(fileURLWithPath: path))
        }
        return dir
    }

    @Test func noSlicesIsTheWholeDirectory() throws {
        let dir = try app(["a.txt"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sets = try AppSlices.split(dir, [])
        #expect(sets.count == 1 && sets[0] == nil)
    }

    @Test func aPathGoesToTheFirstSliceThatMatchesAndParentsComeAlong() throws {
        let dir = try app(["static/a.css", "static/b.js", "assets/logo.png", "src/main.py", "README"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sets = try AppSlices.split(dir, [.init(paths: ["static/*.css"]), .init(paths: ["static/*", dir + "/assets"]),
                                             .init(paths: ["nothing/*"])])
        // Two slices matched; the one that matched nothing is left out; the rest is last.
        #expect(sets.count == 3)
        #expect(sets[0] == ["static", "static/a.css"])
        #expect(sets[1] == ["static", "static/b.js", "assets", "assets/logo.png"])
        #expect(sets[2] == ["src", "src/main.py", "README"])
    }

    @Test func slicesMayNameTheAppDirectoryWithDotSlashAndTheRestMayBeEmpty() throws {
        let dir = try app(["bin/run"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sets = try AppSlices.split(dir, [.init(paths: ["./bin"])])
        #expect(sets.count == 2)
        #expect(sets[0] == ["bin", "bin/run"])
        #expect(sets[1] == [])
    }

    /// Large files get a layer each after the buildpacks' slices; a file a buildpack's slice
    /// names stays there; names with glob characters match only themselves.
    @Test func largeFilesGetALayerEachAfterTheBuildpacksSlices() throws {
        let dir = try app(["src/main.py", "README", "lib/small.so"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for sub in ["models", "vendor"] { try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true) }
        for big in ["models/weights[1].bin", "models/weights*.bin", "vendor/big.tar"] {
            #expect(FileManager.default.createFile(atPath: dir + "/" + big, contents: Data(count: 3 << 20)))
        }
        // As slices of their names, escaped for fnmatch, the large files give the same layers.
        let walked = try AppSlices.walk(dir)
        let large = AppSlices.largeFileIndices(walked, minimumBytes: 2 << 20).map { LaunchFile.Slice(paths: [escapeGlob(walked[$0].path)]) }
        #expect(large.map(\.paths) == [["models/weights\\*.bin"], ["models/weights\\[1].bin"], ["vendor/big.tar"]])
        let sets = try AppSlices.split(dir, [.init(paths: ["vendor/*"])] + large)
        #expect(sets.count == 4)
        #expect(sets[0] == ["vendor", "vendor/big.tar"])
        #expect(sets[1] == ["models", "models/weights*.bin"])
        #expect(sets[2] == ["models", "models/weights[1].bin"])
        #expect(sets[3] == ["src", "src/main.py", "README", "lib", "lib/small.so"])
        // The exporter's call: the large files found by split's own walk, the same sets.
        #expect(try AppSlices.split(dir, [.init(paths: ["vendor/*"])], largeFiles: 2 << 20) == sets)
        #expect(AppSlices.largeFileIndices(walked, minimumBytes: 0).isEmpty)
        #expect(try AppSlices.largeFileMinimum([:]) == 64 << 20 && AppSlices.largeFileMinimum(["CAIRN_LARGE_FILE_LAYER_MB": "0"]) == 0)
        #expect(throws: LifecycleError.self) { try AppSlices.largeFileMinimum(["CAIRN_LARGE_FILE_LAYER_MB": "big"]) }
    }

    /// `path` as a glob matching only itself (fnmatch escapes).
    func escapeGlob(_ path: String) -> String {
        var out = ""
        for c in path {
            if c == "*" || c == "?" || c == "[" || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out
    }

    /// The slicing walk's lstats give each layer the fingerprint a fresh walk of its include
    /// set gives: links (to a directory too, not followed), nested directories, names sorted by
    /// their bytes, and a file changed after an earlier fingerprint.
    @Test func fingerprintsFromTheSlicingWalkEqualFreshOnes() throws {
        let dir = try app(["src/main.py", "src/pkg/mod.py", "vendor/lib.so", "README", "Zeta", "zz/é", "zz/e", "zz/f"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/linked", withDestinationPath: "src")
        try FileManager.default.createSymbolicLink(atPath: dir + "/dangling", withDestinationPath: "nowhere")
        let before = try Fingerprint.of(dir)
        try Data("changed".utf8).write(to: URL(fileURLWithPath: dir + "/src/main.py"))
        let sliced = try AppSlices.slicing(dir, [.init(paths: ["vendor/*"])])
        #expect(sliced.count == 2)
        for i in 0..<sliced.count {
            #expect(try sliced.fingerprint(i) == Fingerprint.of(dir, include: sliced.include(i)))
        }
        let whole = try AppSlices.slicing(dir, [])
        #expect(whole.count == 1 && whole.include(0) == nil)
        #expect(try whole.fingerprint(0) == Fingerprint.of(dir))
        #expect(try whole.fingerprint(0) != before)
    }

    /// A link to a directory above it (`current -> .`) is one entry, not a loop the walk follows
    /// until the path is too long.
    @Test func aLinkToAnAncestorIsOneEntry() throws {
        let dir = try app(["app.py"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/current", withDestinationPath: ".")
        let sets = try AppSlices.split(dir, [.init(paths: ["app.py"])])
        #expect(sets == [["app.py"], ["current"]])
    }
}

extension AppSlices {
    /// The layers' include sets (`slicing`'s), nil for the whole directory.
    static func split(_ appDirectory: String, _ slices: [LaunchFile.Slice], largeFiles: Int64 = 0) throws -> [Set<String>?] {
        let s = try slicing(appDirectory, slices, largeFiles: largeFiles)
        return (0..<s.count).map { s.include($0) }
    }
}

import CairnPlatform
import Foundation
import OCI
import Testing
import TestSupport

/// The paths in an app image's app layers (from the lifecycle metadata label), read with tar.
func appLayerPaths(_ image: String, home: String) throws -> [String] {
    let stored = try ImageStore(root: home + "/store").resolve(image)
    let label = try #require(stored.config.config?.labels?["io.buildpacks.lifecycle.metadata"])
    let metadata = try JSONSerialization.jsonObject(with: Data(label.utf8)) as! [String: Any]
    let app = (metadata["app"] as? [[String: Any]] ?? []).compactMap { ($0["sha"] as? String).flatMap(Digest.init) }
    var paths: [String] = []
    for diffID in app {
        let layer = try #require(stored.layer(diffID: diffID))
        let blob = home + "/store/blobs/sha256/" + layer.descriptor.digest.encoded
        paths += try sh("tar -tzf '\(blob)'").stdout.split(separator: "\n").map(String.init)
    }
    return paths
}

/// project.toml as pack users write it (issues 41 and 43): the builder, the build env, a group
/// with an inline-script buildpack and a builder's buildpack, and `exclude`; flags override.
@Test func projectTomlGivesTheBuilderGroupEnvAndWhatIsLeftOut() throws {
    let tmp = TempDir("project-toml")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    let app = tmp.sub("app")
    try writeFile(app + "/Procfile", "web: echo hello\n")
    for file in ["keep.txt", "secret.txt", "logs/today.log", "src/main.txt", "src/scratch.tmp", "deep/er/scratch.tmp"] {
        try FileManager.default.createDirectory(atPath: app + "/" + (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try writeFile(app + "/" + file, file + "\n")
    }
    try writeFile(app + "/project.toml", """
        [_]
        schema-version = "0.2"
        id = "io.example.hello"

        [io.buildpacks]
        builder = "\(ExampleBuilder.name)"
        exclude = ["secret.txt", "logs/", "*.tmp"]

        [[io.buildpacks.build.env]]
        name = "GREETING"
        value = "from project.toml"

        [[io.buildpacks.group]]
        id = "tests/inline"
          [io.buildpacks.group.script]
          api = "0.10"
          inline = "echo \\"inline buildpack says $GREETING\\""

        [[io.buildpacks.group]]
        id = "examples/procfile"
        """)
    let built = try cairnAt(["build", "hello", "--path", app], home: home)
    try #require(built.status == 0, "\(built.stdout)\(built.stderr)")
    #expect(built.stdout.contains("inline buildpack says from project.toml"), "\(built.stdout)")
    #expect(built.stdout.contains("tests/inline") && built.stdout.contains("examples/procfile"), "\(built.stdout)")
    #expect((built.stdout + built.stderr).contains("project.toml exclude: 4 paths left out of the workspace"), "\(built.stdout)\(built.stderr)")
    let paths = try appLayerPaths("hello", home: home).map { $0.replacingOccurrences(of: "workspace/", with: "") }
    #expect(paths.contains { $0.hasSuffix("keep.txt") } && paths.contains { $0.hasSuffix("src/main.txt") }, "\(paths)")
    for gone in ["secret.txt", "logs", "scratch.tmp"] { #expect(!paths.contains { $0.contains(gone) }, "\(gone) is in the image: \(paths)") }
    #expect(FileManager.default.fileExists(atPath: app + "/secret.txt"), "the app directory itself is untouched")

    // Flags win: --env after the file's env; --buildpack replaces the group.
    let flagged = try cairnAt(["build", "hello", "--path", app, "--env", "GREETING=from the flag"], home: home)
    #expect(flagged.stdout.contains("inline buildpack says from the flag"), "\(flagged.stdout)")
    let replaced = try cairnAt(["build", "hello", "--path", app, "--buildpack", "examples/procfile"], home: home)
    #expect(replaced.status == 0 && !replaced.stdout.contains("inline buildpack says"), "\(replaced.stdout)")
    let leftOver = (try? FileManager.default.contentsOfDirectory(atPath: home + "/builds")) ?? []
    #expect(leftOver.isEmpty, "the inline buildpack's directory is removed: \(leftOver)")

    // Without a builder anywhere: said so; a bad descriptor: named with its field.
    let bare = tmp.sub("bare")
    try writeFile(bare + "/Procfile", "web: echo hi\n")
    let none = try cairnAt(["build", "bare", "--path", bare], home: home)
    #expect(none.status != 0 && none.stderr.contains("no builder: give --builder"), "\(none.stderr)")
    try writeFile(bare + "/project.toml", "[io.buildpacks]\ninclude = [\"a\"]\nexclude = [\"b\"]\n")
    let both = try cairnAt(["build", "bare", "--path", bare, "--builder", ExampleBuilder.name], home: home)
    #expect(both.status != 0 && both.stderr.contains("project.toml") && both.stderr.contains("mutually exclusive"), "\(both.stderr)")
}

/// gitignore's rules as project.toml's include/exclude use them, on a tree of files.
@Test func sourceFiltersFollowGitignoreRules() throws {
    let tmp = TempDir("source-filter")
    func tree() throws -> String {
        let root = tmp.sub(UUID().uuidString)
        for file in ["a.txt", "b.log", "docs/x.md", "docs/keep.log", "src/app.py", "src/app_test.py", "src/sub/deep.py", "build/out.o", "sub/build/out.o"] {
            try FileManager.default.createDirectory(atPath: root + "/" + (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try writeFile(root + "/" + file, "")
        }
        return root
    }
    func left(_ mode: SourceFilter.Mode, _ patterns: [String]) throws -> [String] {
        let root = try tree()
        _ = try SourceFilter(mode: mode, patterns: patterns, file: "project.toml").apply(to: root)
        return try sh("cd '\(root)' && find . -type f | sed 's|^\\./||' | sort").stdout.split(separator: "\n").map(String.init)
    }
    // Unanchored names match at any depth; `/build` only at the root; `!` re-includes; `#` comments.
    #expect(try left(.exclude, ["*.log", "!docs/keep.log", "/build", "# a comment"])
            == ["a.txt", "docs/keep.log", "docs/x.md", "src/app.py", "src/app_test.py", "src/sub/deep.py", "sub/build/out.o"])
    #expect(try left(.exclude, ["build/"]) == ["a.txt", "b.log", "docs/keep.log", "docs/x.md", "src/app.py", "src/app_test.py", "src/sub/deep.py"])
    #expect(try left(.exclude, ["src/**/*.py", "!src/app.py"]) == ["a.txt", "b.log", "build/out.o", "docs/keep.log", "docs/x.md", "src/app.py", "sub/build/out.o"])
    // include keeps only what matches (with the directories above it).
    #expect(try left(.include, ["src/", "!*_test.py", "a.txt"]) == ["a.txt", "src/app.py", "src/sub/deep.py"])
    #expect(try left(.include, ["**/out.o"]) == ["build/out.o", "sub/build/out.o"])
    #expect(throws: (any Error).self) { try SourceFilter(mode: .exclude, patterns: ["/"], file: "project.toml") }
}

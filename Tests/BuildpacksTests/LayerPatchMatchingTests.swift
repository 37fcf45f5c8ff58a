import Buildpacks
import Foundation
import Testing

/// The rules that pick the layers a patch applies to, called directly.
@Suite struct LayerPatchMatchingTests {
    let metadata: LifecycleMetadataLabel = {
        func layer(_ sha: String, _ data: [String: AnyTOML]?) -> LifecycleMetadataLabel.Layer {
            .init(sha: sha, data: data, build: false, launch: true, cache: false)
        }
        return LifecycleMetadataLabel(buildpacks: [
            .init(key: "example/node", version: "1.0.0", layers: [
                "node": layer("sha256:a", ["artifact": .table(["version": .string("24.7.1"), "build": .integer(42)]),
                                          "io.buildpacks.rebasable": .bool(true), "lts": .bool(true), "ratio": .float(1.5)]),
                "deps": layer("sha256:b", nil),
            ]),
            .init(key: "example/go", version: "2.0.0", layers: ["go": layer("sha256:c", ["version": .string("1.22.0")])]),
        ])
    }()

    func patch(_ bp: String, _ layer: String, _ data: [String: AnyTOML]? = nil) -> LayerPatchFile.Patch {
        .init(buildpack: bp, layer: layer, data: data, patchImage: "p")
    }

    func names(_ p: LayerPatchFile.Patch) -> [String] {
        LayerPatchMatching.matchingLayers(p, in: metadata).map { "\($0.buildpack):\($0.layer)" }
    }

    @Test func globsPickBuildpacksAndLayersInAFixedOrder() {
        #expect(names(patch("example/*", "*")) == ["example/node:deps", "example/node:node", "example/go:go"])
        #expect(names(patch("example/n?de", "n*")) == ["example/node:node"])
        #expect(names(patch("other/*", "*")).isEmpty)
    }

    @Test func dataSelectorsFollowDotPathsAndCompareScalarsAsText() {
        #expect(names(patch("example/node", "*", ["artifact.version": .string("24.7.*")])) == ["example/node:node"])
        #expect(names(patch("example/node", "*", ["artifact.version": .string("24.8.*")])).isEmpty)
        #expect(names(patch("example/node", "*", ["artifact.build": .integer(42)])) == ["example/node:node"])
        #expect(names(patch("example/node", "*", ["artifact.build": .string("4*")])) == ["example/node:node"])
        #expect(names(patch("example/node", "*", ["artifact.build": .integer(43)])).isEmpty)
        #expect(names(patch("example/node", "*", ["lts": .bool(true), "ratio": .float(1.5)])) == ["example/node:node"])
        #expect(names(patch("example/node", "*", ["lts": .string("false")])).isEmpty)
        // A key with dots in it is found as well as a nested path; a missing path never matches.
        #expect(names(patch("example/node", "*", ["io.buildpacks.rebasable": .bool(true)])) == ["example/node:node"])
        #expect(names(patch("example/*", "*", ["missing.key": .string("*")])).isEmpty)
        #expect(names(patch("example/node", "*", ["artifact": .string("*")])).isEmpty, "tables are not scalars")
    }

    @Test func theOptInKeyMarksALayerPatchable() {
        #expect(LayerPatchMatching.isRebasable(["io.buildpacks.rebasable": .bool(true)]))
        #expect(!LayerPatchMatching.isRebasable(["io.buildpacks.rebasable": .bool(false)]))
        #expect(!LayerPatchMatching.isRebasable(nil))
    }

    @Test func versionsCompareNumerically() {
        #expect(LayerPatchMatching.isNewer("1.10.0", than: "1.9.3"))
        #expect(LayerPatchMatching.isNewer("1.0.1", than: "1.0.0"))
        #expect(LayerPatchMatching.isNewer("1.0.0", than: "1.0.0-rc1"))
        #expect(!LayerPatchMatching.isNewer("1.0.0", than: "1.0.0"))
        #expect(!LayerPatchMatching.isNewer("1.0.0", than: "1.0.1"))
        #expect(!LayerPatchMatching.isNewer("latest", than: "1.0.0"))
    }

    @Test func thePatchesFileIsReadWithClearErrors() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/patches-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = dir + "/good.json"
        try Data("""
            {"patches": [{"buildpack": "example/node", "layer": "dist", "data": {"artifact.version": "24.7.*"},
                          "patch-image": "registry.example.com/patches/node:24.7.2",
                          "patch-image.mirrors": ["mirror.example.com/patches/node:24.7.2"]}],
             "launcher": {"must-match-sha": ["sha256:1"], "patch-image": "l:1"}}
            """.utf8).write(to: URL(fileURLWithPath: good))
        let file = try LayerPatchFile.read(good)
        #expect(file.patches[0].images == ["registry.example.com/patches/node:24.7.2", "mirror.example.com/patches/node:24.7.2"])
        #expect(file.patches[0].data?["artifact.version"] == .string("24.7.*"))
        #expect(file.launcher?.mustMatchSHA == ["sha256:1"])

        let bad = dir + "/bad.json"
        try Data(#"{"patches": [{"buildpack": "x", "layer": ""}]}"#.utf8).write(to: URL(fileURLWithPath: bad))
        #expect(throws: LayerPatchError.self) { try LayerPatchFile.read(bad) }
        do { _ = try LayerPatchFile.read(bad) } catch { #expect(error.description.contains(bad)) }
        try Data(#"{"patches": [{"buildpack": "x", "layer": "", "patch-image": "p"}]}"#.utf8).write(to: URL(fileURLWithPath: bad))
        do { _ = try LayerPatchFile.read(bad) } catch { #expect(error.description.contains("patches[0].layer")) }
    }
}

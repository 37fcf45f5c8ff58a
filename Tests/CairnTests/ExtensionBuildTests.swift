import Foundation
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
    try writeFile(tmp.path + "/builder.toml", """
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
}

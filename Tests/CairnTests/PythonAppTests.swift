import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// examples/apps/flask-hello on the Debian stack: the python-runtime extension brings python3
/// into the build and run images, the Python buildpack installs Flask with pip into a
/// virtualenv layer; the app answers over HTTP; a rebuild without changes runs no pip and gives
/// the same image; the SBOM names Flask. pip reaches PyPI through the host's trust store.
@Test(.enabled(if: geteuid() == 0 && toolAvailable("debootstrap") && toolAvailable("curl"), "a Debian stack needs root and debootstrap"))
func flaskAppOnTheDebianStack() throws {
    try requireStaticBinaries()
    let tmp = TempDir("flask")
    let home = tmp.sub("home")
    _ = try sh("mkdir -p '\(home)' && cp -a '\(try DebianStack.shared().store)' '\(home)/store'")
    let made = try cairnAt(["builder", "create", "debian-builder", "--config", packageRoot + "/examples/builder-debian.toml"], home: home)
    try #require(made.status == 0, "\(made.stderr)")
    let build = ["build", "flask", "--path", packageRoot + "/examples/apps/flask-hello", "--builder", "debian-builder",
                 "--ca-certs", "/etc/ssl/certs/ca-certificates.crt"]
    let first = try cairnAt(build, home: home)
    try #require(first.status == 0, "\(first.stdout)\n\(first.stderr)")
    #expect(first.stdout.contains("pass: examples/python-runtime@0.1.0 (extension)"))
    #expect(first.stdout.contains("pip install -r requirements.txt"), "\(first.stdout)")

    let body = try servedPages("flask", home: home, paths: ["/"])[0]
    #expect(body == "Hello from Flask, built by Cairn\n", "served: \(body)")

    let second = try cairnAt(build, home: home)
    try #require(second.status == 0, "\(second.stdout)\n\(second.stderr)")
    #expect(second.stdout.contains("Reusing the virtualenv layer: requirements unchanged, pip not run"), "\(second.stdout)")
    #expect(!second.stdout.contains("pip install"))
    let digest = { (r: RunResult) in r.stdout.split(separator: "\n").last.map(String.init) ?? "" }
    #expect(digest(first) == digest(second) && digest(first).hasPrefix("sha256:"), "an unchanged rebuild gives the same image")
    #expect(second.stderr.contains("Reusing the extended build image"), "\(second.stderr)")

    let sbom = try cairnAt(["sbom", "flask"], home: home)
    #expect(sbom.status == 0)
    #expect(sbom.stdout.contains("Flask") && sbom.stdout.contains("3.0.3"), "\(sbom.stdout)")
}

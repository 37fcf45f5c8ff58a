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
    #expect(first.stdout.contains("Installing with pip-requirements") && first.stdout.contains("install --disable-pip-version-check"), "\(first.stdout)")

    let body = try servedPages("flask", home: home, paths: ["/"])[0]
    #expect(body == "Hello from Flask, built by Cairn\n", "served: \(body)")

    let second = try cairnAt(build, home: home)
    try #require(second.status == 0, "\(second.stdout)\n\(second.stderr)")
    #expect(second.stdout.contains("Reusing the virtualenv layer: requirements.txt unchanged, no installer run"), "\(second.stdout)")
    #expect(!second.stdout.contains("Installing with"))
    let digest = { (r: RunResult) in r.stdout.split(separator: "\n").last.map(String.init) ?? "" }
    #expect(digest(first) == digest(second) && digest(first).hasPrefix("sha256:"), "an unchanged rebuild gives the same image")
    #expect(second.stderr.contains("Reusing the extended build image"), "\(second.stderr)")

    let sbom = try cairnAt(["sbom", "flask"], home: home)
    #expect(sbom.status == 0)
    #expect(sbom.stdout.contains("Flask") && sbom.stdout.contains("3.0.3"), "\(sbom.stdout)")
}

/// Issue 41: Python apps laid out as their authors publish them, on the Debian stack — Poetry
/// (`package-mode = false`, poetry.lock, a dev group), Pipenv (Pipfile.lock, a WSGI callable and
/// no Procfile; a Pipfile alone, locked at build by pipenv; a lock older than its Pipfile refused), uv (uv.lock, an ASGI app), a standard-library script, Django (collectstatic).
/// Each is built, served over loopback, and rebuilt with every installer's network cut off
/// (proxies and indexes on a closed port): the virtualenv comes back from the cache and no
/// installer runs. Dev dependencies (iniconfig) are in no image. A Python version the stack
/// cannot give fails before anything is installed.
@Test(.enabled(if: geteuid() == 0 && toolAvailable("debootstrap") && toolAvailable("curl"), "a Debian stack needs root and debootstrap"))
func pythonAppsAsTheirAuthorsPublishThem() throws {
    try requireStaticBinaries()
    let tmp = TempDir("python-apps")
    let home = tmp.sub("home")
    _ = try sh("mkdir -p '\(home)' && cp -a '\(try DebianStack.shared().store)' '\(home)/store'")
    let made = try cairnAt(["builder", "create", "debian-builder", "--config", packageRoot + "/examples/builder-debian.toml"], home: home)
    try #require(made.status == 0, "\(made.stderr)")
    let apps = fixturesRoot + "/python-apps/"
    func build(_ name: String, _ dir: String, env: [String] = []) throws -> RunResult {
        try cairnAt(["build", name, "--path", dir, "--builder", "debian-builder", "--ca-certs", "/etc/ssl/certs/ca-certificates.crt"]
                    + env.flatMap { ["--env", $0] }, home: home)
    }
    let offline = ["HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "https_proxy=http://127.0.0.1:9",
                   "PIP_INDEX_URL=http://127.0.0.1:9/simple", "UV_INDEX_URL=http://127.0.0.1:9/simple", "UV_OFFLINE=1"]
    let layouts: [(app: String, installed: String, page: String, package: String)] = [
        ("poetry", "poetry sync --only main --no-root", "Hello from Poetry, built by Cairn\n", "gunicorn"),
        ("pipenv", "Pipfile.lock: 1 packages of its default section", "Hello from Pipenv, built by Cairn\n", "gunicorn"),
        ("pipenv-unlocked", "pipenv/bin/pipenv lock", "Hello from Pipenv, built by Cairn\n", "gunicorn"),
        ("uv", "uv sync --frozen --no-dev", "Hello from uv, built by Cairn\n", "uvicorn"),
        ("script", "Installing with none", "Hello from a plain script, built by Cairn\n", ""),
        ("django", "Django collectstatic: 1 static file copied", "Hello from Django, built by Cairn\n", "Django"),
    ]
    for layout in layouts {
        let first = try build(layout.app, apps + layout.app)
        try #require(first.status == 0, "\(layout.app): \(first.stdout)\n\(first.stderr)")
        #expect(first.stdout.contains("pass: examples/python@"), "\(layout.app) is detected as Python: \(first.stdout)")
        #expect(first.stdout.contains(layout.installed), "\(layout.app): \(first.stdout)")
        let pages = try servedPages(layout.app, home: home, paths: layout.app == "django" ? ["/", "/collected.css"] : ["/"])
        #expect(pages[0] == layout.page, "\(layout.app) served: \(pages[0])")
        if layout.app == "django" { #expect(pages[1] == "body { color: teal; }\n", "collectstatic ran at build: \(pages[1])") }

        let again = try build(layout.app, apps + layout.app, env: offline)
        try #require(again.status == 0, "\(layout.app), rebuilt offline: \(again.stdout)\n\(again.stderr)")
        #expect(again.stdout.contains("Reusing the virtualenv layer"), "\(layout.app): \(again.stdout)")
        #expect(!again.stdout.contains("Installing with"), "\(layout.app): no installer runs on an unchanged rebuild")
        let digest = { (r: RunResult) in r.stdout.split(separator: "\n").last.map(String.init) ?? "" }
        #expect(digest(first) == digest(again), "\(layout.app): an unchanged rebuild gives the same image")

        let sbom = try cairnAt(["sbom", layout.app], home: home)
        #expect(sbom.status == 0 && (layout.package.isEmpty || sbom.stdout.contains(layout.package)), "\(layout.app): \(sbom.stdout)")
        #expect(!sbom.stdout.contains("iniconfig"), "\(layout.app): a dev dependency is in the image: \(sbom.stdout)")
    }

    /// A copy of a fixture app, changed by `edit` (a shell command run in it), built: it must fail; what it said.
    func refused(_ name: String, from fixture: String, edit: String) throws -> String {
        let dir = tmp.sub(name)
        _ = try sh("cp -a '\(apps)\(fixture)/.' '\(dir)/' && cd '\(dir)' && \(edit)")
        let r = try build(name, dir)
        #expect(r.status != 0, "\(name): \(r.stdout)")
        return r.stdout + r.stderr
    }
    // A version the stack's Python (Debian 12: 3.11) cannot satisfy fails before installing anything.
    let said = try refused("newer", from: "poetry", edit: "echo 3.14 > .python-version")
    #expect(said.contains(".python-version asks for Python 3.14; this stack has Python 3.11") && said.contains("--debian trixie"), "\(said)")
    #expect(!said.contains("Installing with"), "\(said)")

    // A Pipfile changed after its lock was made is refused, as `pipenv install --deploy` does.
    let told = try refused("stale", from: "pipenv", edit: "sed -i 's/^gunicorn = .*/gunicorn = \"==23.0.0\"/' Pipfile")
    #expect(told.contains("Pipfile.lock (97c5b5) is out of date") && told.contains("Run `pipenv lock`"), "\(told)")
    #expect(!told.contains("install --disable-pip-version-check"), "nothing is installed from a stale lock: \(told)")
}

/// What the refusal above advises, done: a stack on Debian 13 (trixie, Python 3.13) built with
/// `cairn stack create --debian trixie`, the example builder over it, and an app asking for 3.13
/// built with Poetry and served.
@Test(.enabled(if: geteuid() == 0 && toolAvailable("debootstrap") && toolAvailable("curl"), "a Debian stack needs root and debootstrap"))
func aPythonTheStackLacksBuildsOnANewerDebianRelease() throws {
    try requireStaticBinaries()
    let tmp = TempDir("python-trixie")
    let home = tmp.sub("home")
    let stack = try cairnAt(["stack", "create", "trixie", "--debian", "trixie", "--quiet"], home: home)
    try #require(stack.status == 0, "\(stack.stderr)")
    let config = try String(contentsOfFile: packageRoot + "/examples/builder-debian.toml", encoding: .utf8)
        .replacingOccurrences(of: "uri = \"", with: "uri = \"\(packageRoot)/examples/")
        .replacingOccurrences(of: "debian/build:latest", with: "trixie/build:latest")
        .replacingOccurrences(of: "debian/run:latest", with: "trixie/run:latest")
    try writeFile(tmp.path + "/builder.toml", config)
    let made = try cairnAt(["builder", "create", "trixie-builder", "--config", tmp.path + "/builder.toml"], home: home)
    try #require(made.status == 0, "\(made.stderr)")
    let app = tmp.sub("app")
    _ = try sh("cp -a '\(fixturesRoot)/python-apps/poetry/.' '\(app)/' && echo 3.13 > '\(app)/.python-version'")
    let built = try cairnAt(["build", "newer", "--path", app, "--builder", "trixie-builder", "--ca-certs", "/etc/ssl/certs/ca-certificates.crt"], home: home)
    try #require(built.status == 0, "\(built.stdout)\n\(built.stderr)")
    #expect(built.stdout.contains("Python buildpack: Python 3.13") && built.stdout.contains(".python-version asks for 3.13"), "\(built.stdout)")
    let page = try servedPages("newer", home: home, paths: ["/"])[0]
    #expect(page == "Hello from Poetry, built by Cairn\n", "served: \(page)")
}

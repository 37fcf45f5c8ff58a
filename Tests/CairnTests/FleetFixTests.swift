import Foundation
import OCI
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A fleet in a real registry for `cairn fleet fix`: 52 app images in 3 repositories, all on run
/// image v1 (libfoo1 1.0-1, DSA-9999-1), the team-a ones with Flask 2.2.0 (GHSA-m2qf-hxjv-5gpq);
/// run image v2 (libfoo1 1.0-2) pushed to the same tag and a Flask 2.3.3 build as the patch source.
/// Each image is a distinct manifest (a label per image) over the same layers.
final class FleetFixture: @unchecked Sendable {
    let tmp = TempDir("fleet")
    let home: String
    let registry: LocalRegistry
    var host: String { registry.host }
    let repositories: [String]
    var tags: [String] = []

    init() throws {
        home = tmp.path + "/home"
        try ExampleBuilder.make(home: home)
        let registry = try LocalRegistry(proxy: true)
        self.registry = registry
        repositories = ["team-a/web", "team-b/api", "team-c/worker"].map { "\(registry.host)/\($0)" }
    }

    var insecure: [String] { ["--insecure-registry", host] }

    func cairn(_ args: [String]) throws -> RunResult {
        let r = try cairnAt(args, home: home)
        guard r.status == 0 else { throw TestSupportError("cairn \(args.joined(separator: " ")): \(r.stdout)\(r.stderr)") }
        return r
    }

    func runImage(_ version: String) throws {
        let dir = tmp.path + "/run-" + version
        try FileManager.default.createDirectory(atPath: dir + "/var/lib/dpkg/status.d", withIntermediateDirectories: true)
        try writeFile(dir + "/var/lib/dpkg/status.d/libfoo1", "Package: libfoo1\nSource: foo\nVersion: \(version)\nStatus: install ok installed\nArchitecture: amd64\n")
        _ = try cairn(["import", dir, "tiny/run:latest", "--base", "tiny/run:latest"])
        _ = try cairn(["push", "tiny/run:latest", "\(host)/tiny/run:latest"] + insecure)
    }

    func app(_ name: String, flask: String) throws {
        let dir = tmp.path + "/" + name
        try writeFile(dir + "/requirements.txt", "flask==\(flask)\n")
        _ = try cairn(["build", name, "--path", dir, "--builder", ExampleBuilder.name, "--buildpack", fixturesRoot + "/buildpacks/flask"])
        _ = try cairn(["push", name, "\(host)/base/\(name):1"] + insecure)
    }

    /// Builds and pushes the fleet and indexes it with the advisories.
    func make(images: Int = 52) throws {
        try runImage("1.0-1")
        try app("flask-old", flask: "2.2.0")
        try app("flask-new", flask: "2.3.3")
        // The apps name the registry's run image (a rebase onto it records that), then are pulled.
        _ = try cairn(["rebase", "--remote", "--force", "--run-image", "\(host)/tiny/run:latest", "\(host)/base/flask-old:1", "\(host)/base/flask-new:1"] + insecure)
        for name in ["flask-old", "flask-new"] { _ = try cairn(["pull", "\(host)/base/\(name):1"] + insecure) }
        let store = try ImageStore(root: home + "/store")
        for i in 0..<images {
            let repo = repositories[i % 3]
            let base = try store.resolve("\(host)/base/\(i % 3 == 0 ? "flask-old" : "flask-new"):1")
            var config = base.config
            config.config?.labels?["test.fleet/variant"] = "\(i)"
            let tag = "\(repo):v\(i)"
            _ = try store.beginWriteSession().commitManifest(config: config, layers: base.manifest.layers, reference: tag)
            _ = try cairn(["push", tag, tag] + insecure)
            tags.append(tag)
        }
        _ = try cairn(["push", "\(host)/base/flask-new:1", "\(host)/patches/flask:2.3.3"] + insecure)
        try runImage("1.0-2")
        let labels = ((try inspectJSON("tiny/run:latest", home: home)["config"] as? [String: Any])?["config"] as? [String: Any])?["Labels"] as? [String: String] ?? [:]
        let release = labels["io.buildpacks.base.distro.version"] ?? ""
        try writeFile(tmp.path + "/osv/GHSA-m2qf-hxjv-5gpq.json", """
            {"id": "GHSA-m2qf-hxjv-5gpq", "database_specific": {"severity": "HIGH"}, "affected": [{"package": {"ecosystem": "PyPI", "name": "Flask"},
              "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.3.2"}]}]}]}
            """)
        try writeFile(tmp.path + "/osv/DSA-9999-1.json", """
            {"id": "DSA-9999-1", "affected": [{"package": {"ecosystem": "Debian:\(release)", "name": "foo"},
              "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-2"}]}]}]}
            """)
        _ = try cairn(["audit", "advisories", "import", tmp.path + "/osv"])
        let everything = (repositories + ["\(host)/patches/flask", "\(host)/tiny/run"]).flatMap { ["--registry", $0] }
        _ = try cairn(["audit", "index"] + everything + insecure)
    }

    /// Each tag's manifest digest, asked of the registry itself (not through cairn or the proxy).
    func digests(_ tags: [String]) throws -> [String: String] {
        var result: [String: String] = [:]
        for tag in tags {
            let ref = try ImageReference(parsing: tag)
            let r = try run(["curl", "-sfI", "-H", "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
                             "http://\(registry.registryHost)/v2/\(ref.repository)/manifests/\(ref.tag ?? "latest")"])
            let line = r.stdout.split(whereSeparator: \.isNewline).first { $0.lowercased().hasPrefix("docker-content-digest:") }
            result[tag] = line.map { String($0.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "missing"
        }
        return result
    }

    /// Every blob the tag's manifest names is in the registry (the tag pulls whole).
    func pullsWhole(_ tag: String) throws -> Bool {
        let ref = try ImageReference(parsing: tag)
        let base = "http://\(registry.registryHost)/v2/\(ref.repository)"
        let m = try run(["curl", "-sf", "-H", "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
                         "\(base)/manifests/\(ref.tag ?? "latest")"])
        guard m.status == 0, let manifest = try JSONSerialization.jsonObject(with: m.stdoutData) as? [String: Any] else { return false }
        let blobs = [manifest["config"] as? [String: Any]] + ((manifest["layers"] as? [[String: Any]]) ?? []).map { $0 }
        for case let blob? in blobs {
            guard let digest = blob["digest"] as? String, try run(["curl", "-sfI", "\(base)/blobs/\(digest)"]).status == 0 else { return false }
        }
        return true
    }

    /// Starts `cairn args`, SIGKILLs it after `delay` seconds (a campaign runs in one process);
    /// true when it was still running then. What it printed is kept in `log`.
    func killed(_ args: [String], after delay: Double, log: String) throws -> Bool {
        let environment = ["CAIRN_HOME": home, "CAIRN_LIFECYCLE_BIN": staticBin, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        return try CrashSafetyTests.killed([cairnBinary] + args, environment: environment, after: delay, trace: home, log: log)
    }

    func vulnerableImages() throws -> Set<String> {
        let json = try JSONSerialization.jsonObject(with: cairn(["audit", "vulns", "--format", "json"]).stdoutData) as? [[String: Any]] ?? []
        return Set(json.compactMap { $0["image"] as? String }.filter { tags.contains($0) })
    }
}

/// `cairn fleet fix` (issue 38) over a real registry: the dry run changes nothing, a canary whose
/// patch image lacks the layer halts the campaign with every digest as before, a campaign killed
/// with SIGKILL at ten points and resumed ends exactly where an uninterrupted one does (same
/// manifests), never moves a tag twice, uploads only configs, leaves every tag pulling whole and
/// the fleet free of both advisories; the rollback puts every old digest back.
@Test(.requires("docker-registry"))
func aFleetCampaignFixesRegistryImagesInCheckedResumableWaves() throws {
    let fleet = try FleetFixture()
    defer { fleet.registry.stop() }
    try fleet.make()
    let before = try fleet.digests(fleet.tags)
    #expect(try fleet.vulnerableImages() == Set(fleet.tags))
    let scope = fleet.repositories.flatMap { ["--registry", $0] } + fleet.insecure

    let dry = try fleet.cairn(["fleet", "fix", "--dry-run"] + scope)
    #expect(dry.stdout.contains("52 images: 18 rebase+patch, 34 rebase; 0 unknown"), "\(dry.stdout)")
    #expect(dry.stdout.contains("\(fleet.host)/team-a/web:v0 ") && dry.stdout.contains("tests/flask:site-packages from \(fleet.host)/"), "\(dry.stdout)")
    #expect(try fleet.digests(fleet.tags) == before, "the dry run changed a tag")

    // One plan for every campaign below: the same inputs.
    let planPath = fleet.tmp.path + "/plan.json"
    try fleet.cairn(["audit", "plan", "--format", "json"]).stdoutData.write(to: URL(fileURLWithPath: planPath))
    try canaryFailureHalts(fleet, plan: planPath, before: before)

    _ = try fleet.registry.proxy("/__resetRate")
    let reference = try fleet.cairn(["fleet", "fix", "--plan", planPath, "--tag-suffix=-ref", "--journal", fleet.tmp.path + "/ref"] + scope)
    let unpaced = try fleet.registry.proxy("/__stats")["maxPerSecond"] ?? 0
    #expect(reference.stdout.contains("52 images in ") && reference.stdout.contains("52 fixed"), "\(reference.stdout)")
    #expect(try fleet.digests(fleet.tags) == before, "--tag-suffix moved an original tag")
    print("fleet: uninterrupted: " + (reference.stdout.split(separator: "\n").last.map(String.init) ?? "") + "; at most \(unpaced) requests in a second")

    _ = try fleet.registry.proxy("/__reset")
    let journal = fleet.tmp.path + "/campaign"
    // --rate keeps the campaign slow enough (it asks the registry little per image) for ten kills.
    let args = ["fleet", "fix", "--plan", planPath, "--journal", journal, "--rate", "20", "--jobs", "4"] + scope
    var kills = 0, delay = 0.6
    let log = fleet.tmp.path + "/killed.log"
    while kills < 10 {
        let t0 = Date()
        guard try fleet.killed(args, after: delay, log: log) else {
            Issue.record("the campaign ended by itself after \(kills) kills: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            break
        }
        kills += 1
        let lines = (try? String(contentsOfFile: journal + "/journal.jsonl", encoding: .utf8))?.split(separator: "\n").count ?? 0
        print("fleet: killed after \(delay) s (\(Date().timeIntervalSince(t0)) s) with \(lines) journal lines")
        delay += 0.25
    }
    #expect(kills >= 10, "the campaign ended before ten kills")
    _ = try fleet.registry.proxy("/__resetRate")
    let resumed = try fleet.cairn(args)
    #expect(resumed.stdout.contains("52 images in "), "\(resumed.stdout)")
    let stats = try fleet.registry.proxy("/__stats")
    // --rate 20 under load (4 jobs, waves, checks and re-indexing): no second saw more than 20
    // requests, give or take the jitter of requests sent in paced slots. The unpaced run above
    // shows the check can fail.
    #expect((stats["maxPerSecond"] ?? .max) <= 22, "--rate 20 was exceeded: \(stats)")
    #expect(unpaced > 22, "the unpaced campaign made at most \(unpaced) requests in a second: this check could not fail")
    print("fleet: resumed: " + (resumed.stdout.split(separator: "\n").last.map(String.init) ?? "") + "; proxy: \(stats)")
    #expect((stats["uploadedBlobBytes"] ?? .max) < 52 * 20_000, "more than configs were uploaded: \(stats)")

    let after = try fleet.digests(fleet.tags)
    let references = try fleet.digests(fleet.tags.map { $0 + "-ref" })
    for tag in fleet.tags {
        #expect(after[tag] != before[tag] && after[tag] == references[tag + "-ref"], "\(tag): \(after[tag] ?? "") vs \(references[tag + "-ref"] ?? "")")
        #expect(try fleet.pullsWhole(tag), "\(tag) names a missing blob")
    }
    let events = try String(contentsOfFile: journal + "/journal.jsonl", encoding: .utf8).split(separator: "\n")
        .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    let moves = Dictionary(grouping: events.filter { $0["event"] as? String == "tagged" }, by: { $0["image"] as? String ?? "" })
    #expect(moves.count == 52 && moves.values.allSatisfy { $0.count == 1 }, "a tag moved twice: \(moves.filter { $0.value.count > 1 }.keys)")
    #expect(try fleet.vulnerableImages().isEmpty)

    let rollback = try fleet.cairn(["fleet", "rollback", journal] + fleet.insecure)
    #expect(rollback.stdout.contains("52 of 52 images rolled back"), "\(rollback.stdout)")
    #expect(try fleet.digests(fleet.tags) == before, "rollback did not restore every old digest")
    #expect(try fleet.vulnerableImages() == Set(fleet.tags), "the inventory was not re-indexed after the rollback")
}

/// A plan whose first image's patch image lacks the layer: the canary fails, the campaign halts,
/// no tag moved.
func canaryFailureHalts(_ fleet: FleetFixture, plan: String, before: [String: String]) throws {
    var steps = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: plan))) as! [[String: Any]]
    let i = try #require(steps.firstIndex { !(($0["patches"] as? [[String: Any]]) ?? []).isEmpty })
    var broken = steps.remove(at: i)
    broken["patches"] = ((broken["patches"] as? [[String: Any]]) ?? []).map { p in
        var p = p
        p["patch-image"] = "\(fleet.host)/tiny/run:latest"
        return p
    }
    steps.insert(broken, at: 0)
    let badPlan = fleet.tmp.path + "/bad-plan.json"
    try JSONSerialization.data(withJSONObject: steps).write(to: URL(fileURLWithPath: badPlan))
    let r = try cairnAt(["fleet", "fix", "--plan", badPlan, "--journal", fleet.tmp.path + "/bad", "--canary", "1"]
                        + fleet.repositories.flatMap { ["--registry", $0] } + fleet.insecure, home: fleet.home)
    #expect(r.status == 1 && r.stderr.contains("campaign halted: wave 1 (canary): 1 of 1 images failed"), "\(r.stdout)\(r.stderr)")
    #expect(try fleet.digests(fleet.tags) == before, "a tag moved in a halted campaign")
}

/// `cairn fleet fix` on store images: an app on run image v1 with Flask 2.2.0 is rebased onto v2
/// and patched from a Flask 2.3.3 build in one campaign; the inventory then has no finding, the
/// patched image runs the new Flask, and the rollback puts the old digest back.
@Test func aFleetCampaignFixesStoreImages() throws {
    let tmp = TempDir("fleet-store")
    let home = tmp.path + "/home"
    try ExampleBuilder.make(home: home)
    func cairn(_ args: [String]) throws -> RunResult {
        let r = try cairnAt(args, home: home)
        guard r.status == 0 else { throw TestSupportError("cairn \(args.joined(separator: " ")): \(r.stdout)\(r.stderr)") }
        return r
    }
    func runImage(_ version: String) throws {
        let dir = tmp.path + "/run-" + version
        try writeFile(dir + "/var/lib/dpkg/status.d/libfoo1", "Package: libfoo1\nSource: foo\nVersion: \(version)\nStatus: install ok installed\nArchitecture: amd64\n")
        _ = try cairn(["import", dir, "tiny/run:latest", "--base", "tiny/run:latest"])
    }
    func app(_ name: String, flask: String) throws {
        try writeFile(tmp.path + "/" + name + "/requirements.txt", "flask==\(flask)\n")
        _ = try cairn(["build", name, "--path", tmp.path + "/" + name, "--builder", ExampleBuilder.name, "--buildpack", fixturesRoot + "/buildpacks/flask"])
    }
    try runImage("1.0-1")
    try app("old-flask", flask: "2.2.0")
    _ = try cairn(["audit", "index"])
    try runImage("1.0-2")
    try app("new-flask", flask: "2.3.3")
    let release = (((try inspectJSON("tiny/run:latest", home: home)["config"] as? [String: Any])?["config"] as? [String: Any])?["Labels"] as? [String: String])?["io.buildpacks.base.distro.version"] ?? ""
    try writeFile(tmp.path + "/osv/flask.json", """
        {"id": "GHSA-m2qf-hxjv-5gpq", "affected": [{"package": {"ecosystem": "PyPI", "name": "flask"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.3.2"}]}]}]}
        """)
    try writeFile(tmp.path + "/osv/dsa.json", """
        {"id": "DSA-9999-1", "affected": [{"package": {"ecosystem": "Debian:\(release)", "name": "foo"},
          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-2"}]}]}]}
        """)
    _ = try cairn(["audit", "advisories", "import", tmp.path + "/osv"])
    _ = try cairn(["audit", "index"])
    let before = try #require(inspectJSON("old-flask", home: home)["digest"] as? String)
    // What scripts read is what docs/schemas says (the dry run, the result, the journal, rollback).
    func validate(_ schema: String, _ json: String, lines: Bool = false) throws {
        let file = tmp.path + "/check-" + schema
        try writeFile(file, json)
        let r = try sh("python3 \(fixturesRoot)/validate_json.py \(packageRoot)/docs/schemas \(schema) \(file)\(lines ? " --lines" : "")", cwd: tmp.path)
        #expect(r.status == 0 && r.stdout.contains("valid:"), "\(schema): \(r.stdout)\(r.stderr)")
    }
    try validate("fleet-dry-run.schema.json", try cairn(["fleet", "fix", "--dry-run", "--format", "json"]).stdout)
    let fixed = try cairn(["fleet", "fix", "--journal", tmp.path + "/journal"])
    #expect(fixed.stdout.contains("old-flask:latest: fixed (rebase+patch)") && fixed.stdout.contains("1 fixed"), "\(fixed.stdout)")
    let vulns = try JSONSerialization.jsonObject(with: cairn(["audit", "vulns", "--format", "json"]).stdoutData) as? [Any]
    #expect(vulns?.isEmpty == true, "\(String(describing: vulns))")
    #expect(try cairn(["run", "old-flask"]).stdout.contains("__version__ = \"2.3.3\""))
    let after = try #require(inspectJSON("old-flask", home: home)["digest"] as? String)
    #expect(try cairn(["images", "--all"]).stdout.contains("old-flask:sha256-\(after.dropFirst(7)).build-sbom"), "the build SBOM went with the fix")
    let again = try cairn(["fleet", "fix", "--journal", tmp.path + "/journal", "--format", "json"])
    #expect(again.stdout.contains("\"done-before\""), "a finished campaign ran again: \(again.stdout)")
    try validate("fleet-result.schema.json", again.stdout)
    try validate("fleet-journal-event.schema.json", try String(contentsOfFile: tmp.path + "/journal/journal.jsonl", encoding: .utf8), lines: true)
    // A prune between the campaign and its rollback keeps the old manifest (no name reaches it
    // now): the campaign pinned it for as long as its journal is there.
    _ = try cairn(["prune"])
    let rollback = try cairn(["fleet", "rollback", tmp.path + "/journal", "--format", "json"])
    #expect(rollback.stdout.contains("\"rolled-back\""), "\(rollback.stdout)")
    try validate("fleet-rollback.schema.json", rollback.stdout)
    #expect(try inspectJSON("old-flask", home: home)["digest"] as? String == before)
    #expect(try cairn(["run", "old-flask"]).stdout.contains("__version__ = \"2.2.0\""), "the old image is whole")
    #expect(try cairn(["store", "verify"]).stdout.contains(" 0 problems"))
    // Without the journal the pin goes with the next prune.
    let index = home + "/store/index.json"
    #expect(try String(contentsOfFile: index, encoding: .utf8).contains("dev.cairn.pinned-by"))
    try FileManager.default.removeItem(atPath: tmp.path + "/journal")
    _ = try cairn(["prune"])
    #expect(try !String(contentsOfFile: index, encoding: .utf8).contains("dev.cairn.pinned-by"))
}

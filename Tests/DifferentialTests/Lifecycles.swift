import Foundation
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The reference lifecycle (buildpacks/lifecycle v0.21.14, `../shared/reference/`), unpacked once
/// per test process, and Cairn's static lifecycle and launcher laid out the same way: a directory
/// with `lifecycle`, `launcher` and a link per phase. Both are run as this uid (the reference
/// refuses root, and platforms run detector and builder as the build image's user).
let differentialUser = 1000

struct LifecycleUnderTest: Sendable {
    let name: String
    let directory: String
    func phase(_ name: String) -> String { directory + "/" + name }
    var launcher: String { directory + "/launcher" }
}

enum Lifecycles {
    static let referenceTarball = packageRoot + "/../shared/reference/lifecycle-v0.21.14+linux.x86-64.tgz"
    static let phases = ["analyzer", "detector", "restorer", "extender", "builder", "exporter", "rebaser", "creator"]

    /// Both lifecycles, or why they cannot be had (a missing tarball or static build is an error:
    /// the suite is part of scripts/test and must not pass by skipping).
    static let pair: Result<(reference: LifecycleUnderTest, cairn: LifecycleUnderTest), TestSupportError> = {
        do {
            try requireStaticBinaries()
            let root = NSTemporaryDirectory() + "cairn-differential-\(getpid())"
            _ = try? sh("rm -rf '\(root)'")
            try FileManager.default.createDirectory(atPath: root + "/cairn", withIntermediateDirectories: true)
            let reference = try unpackReference(into: root + "/reference")
            for binary in ["lifecycle", "launcher"] {
                try FileManager.default.copyItem(atPath: staticBin + "/" + binary, toPath: root + "/cairn/" + binary)
            }
            for phase in phases {
                try FileManager.default.createSymbolicLink(atPath: root + "/cairn/" + phase, withDestinationPath: "lifecycle")
            }
            _ = try sh("chmod -R a+rX '\(root)'")
            atexit { _ = try? sh("rm -rf '\(NSTemporaryDirectory())cairn-differential-\(getpid())'") }
            return .success((reference, LifecycleUnderTest(name: "cairn", directory: root + "/cairn")))
        } catch let e as TestSupportError {
            return .failure(e)
        } catch {
            return .failure(TestSupportError("\(error)"))
        }
    }()

    /// Unpacks the release tarball after checking it against the digest beside it.
    static func unpackReference(into dir: String) throws -> LifecycleUnderTest {
        guard FileManager.default.fileExists(atPath: referenceTarball) else {
            throw TestSupportError("\(referenceTarball) is missing: the differential suite needs ../shared/reference beside the clone")
        }
        let want = try String(contentsOfFile: referenceTarball + ".sha256", encoding: .utf8).split(separator: " ").first.map(String.init) ?? ""
        let got = try run(["sha256sum", referenceTarball]).stdout.split(separator: " ").first.map(String.init) ?? ""
        guard !want.isEmpty, want == got else {
            throw TestSupportError("\(referenceTarball): sha256 \(got), but the .sha256 file beside it says \(want)")
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let r = try run(["tar", "-xzf", referenceTarball, "-C", dir])
        guard r.status == 0 else { throw TestSupportError("unpacking \(referenceTarball): \(r.stderr)") }
        return LifecycleUnderTest(name: "reference", directory: dir + "/lifecycle")
    }

    static func both() throws -> [LifecycleUnderTest] {
        switch pair {
        case .success(let p): return [p.reference, p.cairn]
        case .failure(let e): throw e
        }
    }
}

/// One case's directory tree at a fixed path, so that paths written into outputs are the same
/// for both lifecycles: each lifecycle gets a fresh copy of the inputs at the same place, in turn.
final class CaseRoot {
    let path: String

    /// A fresh directory whose path is all lower case: the reference parses
    /// `<layout path>@<digest>` as an image reference, which refuses upper case (`mkdtemp`'s
    /// names have it), and fails its export.
    init() {
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        var made: String
        repeat {
            made = NSTemporaryDirectory() + "cairn-diff-" + String((0..<10).map { _ in letters.randomElement()! })
        } while mkdir(made, 0o755) != 0
        chmod(made, 0o755)
        path = made
    }

    deinit { _ = try? sh("chmod -R u+rwx '\(path)' 2>/dev/null; rm -rf '\(path)'") }

    /// Empties the root (the previous lifecycle's outputs), then lays the inputs down again.
    func reset(_ setup: (CaseRoot) throws -> Void) throws {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            _ = try sh("chmod -R u+rwx '\(path)/\(entry)' && rm -rf '\(path)/\(entry)'")
        }
        try setup(self)
    }

    /// A directory the lifecycle (running as the CNB user) may write.
    @discardableResult
    func writable(_ rel: String) throws -> String {
        let p = path + "/" + rel
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        chown(p, uid_t(differentialUser), gid_t(differentialUser))
        return p
    }

    func write(_ rel: String, _ contents: String, mode: Int = 0o644) throws {
        try writeFile(path + "/" + rel, contents, mode: mode)
    }

    /// Gives everything under `rel` to the CNB user (an output directory filled with inputs).
    func own(_ rel: String) throws {
        _ = try sh("chown -R \(differentialUser):\(differentialUser) '\(path)/\(rel)'")
    }

    /// Runs a program as the CNB user with exactly `environment`.
    func runAsUser(_ argv: [String], environment: [String: String], cwd: String? = nil) throws -> RunResult {
        let command = ["setpriv", "--reuid=\(differentialUser)", "--regid=\(differentialUser)", "--clear-groups"] + argv
        return try run(command, cwd: cwd ?? path, environment: environment)
    }
}

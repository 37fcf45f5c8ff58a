import CNBCore
import Foundation
import OCI
import Testing
import TestSupport

/// The registry soak (issue 17): 100 pushes and 100 pulls of varied images through the fault
/// proxy, each with its own random mix of faults (503s, 429s, connections cut half way through
/// an upload or a download, flipped bytes, slow responses). A transfer may fail, but only
/// cleanly: checked against the registry itself (not through the proxy), no tag ever names a
/// manifest with a missing or wrong blob, and every store pulled into (an empty one each time,
/// whether the pull succeeded or not) verifies.
@Suite(.enabled(if: registryAvailable, "needs docker-registry on PATH (scripts/deps installs it)"), .serialized, .timeLimit(.minutes(10)))
struct RegistrySoakTests {
    /// Replayable by seed (`CAIRN_SOAK_SEED`).
    typealias Seeded = SplitMix64

    /// Eight images of one to four layers (a chain: each of most builds on the one before),
    /// layers from a few bytes to 1.5 MB, text and random bytes.
    func images(_ tmp: TempDir, _ rng: inout Seeded) throws -> (ImageStore, [StoredImage]) {
        let store = try ImageStore(root: tmp.sub("source"))
        var images: [StoredImage] = []
        for i in 0..<8 {
            let dir = tmp.sub("layer-\(i)")
            try writeFile(dir + "/app/\(i).txt", String(repeating: "line \(i)\n", count: Int.random(in: 1...20_000, using: &rng)))
            let random = (0..<Int.random(in: 0...1_500_000, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try Data(random).write(to: URL(fileURLWithPath: dir + "/app/\(i).bin"))
            let base = i % 4 == 0 ? nil : "img\(i - 1)"
            images.append(try importImage(store, dir, as: "img\(i)", base: base))
        }
        return (store, images)
    }

    /// A fault mix for one transfer: every kind reset, some set.
    func faults(_ rng: inout Seeded, push: Bool) -> String {
        func some(_ max: Int, _ chance: Double) -> Int { Double.random(in: 0..<1, using: &rng) < chance ? Int.random(in: 1...max, using: &rng) : 0 }
        let f: [String: Double] = [
            "fail503": Double(some(3, 0.5)), "throttle429": Double(some(1, 0.15)),
            "dropUpload": push ? Double(some(2, 0.5)) : 0, "dropDownload": push ? 0 : Double(some(2, 0.5)),
            "corruptDownload": push ? 0 : Double(some(1, 0.1)), "delay": some(1, 0.2) > 0 ? 0.01 : 0,
        ]
        // Numbers only: the encoding cannot fail.
        return (try? JSONSerialization.data(withJSONObject: f, options: .sortedKeys)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Pulls every tag pushed so far straight from the registry (no proxy, no faults): a tag
    /// that is there must pull whole, every blob present with its digest. Returns the dangling ones.
    func danglingTags(_ registry: LocalRegistry, tags: [String], _ tmp: TempDir, round: Int) async throws -> [String] {
        var config = RegistryConfiguration(credentials: CredentialStore(dockerConfigPath: "/nonexistent/config.json"))
        config.insecureRegistries = [registry.registryHost]
        let direct = try RegistryClient(configuration: config)
        let check = try ImageStore(root: tmp.sub("check-\(round)"))
        var bad: [String] = []
        for tag in tags {
            do {
                _ = try await ImageTransfer(client: direct, store: check).pull(try ImageReference(parsing: "\(registry.registryHost)/\(tag)"))
            } catch {
                bad.append("\(tag): \(error)")
            }
        }
        try await direct.shutdown()
        let report = try check.verify(repair: false)
        return bad + report.problems
    }

    @Test func twoHundredTransfersThroughFaultsLeaveNoDanglingManifestOrCorruptBlob() async throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["CAIRN_SOAK_SEED"] ?? "") ?? 17
        var rng = Seeded(state: seed)
        let registry = try LocalRegistry(proxy: true)
        defer { registry.stop() }
        let tmp = TempDir()
        let (source, images) = try images(tmp, &rng)
        var blobsVerified = 0
        // Small upload chunks so a cut can fall in the middle of a resumable upload.
        let c = try client(registry) {
            $0.monolithicUploadLimit = 256 << 10
            $0.chunkSize = 256 << 10
            $0.retry.maxRetryAfter = 0.05
        }
        var pushed: [String: Digest] = [:]  // repository:tag -> the manifest last pushed there
        var ok = (push: 0, pull: 0), failed = (push: 0, pull: 0)
        var failures: [String: Int] = [:]
        var examples: [String: String] = [:]
        var dangling: [String] = []
        func reason(_ error: any Error) -> String {
            let text = "\(error)"
            for key in ["503", "429", "digest", "connection", "closed", "reset", "size", "timed out"] where text.contains(key) { return key }
            return String(text.prefix(80))
        }
        for round in 0..<100 {
            let image = images[Int.random(in: 0..<images.count, using: &rng)]
            let tag = "soak/app\(round % 5):\(round % 3)"
            try registry.proxy("/__config", faults(&rng, push: true))
            do {
                let digest = try await ImageTransfer(client: c, store: source).push(image, to: try ImageReference(parsing: "\(registry.host)/\(tag)"))
                #expect(digest == image.digest)
                pushed[tag] = digest
                ok.push += 1
            } catch {
                failed.push += 1
                failures["push: " + reason(error), default: 0] += 1
                examples["push: " + reason(error)] = examples["push: " + reason(error)] ?? "\(error)"
            }
            guard let pullTag = pushed.keys.sorted().randomElement(using: &rng) else { continue }
            try registry.proxy("/__config", faults(&rng, push: false))
            // Into an empty store each time, so that every blob is downloaded through the faults.
            let pulled = try ImageStore(root: tmp.sub("pulled-\(round)"))
            defer {
                if let report = try? pulled.verify(repair: false) {
                    #expect(report.problems.isEmpty, "the store pulled into in round \(round): \(report.problems)")
                    blobsVerified += report.blobsChecked
                } else {
                    Issue.record("cannot verify the store pulled into in round \(round)")
                }
                try? FileManager.default.removeItem(atPath: pulled.root)
            }
            do {
                let image = try await ImageTransfer(client: c, store: pulled).pull(try ImageReference(parsing: "\(registry.host)/\(pullTag)"))
                #expect(image.digest == pushed[pullTag], "pulled \(pullTag): \(image.digest), last pushed \(pushed[pullTag]!)")
                ok.pull += 1
            } catch {
                failed.pull += 1
                failures["pull: " + reason(error), default: 0] += 1
                examples["pull: " + reason(error)] = examples["pull: " + reason(error)] ?? "\(error)"
            }
            if round % 25 == 24 {
                try registry.proxy("/__config", #"{"fail503": 0, "throttle429": 0, "dropUpload": 0, "dropDownload": 0, "corruptDownload": 0, "delay": 0}"#)
                dangling += try await danglingTags(registry, tags: pushed.keys.sorted(), tmp, round: round)
            }
        }
        try await c.shutdown()
        let faults = try registry.proxy("/__stats")["faults"] ?? 0
        #expect(dangling.isEmpty, "manifests naming missing or wrong blobs: \(dangling)")
        #expect(ok.push + failed.push == 100 && ok.pull + failed.pull >= 99)
        // Faults must have happened and most transfers must still have gone through their retries.
        #expect(faults > 100, "only \(faults) faults injected")
        #expect(ok.push >= 60 && ok.pull >= 60, "pushes \(ok.push) ok / \(failed.push) failed, pulls \(ok.pull) ok / \(failed.pull) failed")
        for (kind, example) in examples.sorted(by: { $0.key < $1.key }) { print("soak: \(kind), e.g. \(example.prefix(300))") }
        let why = failures.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print("soak: \(ok.push + failed.push + ok.pull + failed.pull) transfers (seed \(seed)): \(ok.push) pushes and \(ok.pull) pulls ok, "
              + "\(failed.push) and \(failed.pull) failed cleanly [\(why)], \(faults) faults injected, \(dangling.count) dangling manifests, "
              + "\(blobsVerified) blobs verified in the stores pulled into")
    }
}

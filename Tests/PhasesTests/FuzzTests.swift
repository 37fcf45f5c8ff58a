import Buildpacks
import Foundation
import OCI
import Testing
import TestSupport

/// Mutation fuzzing of the parsers that read untrusted input (issue 17): the tar reader, the
/// Dockerfile parser, image references, and manifest/index/config JSON (the spec TOML files: see
/// `tomlTableHeaderWithoutAKeyIsASyntaxError`). Each
/// target starts from its corpus in `Tests/Fixtures/fuzz/<target>/` and runs mutated inputs for
/// a bounded time (`CAIRN_FUZZ_SECONDS`, default 8 per target; `CAIRN_FUZZ_SEED` to replay):
/// every input must parse or throw the target's typed error. A crash ends the test process and
/// a hang trips the time limit, so either fails the run (the input that crashed is left in
/// `$TMPDIR/cairn-fuzz-<target>.last`). Prints `fuzz: <target> N execs 0 crashes`.
@Suite(.timeLimit(.minutes(5)))
struct FuzzTests {
    static let seconds = Double(ProcessInfo.processInfo.environment["CAIRN_FUZZ_SECONDS"] ?? "") ?? 8
    static let seed = UInt64(ProcessInfo.processInfo.environment["CAIRN_FUZZ_SEED"] ?? "") ?? 0x00C0_FFEE

    /// splitmix64: a replayable stream.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
    }

    /// Bytes that matter to the formats: digits and octal, separators, quotes, brackets, escapes.
    static let interesting: [UInt8] = Array("0123456789 \t\n\r\"'[]{}=,.:/\\@#$`-+xX".utf8) + [0, 0x7f, 0x80, 0xff]

    /// One mutation of `input` (sometimes spliced with another corpus entry), applied 1–4 times.
    static func mutate(_ input: [UInt8], corpus: [[UInt8]], _ r: inout Random) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + r.below(4)) {
            let at = r.below(b.count + 1)
            switch r.below(8) {
            case 0 where !b.isEmpty: b[min(at, b.count - 1)] ^= UInt8(1 << r.below(8))
            case 1 where !b.isEmpty: b[min(at, b.count - 1)] = interesting[r.below(interesting.count)]
            case 2: b.insert(interesting[r.below(interesting.count)], at: at)
            case 3 where !b.isEmpty: b.removeSubrange(min(at, b.count - 1)..<min(b.count, at + 1 + r.below(16)))
            case 4 where !b.isEmpty:
                let from = r.below(b.count)
                let chunk = b[from..<min(b.count, from + 1 + r.below(64))]
                b.insert(contentsOf: chunk, at: at)
            case 5: b = Array(b.prefix(at))
            case 6:
                let other = corpus[r.below(corpus.count)]
                let from = r.below(other.count)
                b.insert(contentsOf: other[from..<min(other.count, from + 1 + r.below(256))], at: at)
            default:
                // A number in a field: tar's octal sizes and modes, TOML integers, JSON sizes.
                let digits = Array(String(r.next() >> UInt64(r.below(64)), radix: r.below(2) == 0 ? 8 : 10).utf8)
                b.replaceSubrange(at..<min(b.count, at + digits.count), with: digits)
            }
        }
        return b
    }

    /// Runs `body` on the corpus entries, then on mutations until the time is up. `body` returns
    /// normally or throws; an error `accepted` refuses is recorded with the input that caused it.
    static func fuzz(_ target: String, body: ([UInt8]) throws -> Void, accepted: (any Error) -> Bool) throws {
        let dir = fixturesRoot + "/fuzz/" + target
        var corpus: [[UInt8]] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
            // A text corpus file holds one input per line when it is a list (references).
            if name.hasSuffix(".txt") {
                corpus += bytes.split(separator: UInt8(ascii: "\n")).map(Array.init)
            } else {
                corpus.append(bytes)
            }
        }
        try #require(!corpus.isEmpty, "no corpus in \(dir)")
        var r = Random(state: seed)
        for (i, c) in target.utf8.enumerated() { r.state ^= UInt64(c) << UInt64((i % 8) * 8) }
        var execs = 0, parsed = 0, refused = 0
        let deadline = Date().addingTimeInterval(seconds)
        // Each input is written here first: after a crash, the file holds the input that caused it.
        let last = NSTemporaryDirectory() + "/cairn-fuzz-\(target).last"
        let lastFD = open(last, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer { close(lastFD); unlink(last) }
        func one(_ input: [UInt8]) {
            _ = input.withUnsafeBytes { pwrite(lastFD, $0.baseAddress, $0.count, 0) }
            _ = ftruncate(lastFD, off_t(input.count))
            execs += 1
            do {
                try body(input)
                parsed += 1
            } catch {
                refused += 1
                if !accepted(error) {
                    Issue.record("fuzz \(target): \(type(of: error)) is not the typed error for input \(input.count) bytes, base64 \(Data(input).base64EncodedString()): \(error)")
                }
            }
        }
        for c in corpus { one(c) }
        #expect(refused == 0, "the \(target) corpus itself must parse")
        while Date() < deadline {
            for _ in 0..<64 { one(mutate(corpus[r.below(corpus.count)], corpus: corpus, &r)) }
        }
        print("fuzz: \(target) \(execs) execs (\(parsed) parsed, \(refused) refused with a typed error) 0 crashes")
    }

    @Test func tarReader() throws {
        try Self.fuzz("tar", body: { input in
            let reader = TarReader(source: MemorySource(input))
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            var entries = 0
            while let header = try reader.next() {
                entries += 1
                _ = header.name
                while try buffer.withUnsafeMutableBytes({ try reader.readContent(into: $0) }) > 0 {}
                if entries > 10_000 { break }
            }
        }, accepted: { $0 is OCIError })
    }

    /// The spec TOML files are not fuzzed here yet: toml++ (inside TOMLKit) ends the process with
    /// a failed assertion on some malformed documents (its `TOML_ASSERT_ASSUME`s, found by this
    /// suite). The first shape found, a table header without a key (`[.a]`), is refused before
    /// toml++ sees it (Buildpacks/TOMLPrecheck.swift); the second, a value position holding a
    /// terminator (`a = ["x", }]`), still aborts. Until toml++'s assertions are compiled out (or
    /// TOMLKit replaced), a TOML target would crash this run; see the issue filed with it.
    @Test func tomlTableHeaderWithoutAKeyIsASyntaxError() throws {
        for text in ["[.a]\n", "[[ =x]]\n", "a = 1\n[.build.env]]\nname = \"x\"\n"] {
            #expect(throws: TOMLFileError.self, "\(text)") { try TOMLFile.decode(OrderFile.self, from: text, file: "order.toml") }
        }
        // Not headers: brackets in strings, multi-line arrays, comments.
        let valid = "a = [\n  [1, 2],\n  [3],\n]\nb = \"[.x]\"\nc = \"\"\"\n[.y]\n\"\"\"\n# [.z]\n[order]\n"
        #expect(throws: Never.self) { _ = try TOMLFile.decode(JSONValueProbe.self, from: valid, file: "x.toml") }
    }

    struct JSONValueProbe: Decodable {}

    @Test func dockerfileParser() throws {
        try Self.fuzz("dockerfile", body: { input in
            _ = try Dockerfile(parsing: String(decoding: input, as: UTF8.self), file: "fuzz.Dockerfile")
        }, accepted: { $0 is TOMLFileError })
    }

    @Test func imageReferences() throws {
        try Self.fuzz("reference", body: { input in
            let ref = try ImageReference(parsing: String(decoding: input, as: UTF8.self))
            // What parses must print and parse back to the same reference.
            let again = try ImageReference(parsing: ref.description)
            #expect(again == ref, "\(ref.description) does not round-trip")
        }, accepted: { $0 is ImageReference.ParseError })
    }

    @Test func manifestIndexAndConfigJSON() throws {
        try Self.fuzz("json", body: { input in
            let data = Data(input)
            var errors: [any Error] = []
            do { _ = try CanonicalJSON.decode(Manifest.self, from: data, what: "fuzz") } catch { errors.append(error) }
            do { _ = try CanonicalJSON.decode(ImageIndex.self, from: data, what: "fuzz") } catch { errors.append(error) }
            do { _ = try CanonicalJSON.decode(ImageConfig.self, from: data, what: "fuzz") } catch { errors.append(error) }
            if let config = try? CanonicalJSON.decode(ImageConfig.self, from: data, what: "fuzz"),
               let label = config.config?.labels?["io.buildpacks.lifecycle.metadata"] {
                _ = try? CanonicalJSON.decode(LifecycleMetadataLabel.self, from: Data(label.utf8), what: "label")
            }
            // Every refusal must be typed; a document is parsed when one of the three takes it.
            if let untyped = errors.first(where: { !($0 is OCIError) }) { throw untyped }
            if errors.count == 3 { throw errors[0] }
        }, accepted: { $0 is OCIError })
    }
}

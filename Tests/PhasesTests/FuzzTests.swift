import Buildpacks
import Foundation
import OCI
import CNBCore
import Testing
import TestSupport

/// Mutation fuzzing of the parsers that read untrusted input (issue 17): the tar reader, the
/// Dockerfile parser, image references, manifest/index/config JSON and TOML (compared with
/// Python's tomllib too). Each target starts from its corpus in `Tests/Fixtures/fuzz/<target>/`
/// and runs mutated inputs for a bounded time (`CAIRN_FUZZ_SECONDS`, default 8 per target; `CAIRN_FUZZ_SEED` to replay):
/// every input must parse or throw the target's typed error. A crash ends the test process and
/// a hang trips the time limit, so either fails the run (the input that crashed is left in
/// `$TMPDIR/cairn-fuzz-<target>.last`). Prints `fuzz: <target> N execs 0 crashes`.
@Suite(.timeLimit(.minutes(5)))
struct FuzzTests {
    static let seconds = Double(ProcessInfo.processInfo.environment["CAIRN_FUZZ_SECONDS"] ?? "") ?? 8
    static let seed = UInt64(ProcessInfo.processInfo.environment["CAIRN_FUZZ_SEED"] ?? "") ?? 0x00C0_FFEE

    /// A replayable stream.
    typealias Random = SplitMix64

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

    /// The inputs in `Tests/Fixtures/fuzz/<target>/`: one per file, or one per line of a `.txt` file.
    static func corpus(_ target: String) throws -> [[UInt8]] {
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
        return corpus
    }

    /// Runs `body` on the corpus entries, then on mutations until the time is up. `body` returns
    /// normally or throws; an error `accepted` refuses is recorded with the input that caused it.
    static func fuzz(_ target: String, body: ([UInt8]) throws -> Void, accepted: (any Error) -> Bool) throws {
        let corpus = try corpus(target)
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

    /// The TOML reader (CNBCore's, which reads every spec file and the launcher's metadata):
    /// every input parses or throws `TOMLSyntaxError`. (toml++, which Cairn used before, ended
    /// the process on `[.a]` and `a = ["x", }]`; both are among `tomlCases`.)
    @Test func tomlDocuments() throws {
        try Self.fuzz("toml", body: { input in
            _ = try TOMLParser.parse(String(decoding: input, as: UTF8.self))
        }, accepted: { $0 is TOMLSyntaxError })
        for text in ["[.a]\n", "[[ =x]]\n", "a = [\"x\", }]\n"] {
            #expect(throws: TOMLFileError.self, "\(text)") { try TOMLFile.decode(OrderFile.self, from: text, file: "order.toml") }
        }
    }

    /// Edge cases of TOML 1.0, valid and invalid, for the comparison with tomllib.
    static let tomlCases: [String] = [
        "[a.b]\n[a]\n", "[a]\n[a.b]\n[a]\n", "a.b = 1\n[a]\n", "a.b = 1\n[a.c]\n", "[a]\nb.c = 1\n[a.b]\n",
        "[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", "[a.b.c]\n[a]\nb.d = 1\n", "[a]\nb.c = 1\nb.d = 2\n[a.b.e]\n",
        "a = [1,]\n", "a = [,]\n", "a = {x=1,}\n", "a = {\nx=1}\n", "a = {x=[\n1]}\n", "a = [\"x\", }]\n",
        "[.a]\n", "[a.]\n", "[]\n", "[[]]\n", "[a] b\n", "[a]]\n", "[[a] ]\n", "[ [a]]\n",
        "a = 1979-05-27T07:32:00\n", "a = 1979-02-29\n", "a = 2000-02-29\n", "a = 1900-02-29\n", "a = 07:32\n",
        "a = 1979-05-27T07:32:00+25:00\n", "a = 1979-05-27T24:00:00\n", "a = 1979-05-27T23:59:60\n",
        "a = 1979-13-01\n", "a = 1979-05-27 07:32:00\n", "a = 1979-05-27 \n", "a = 1979-05-27T\n", "a = 1979-05-27T07:32:00.\n",
        "a = 0x\n", "a = 0xG\n", "a = -0x1\n", "a = +0o7\n", "a = 1__0\n", "a = 01\n", "a = 0_1\n", "a = _1\n", "a = 1_\n",
        "a = 9223372036854775807\n", "a = -9223372036854775808\n", "a = 9223372036854775808\n", "a = 1e400\n",
        "a = \"\\e\"\n", "a = \"\\x41\"\n", "a = '''\n''''\n", "a = '''''''\n", "a = \"\"\"\"\"\"\"\"\n",
        "a = \"\"\"\\ \n  b\"\"\"\n", "a = \"\"\"\\ x\"\"\"\n", "a = \"\"\"a\\\n\n\n b\"\"\"\n",
        "k = \"\\u0000\"\n", "k = \"\\uD800\"\n", "k = \"\\U00110000\"\n", "k = \"\\u00e\"\n",
        "\"\" = 1\n", "'' = 1\n", "\"\"\"\" = 1\n", "a = true # comment\n", "a = 1 b = 2\n", "a = truex\n", "a = True\n",
        "[[a]]\n[a]\n", "[a]\n[[a]]\n", "a = []\n[[a]]\n", "[[a]]\nb = 1\n[[a]]\nb = 2\n", "[[a.b]]\n[a]\nc=1\n",
        "[[a]]\n[a.b]\nx=1\n[[a]]\n[a.b]\nx=2\n", "[[a]]\n[a.b]\n[a.b]\n", "a = [{b=1}]\n[a.c]\n", "a = [{b=1}]\n[[a]]\n",
        "a = {b = 1}\na.c = 2\n", "a = {b = {c = 1}}\n[a.b]\n", "x = 1\nx = 2\n", "a.b = 1\na.b.c = 2\n", "a = {b.c = 1, b.d = 2}\n",
        "a = {b.c = 1, b = 2}\n", "a = {b = {}, b.c = 1}\n", "# \u{7f}\n", "a = \"\u{7f}\"\n", "a = 'x\u{1}'\n", "# \t ok\n",
        "a = 1\r", "a = 1\r\n", "a = \"x\ry\"\n", "a=1\n\n\n  \t # c\n", "=1\n", "a.=1\n", "a. b . c = 1\n", "a = \n", "a\n",
        "a = +nan\n", "a = -inf\n", "a = nan_\n", "a = inf1\n", "a = -0.0\n", "a = 1.0e\n", "a = 1.e1\n", "a = .1\n", "a = 1.\n",
        "a = 3.14_15\n", "a = 3_.14\n", "a = 1e_1\n", "a = 0e0\n", "a = 0.0e-0\n", "a = 00.1\n", "a = -01.0\n", "a = 1e+0_1\n",
        "a = 0o8\n", "a = 0b2\n", "a = 0X1\n", "a = 0xdead_BEEF\n", "a = 0b\n", "a = 0o_7\n", "a = 1.5E3\n", "a = 4e-2_0\n",
        "a = [ [ ], [ [ ] ] ]\n", "a = [1, \"a\", 1.0, true, {}, []]\n", "a = {a = {a = {a = 1}}}\n", "\u{feff}a = 1\n",
        "a = \"\u{e9}\"\n\u{e9} = 1\n", "\"\u{e9}\" = 1\n", "a = 1 # \u{e9}\u{1F600}\n", "[a]\n[\"a\"]\n", "[a]\n['a']\n",
        "a = 'x'''\n", "a = \"\"\"x\"\"\"\"\"\n", "a = '''x''''''\n", "a = \"\"\"\n\"\"\"\n", "a = '\n'\n",
    ]

    /// The same documents read by Python's tomllib, a TOML 1.0 reader written apart from ours:
    /// the corpus, the edge cases above and mutations of both (valid UTF-8 only) must be
    /// refused by both or read to the same value (floats bit for bit, datetimes as datetimes).
    /// Integers beyond 64 bits, which tomllib reads and the spec lets a reader refuse, are
    /// left out.
    @Test func tomlAgreesWithPythonTomllib() throws {
        let base = try Self.corpus("toml") + Self.tomlCases.map { Array($0.utf8) }
        var r = Random(state: Self.seed)
        var documents = base.map { String(decoding: $0, as: UTF8.self) }
        while documents.count < 6_000 {
            let input = Self.mutate(base[r.below(base.count)], corpus: base, &r)
            if let text = String(validating: input, as: UTF8.self) { documents.append(text) }
        }
        func plain(_ v: TOMLValue) -> Any {
            switch v {
            case .string(let s): return s
            case .integer(let n): return n
            case .float(let d): return ["$f": d.isNaN ? "nan" : String(d.bitPattern)]
            case .bool(let b): return b
            case .datetime: return ["$dt": true]
            case .array(let items): return items.map(plain)
            case .table(let t): return t.mapValues(plain)
            }
        }
        let ours: [[String: Any]] = documents.map { text in
            do { return ["ok": plain(.table(try TOMLParser.parse(text)))] } catch { return ["error": "\(error)"] }
        }
        let dir = TempDir()
        let file = dir.path + "/documents.json"
        try JSONSerialization.data(withJSONObject: ["documents": documents, "ours": ours]).write(to: URL(fileURLWithPath: file))
        let result = try run(["python3", fixturesRoot + "/toml_reference.py", file])
        try #require(result.status == 0, "\(result.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: result.stdoutData) as? [String: Any])
        let disagreements = summary["disagreements"] as? Int ?? -1
        #expect(disagreements == 0, "Cairn and tomllib disagree; examples: \(summary["examples"] ?? "")")
        #expect((summary["read_alike"] as? Int ?? 0) >= base.count / 2, "too few documents were read by both: \(summary)")
        print("toml: \(summary["compared"] ?? 0) documents compared with Python tomllib: \(summary["read_alike"] ?? 0) read alike, \(summary["refused_by_both"] ?? 0) refused by both, \(summary["skipped_big_integers"] ?? 0) skipped (integers beyond 64 bits), \(disagreements) disagreements")
    }

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

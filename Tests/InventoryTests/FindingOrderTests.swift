import Foundation
import Testing
import OCI
@testable import Inventory

/// The whole-fleet `vulns` path orders findings by ranks packed into 64 bits and radix sorted;
/// these check it against a plain comparison of the findings' own texts, on random findings
/// with names that share prefixes, are not ASCII, images with several names and image ids too
/// large for the dense id table.
struct RandomFindings {
    var state: UInt64

    mutating func next(_ n: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(n))
    }

    mutating func pick(_ values: [String]) -> String { values[next(values.count)] }

    /// Hits over `images` images with 1–2 names each, and their ranked names.
    mutating func make(images: Int, hits: Int) -> (FoundVulnerabilities, RankedNames) {
        let words = ["app", "app1", "äpp", "Z", "app:latest", "a\u{301}pp", "registry.example/team/app", "b", ""]
        var found = FoundVulnerabilities()
        for _ in 0..<40 {
            let matter = Finding.Matter(advisory: pick(["CVE-1", "CVE-2", "GHSA-x", "Ö"]), severity: pick(["HIGH", "LOW", ""]),
                                        ecosystem: pick(["PyPI", "npm", "Debian"]), package: pick(["flask", "lib7", "Flask", "ß"]),
                                        version: pick(["1.0", "1.0~rc1", "2"]), fixed: pick(["", "2.0"]))
            _ = found.add(Inventory.Affected(matter: matter, release: pick(["", "12"])))
        }
        let sources = (0..<12).map { _ in
            next(3) == 0 ? found.source(runImage: pick(["run", "run/ü", "base"])) : found.source(buildpack: pick(["bp/a", "bp/ä", "bp"]), layer: pick(["", "l1", "l2"]))
        }
        // Image ids: small ones (the dense table) and huge ones (the dictionary).
        let ids: [Int64] = (0..<images).map { i in
            let id = Int64(i)
            return i % 5 == 0 ? (1 << 40) + id : id + 1
        }
        var subjects: [(image: Int64, subject: Finding.Subject)] = []
        for (i, id) in ids.enumerated() {
            for n in 0..<(1 + next(2)) {
                subjects.append((id, Finding.Subject(location: pick(["reg", "store", "régistry"]), image: pick(words) + "\(i)-\(n)", digest: "sha256:\(i)")))
            }
        }
        subjects.sort { ($0.subject.image.utf8.lexicographicallyPrecedes($1.subject.image.utf8))
            || ($0.subject.image == $1.subject.image && $0.subject.location.utf8.lexicographicallyPrecedes($1.subject.location.utf8)) }
        var names = RankedNames()
        for s in subjects { names.append(image: s.image, s.subject) }
        for _ in 0..<hits {
            found.hits.append(.init(image: ids[next(ids.count)], affected: Int32(next(found.affected.count)), source: sources[next(sources.count)]))
        }
        return (found, names)
    }
}

/// Bytewise order of what a finding shows: image, location, advisory, package, origin (run
/// image first), ecosystem, version, fixed, severity.
func expectedOrder(_ findings: [Finding]) -> [Finding] {
    func key(_ f: Finding) -> [[UInt8]] {
        [Array(f.image.utf8), Array(f.location.utf8), Array((f.advisory ?? "").utf8), Array((f.package ?? "").utf8),
         f.buildpack == nil ? [] : [1] + Array(f.buildpack!.utf8), Array((f.layer ?? "").utf8), Array((f.runImage ?? "").utf8),
         Array((f.ecosystem ?? "").utf8), Array((f.version ?? "").utf8), Array((f.fixed ?? "").utf8), Array((f.severity ?? "").utf8)]
    }
    return findings.sorted { a, b in key(a).lexicographicallyPrecedes(key(b)) { $0.lexicographicallyPrecedes($1) } }
}

@Test(arguments: [1, 2, 3]) func packedAndComparedOrdersAgreeWithTheTexts(seed: UInt64) throws {
    var random = RandomFindings(state: seed)
    let (found, names) = random.make(images: 300, hits: 3_000)
    let packed = found.findings(names: names)
    let compared = found.findings(names: names, packedBits: 0)
    #expect(packed.count > 3_000, "images with two names give two findings per hit")
    #expect(firstDifference(packed, compared) == nil)
    // Equal keys are equal findings, so any order of ties is the same list.
    #expect(firstDifference(packed, expectedOrder(packed)) == nil)
}

/// Where two lists of findings first differ, shown as JSON (nil: equal).
func firstDifference(_ a: [Finding], _ b: [Finding]) -> String? {
    guard let i = Array(zip(a, b)).firstIndex(where: { $0 != $1 }) ?? (a.count == b.count ? nil : min(a.count, b.count)) else { return nil }
    func show(_ list: [Finding]) -> String {
        i < list.count ? String(decoding: (try? CanonicalJSON.encode(list[i])) ?? Data(), as: UTF8.self) : "(end)"
    }
    return "finding \(i) of \(a.count)/\(b.count): \(show(a)) vs \(show(b))"
}

@Test func radixSortSortsByTheLowBitsStably() {
    var random = RandomFindings(state: 9)
    var items = (0..<50_000).map { i in (key: UInt64(random.next(1 << 30)) | UInt64(random.next(4)) << 60, hit: UInt32(i)) }
    let expected = items.enumerated().sorted { ($0.element.key & (1 << 30 - 1), $0.offset) < ($1.element.key & (1 << 30 - 1), $1.offset) }.map(\.element.hit)
    FoundVulnerabilities.radixSort(&items, bits: 30)
    #expect(items.map(\.hit) == expected)
}

@Test func findingsWrittenAsJSONAreWhatTheEncoderWrites() throws {
    var control = ""
    for i in 0..<0x20 { control.unicodeScalars.append(Unicode.Scalar(UInt8(i))) }
    let findings = [
        Finding(location: "reg/x", image: "app:1", digest: "sha256:1", advisory: "CVE-1", severity: "", ecosystem: "PyPI",
                package: "flask", version: "2.2.0", fixed: "2.3.2", buildpack: "bp/a", layer: "l1"),
        Finding(location: "a\"b\\c/d", image: control + "é😀\u{2028}\u{7f}", digest: "", runImage: "run", status: "outdated"),
        Finding(location: "", image: "", digest: "", version: "1", layer: ""),
    ]
    for list in [findings, [], [findings[0]]] {
        var out: [UInt8] = []
        Finding.appendJSON(list, to: &out) { _ in }
        #expect(String(decoding: out, as: UTF8.self) == String(decoding: try CanonicalJSON.encode(list), as: UTF8.self))
        #expect(try JSONDecoder().decode([Finding].self, from: Data(out)) == list)
    }
}

/// Every way of reading image names (those of the images found, in batches; every name at once,
/// which PostgreSQL reads as arrays, also sent with the first statements) gives the same findings, in the order of their texts, on an
/// inventory whose images have several names in several locations, added out of order.
@Test(arguments: backends) func bothWaysOfReadingNamesGiveTheSameFindings(backend: String) throws {
    let f = try InventoryFixture(backend)
    defer { try? FileManager.default.removeItem(atPath: f.dir) }
    try f.index(advisoriesFirst: true)
    let v1 = InventoryFixture.runImage("1", libfoo: "1.0-1")
    let run = try f.inventory.beginRun(source: "test")
    for i in [7, 3, 11, 0, 5, 9, 1] {
        let app = InventoryFixture.app("sha256:more\(i)", flask: i % 2 == 0 ? "2.2.0" : "2.3.3", bp: "1.0.\(i)", run: v1)
        try f.inventory.add(app, location: i % 3 == 0 ? "registry.example/apps" : "store", names: ["z\(i):latest", "app\(i):v\(i)", "Äpp\(i):1"], run: run)
    }
    let batched = try f.inventory.vulnerabilities(id: nil, minimumSeverity: nil, allNamesAbove: .max, namesSentAbove: .max)
    let all = try f.inventory.vulnerabilities(id: nil, minimumSeverity: nil, allNamesAbove: 0, namesSentAbove: .max)
    // PostgreSQL: every name asked for with the first statements, then used for all or some images.
    let sentFirst = try f.inventory.vulnerabilities(id: nil, minimumSeverity: nil, allNamesAbove: 0, namesSentAbove: 0)
    let sentFirstForSome = try f.inventory.vulnerabilities(id: nil, minimumSeverity: nil, allNamesAbove: .max, namesSentAbove: 0)
    #expect(batched.count == 2 + 7 * 3 + 1 * 3, "a: 2 findings; every added image: the run image's libfoo1, three names; the one on flask 2.2.0 (app0) also flask")
    #expect(firstDifference(batched, all) == nil)
    #expect(firstDifference(batched, sentFirst) == nil)
    #expect(firstDifference(batched, sentFirstForSome) == nil)
    #expect(firstDifference(all, expectedOrder(all)) == nil)
}

@Test func namesOutOfOrderAreSortedAndThoseInOrderKept() {
    let ids: [Int64] = [4, 1, 3, 2, 1 << 40]
    let names = ["b", "a", "a", "ä", "B"], locations = ["x", "y", "x", "x", "x"]
    let digests: [Int64: String] = [1: "d1", 2: "d2", 3: "d3", 4: "d4", 1 << 40: "dbig"]
    func ranked(_ order: [Int]) -> [String] {
        let r = Inventory.rankedNames(ids: order.map { ids[$0] }, locations: order.map { locations[$0] }, names: order.map { names[$0] },
                                      digests: order.map { digests[ids[$0]] ?? "" }, images: nil)
        return r.subjects.map { "\($0.image)@\($0.location)=\($0.digest)" }
    }
    let sorted = ["B@x=dbig", "a@x=d3", "a@y=d1", "b@x=d4", "ä@x=d2"]
    #expect(ranked([0, 1, 2, 3, 4]) == sorted)
    #expect(ranked([4, 2, 1, 0, 3]) == sorted)
    var table = RankedNames()
    table.append(image: 1 << 40, Finding.Subject(location: "x", image: "B", digest: ""))
    table.append(image: 3, Finding.Subject(location: "x", image: "a", digest: ""))
    table.append(image: 3, Finding.Subject(location: "y", image: "a", digest: ""))
    var seen: [Int32] = []
    table.forEachRank(of: 3) { seen.append($0) }
    table.forEachRank(of: 1 << 40) { seen.append($0) }
    table.forEachRank(of: 99) { seen.append($0) }
    #expect(seen == [1, 2, 0])
}

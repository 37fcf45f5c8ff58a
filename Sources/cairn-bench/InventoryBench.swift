import ArgumentParser
import CNBCore
import Foundation
import Inventory

/// `cairn-bench`: benchmarks that need Cairn's own code (the rest are scripts under bench/).
/// Not part of the user-facing `cairn`; bench/inventory.sh builds and runs it.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn-bench",
        abstract: "Benchmarks that need Cairn's own code (the rest are scripts under bench/).",
        subcommands: [InventoryBench.self])
}


/// A synthetic fleet through the inventory's real write and query paths: index rate, database
/// size and each query's median.
struct InventoryBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inventory",
        abstract: "Index a synthetic fleet into an inventory and time its queries.",
        discussion: """
            Images: each on one of --run-images run image versions (--run-image-names names, \
            --run-packages Debian packages each; the version leans to the newest of its name, an \
            index drop of Exp(0.5)), built with 5 of --buildpacks buildpacks whose layers \
            bring --bp-packages PyPI/npm packages in all; --packages distinct package names, 10 versions \
            each. Installed versions lean to the newest (an index drop of Exp(0.88) from 9); each of \
            --advisories OSV records fixes one package at a version index from 1 to 6. Deterministic \
            (fixed seed). Use an empty database.
            """)

    @Option(help: "App images.") var images = 100_000
    @Option(name: .customLong("run-images"), help: "Run image versions.") var runImages = 1_000
    @Option(name: .customLong("run-image-names"), help: "Run images (names) the versions are spread over.") var runImageNames = 50
    @Option(help: "Buildpacks.") var buildpacks = 200
    @Option(help: "Distinct package names.") var packages = 2_000
    @Option(name: .customLong("run-packages"), help: "Debian packages per run image.") var runPackages = 200
    @Option(name: .customLong("bp-packages"), help: "Buildpack-contributed packages per image.") var bpPackages = 100
    @Option(help: "OSV records.") var advisories = 5_000
    @Option(name: .customLong("repeat"), help: "Query repetitions (the median is printed).") var repetitions = 5
    @Option(help: "A SQLite file or postgres:// URL (empty, unless --queries-only).") var database: String
    @Flag(name: .customLong("queries-only"), help: "Time the queries over a fleet this command indexed before (no indexing).")
    var queriesOnly = false

    /// The same fleet on every run.
    typealias Random = SplitMix64

    func run() async throws {
        do {
            let inv = try Inventory.open(database, defaultPath: "")
            if queriesOnly { return try timeQueries(inv) }
            var fleet = SyntheticFleet(self)
            let runs = fleet.runImageVersions()

            var clock = Date()
            let first = try inv.beginRun(source: "bench")
            for r in runs { try inv.add(runImage: r, run: first) }
            let runSeconds = Date().timeIntervalSince(clock)

            clock = Date()
            try index(&fleet, runs: runs, into: inv, run: first)
            let indexSeconds = Date().timeIntervalSince(clock)

            clock = Date()
            let osv = fleet.advisories()
            for start in stride(from: 0, to: osv.count, by: 1000) { try inv.importAdvisories(Array(osv[start..<min(start + 1000, osv.count)])) }
            try inv.optimize()
            let importSeconds = Date().timeIntervalSince(clock)

            print("inventory bench: \(images) images, \(runs.count) run image versions, \(buildpacks) buildpacks, \(packages) package names, \(runPackages)+\(bpPackages) packages per image, \(advisories) advisories; \(inv.backend.location.hasPrefix("postgres") ? "PostgreSQL" : "SQLite")")
            print(String(format: "index: run images %.1f s; images %.1f s = %.0f images/s; advisories import (and statistics) %.1f s", runSeconds, indexSeconds, Double(images) / indexSeconds, importSeconds))
            print("database size: \(try databaseSize(inv) / 1_048_576) MiB")
            try timeQueries(inv)
        }
    }

    /// The images, in batches as the indexer writes them, with a rate line every 10 s.
    func index(_ fleet: inout SyntheticFleet, runs: [RunImageRecord], into inv: Inventory, run: Int64) throws {
        let clock = Date()
        var lastReport = Date()
        var batch: [Inventory.Entry] = []
        for i in 0..<images {
            batch.append(Inventory.Entry(fleet.image(i, runs: runs), location: "bench", names: ["app\(i):latest"]))
            if batch.count == Inventory.writeBatchSize || i == images - 1 {
                try inv.add(batch, run: run)
                batch = []
            }
            if Date().timeIntervalSince(lastReport) > 10 {
                lastReport = Date()
                FileHandle.standardError.write(Data("  \(i + 1) images, \(Int(Double(i + 1) / Date().timeIntervalSince(clock))) images/s\n".utf8))
            }
        }
    }

    func timeQueries(_ inv: Inventory) throws {
        func time(_ label: String, _ body: () throws -> Int) throws {
            var seconds: [Double] = []
            var rows = 0
            for _ in 0..<repetitions {
                let t = Date()
                rows = try body()
                seconds.append(Date().timeIntervalSince(t))
            }
            let median = seconds.sorted()[seconds.count / 2]
            print(String(format: "  %-44@ %8.1f ms  %8d rows", label as NSString, median * 1000, rows))
        }
        print("queries (median of \(repetitions)):")
        try time("vulns (whole fleet)") { try inv.vulnerabilities().count }
        try time("vulns --id CVE-2026-10001") { try inv.vulnerabilities(id: "CVE-2026-10001").count }
        try time("vulns --severity CRITICAL") { try inv.vulnerabilities(minimumSeverity: "CRITICAL").count }
        try time("package pypkg0") { try inv.package("pypkg0").count }
        try time("package pypkg0 --version '<1.5.0'") { try inv.package("pypkg0", versions: VersionRange(parsing: "<1.5.0")).count }
        try time("package lib7 (a run image package)") { try inv.package("lib7").count }
        try time("buildpack bench/bp1 --version '<1.5.0'") { try inv.buildpack("bench/bp1", versions: VersionRange(parsing: "<1.5.0")).count }
        try time("launcher --version '<0.5'") { try inv.launcher(versions: VersionRange(parsing: "<0.5")).count }
        try time("run-image bench/run3 --outdated") { try inv.runImages(outdatedOnly: true, name: "bench/run3").count }
        try time("run-image --outdated (whole fleet)") { try inv.runImages(outdatedOnly: true).count }
        try time("plan --id CVE-2026-10001") { try inv.plan(inv.vulnerabilities(id: "CVE-2026-10001")).steps.count }
    }

    func databaseSize(_ inv: Inventory) throws -> Int64 {
        if inv.backend.location.hasPrefix("postgres") {
            return try inv.backend.read { db in try db.value("SELECT pg_database_size(current_database())")?.int ?? 0 }
        }
        let fm = FileManager.default
        return [database, database + "-wal"].reduce(0) { sum, path in
            sum + Int64((try? fm.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
        }
    }
}

/// The synthetic fleet's records, generated from a fixed seed (see InventoryBench's discussion).
struct SyntheticFleet {
    let sizes: InventoryBench
    var rng = InventoryBench.Random(state: 42)
    let debianNames: Int
    let versionsPerName: Int
    let bpLayers: [[String]]
    let bpPackageSets: [[Int]]

    init(_ sizes: InventoryBench) {
        self.sizes = sizes
        debianNames = sizes.packages / 2
        versionsPerName = max(1, sizes.runImages / sizes.runImageNames)
        bpLayers = (0..<sizes.buildpacks).map { b in (0..<(1 + b % 3)).map { "layer\($0)" } }
        bpPackageSets = (0..<sizes.buildpacks).map { b in
            (0..<(sizes.bpPackages / 5)).map { (b * 13 + $0 * 11) % (sizes.packages - sizes.packages / 2) }
        }
    }

    func debVersion(_ v: Int) -> String { "1.\(v)-1" }
    func pyVersion(_ v: Int) -> String { "1.\(v).0" }
    func bpPackage(_ i: Int) -> (Ecosystem, String) { i % 2 == 0 ? (.pypi, "pypkg\(i)") : (.npm, "npmpkg\(i)") }

    /// Run image versions: a fixed package set per name, newer versions newer packages.
    func runImageVersions() -> [RunImageRecord] {
        var runs: [RunImageRecord] = []
        for n in 0..<sizes.runImageNames {
            let set = (0..<sizes.runPackages).map { (n * 37 + $0 * 7) % debianNames }
            for v in 0..<versionsPerName where runs.count < sizes.runImages {
                var r = RunImageRecord(identity: "io.bench.stack\(n)", name: "bench/run\(n)", topLayer: "sha256:run-\(n)-\(v)",
                                       layers: "sha256:run-\(n)-\(v)")
                r.reference = "bench/run\(n):\(v)"
                r.released = String(format: "2026-%02d-%02d", 1 + v / 28, 1 + v % 28)
                r.distro = "debian"
                r.distroVersion = "12"
                r.packages = set.map { p in
                    let version = debVersion(min(9, v * 10 / versionsPerName))
                    return PackageRecord(ecosystem: .debian, name: "lib\(p)", version: version, sourceName: "src\(p)", sourceVersion: version)
                }
                runs.append(r)
            }
        }
        return runs
    }

    /// Image `i`: a run image name, then a version leaning to its newest (a fleet rebased
    /// regularly); 5 buildpack picks with their layers and packages.
    mutating func image(_ i: Int, runs: [RunImageRecord]) -> ImageRecord {
        var record = ImageRecord(digest: "sha256:image\(i)")
        let name = rng.below(sizes.runImageNames)
        let drop = Int(-log(max(rng.unit(), 1e-12)) / 0.5)
        let runIndex = min(runs.count - 1, name * versionsPerName + max(0, versionsPerName - 1 - drop))
        record.runImage = runs[runIndex]
        record.runImage?.packages = nil
        record.created = "2026-06-01T00:00:00Z"
        record.launcherVersion = "0.\(rng.recentVersion()).0"
        record.launcherDiffID = "sha256:launcher\(record.launcherVersion)"
        for _ in 0..<5 {
            let b = rng.below(sizes.buildpacks)
            let v = rng.recentVersion()
            guard !record.modules.contains(where: { $0.id == "bench/bp\(b)" }) else { continue }
            addBuildpack(b, version: v, to: &record)
        }
        return record
    }

    func addBuildpack(_ b: Int, version v: Int, to record: inout ImageRecord) {
        record.modules.append(.init(kind: "buildpack", id: "bench/bp\(b)", version: pyVersion(v)))
        for layer in bpLayers[b] {
            record.layers.append(.init(buildpack: "bench/bp\(b)", name: layer, diffID: "sha256:bp\(b)-\(layer)-\(v)",
                                       metadata: "{\"version\":\"\(v)\"}", rebasable: b % 2 == 0))
        }
        for (k, p) in bpPackageSets[b].enumerated() {
            let (eco, name) = bpPackage(p)
            let pv = max(0, v - (k % 3))
            record.packages.append(.init(package: PackageRecord(ecosystem: eco, name: name, version: pyVersion(pv),
                                                                purl: "pkg:\(eco == .pypi ? "pypi" : "npm")/\(name)@\(pyVersion(pv))"),
                                         buildpack: "bench/bp\(b)", layer: bpLayers[b][k % bpLayers[b].count]))
        }
    }

    /// OSV records: half on Debian source packages, half on PyPI/npm ones; each fixed at a
    /// version index 1…6.
    mutating func advisories() -> [OSVRecord] {
        var osv: [OSVRecord] = []
        let levels = ["LOW", "MODERATE", "HIGH", "CRITICAL"]
        for a in 0..<sizes.advisories {
            let debian = a % 2 == 0
            let p = rng.below(debian ? debianNames : sizes.packages - debianNames)
            let fixed = 1 + rng.below(6)
            let (eco, name) = debian ? (Ecosystem.debian, "src\(p)") : bpPackage(p)
            osv.append(OSVRecord(id: "BENCH-\(a)", aliases: ["CVE-2026-\(10000 + a)"], summary: "synthetic",
                                 databaseSpecific: .init(severity: levels[rng.below(4)]),
                                 affected: [.init(package: .init(ecosystem: debian ? "Debian:12" : eco.rawValue, name: name),
                                                  ranges: [.init(type: "ECOSYSTEM", events: [.init(introduced: "0"),
                                                                                             .init(fixed: debian ? debVersion(fixed) : pyVersion(fixed))])])]))
        }
        return osv
    }
}

extension SplitMix64 {
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// A version index 0…9 leaning to 9.
    mutating func recentVersion() -> Int { max(0, 9 - Int(-log(max(unit(), 1e-12)) / 0.88)) }
}

import ArgumentParser
import Foundation
import Inventory
import OCI
import CairnPlatform

/// Where the inventory lives and how answers are printed, for every inventory command.
struct InventoryOptions: ParsableArguments {
    @Option(help: "The inventory: a SQLite file (default $CAIRN_HOME/audit.db) or postgres://user@host/db.")
    var database: String?
    @Option(help: "table, json or csv.") var format: ListFormat = .table

    /// Commands whose answer is a summary, not rows, say so instead of ignoring `--format csv`.
    func refuse(_ unsupported: ListFormat, for command: String) throws {
        if format == unsupported { throw CLIError("--format \(unsupported.rawValue): \(command) prints a summary; use table or json") }
    }

    /// The inventory, opened off Swift concurrency's threads (see `Inventory.run`).
    func open() async throws -> Inventory {
        let url = database ?? ProcessInfo.processInfo.environment["CAIRN_AUDIT_DATABASE"]
        return try await Inventory.opened(url, defaultPath: cairnHome() + "/audit.db")
    }
}

enum ListFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, csv
}

/// Prints findings as a table (chosen columns), JSON (every field) or CSV (the same columns).
///
/// Whole-fleet answers are hundreds of thousands of lines (798,209 findings, 70 MB as a table):
/// written as bytes in 1 MiB pieces, cells measured in scalars, not grapheme clusters, and the
/// table's widths found in a first pass instead of keeping every row's cells.
func printFindings(_ findings: [Finding], columns: [(String, (Finding) -> String)], format: ListFormat, summary: String) throws {
    try printRows(findings, columns: columns, format: format, summary: summary) { out in
        Finding.appendJSON(findings, to: &out.bytes) { OutputBuffer.write(&$0) }
    }
}

/// Prints `items` as `printFindings` does, JSON written by `json`.
func printRows<T>(_ findings: [T], columns: [(String, (T) -> String)], format: ListFormat, summary: String,
                  json: (inout OutputBuffer) throws -> Void) throws {
    var out = OutputBuffer()
    defer { out.flush() }
    switch format {
    case .json:
        try json(&out)
        out.bytes.append(0x0a)
    case .csv:
        func quoted(_ s: String) {
            guard s.utf8Contains(where: { $0 == 0x2c || $0 == 0x22 || $0 == 0x0a }) else { return out.append(s) }
            out.append("\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"")
        }
        for (c, column) in columns.enumerated() {
            if c > 0 { out.bytes.append(0x2c) }
            quoted(column.0.lowercased())
        }
        out.endLine()
        for f in findings {
            for (c, column) in columns.enumerated() {
                if c > 0 { out.bytes.append(0x2c) }
                quoted(column.1(f))
            }
            out.endLine()
        }
    case .table:
        var widths = columns.map { scalarCount($0.0) }
        for f in findings {
            for c in columns.indices.dropLast() { widths[c] = max(widths[c], scalarCount(columns[c].1(f))) }
        }
        func row(_ cells: (Int) -> String) {
            for c in columns.indices {
                if c > 0 { out.append("  ") }
                let cell = cells(c)
                out.append(cell)
                if c < columns.count - 1 { out.bytes.append(contentsOf: repeatElement(0x20, count: max(0, widths[c] - scalarCount(cell)))) }
            }
            out.endLine()
        }
        row { columns[$0].0 }
        for f in findings { row { columns[$0].1(f) } }
        out.flush()
        FileHandle.standardError.write(Data((summary + "\n").utf8))
    }
}

/// Unicode scalars in `s`: its UTF-8 bytes that do not continue a sequence.
func scalarCount(_ s: String) -> Int {
    func count<C: Collection<UInt8>>(_ bytes: C) -> Int { bytes.reduce(0) { $0 + ($1 & 0xC0 != 0x80 ? 1 : 0) } }
    return s.utf8.withContiguousStorageIfAvailable { count($0) } ?? count(s.utf8)
}

/// Standard output in large writes.
struct OutputBuffer {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(1 << 21) }

    mutating func append(_ s: String) { bytes.append(contentsOf: s.utf8) }

    mutating func endLine() {
        bytes.append(0x0a)
        if bytes.count >= 1 << 20 { Self.write(&bytes) }
    }

    mutating func flush() { Self.write(&bytes) }

    static func write(_ bytes: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { FileHandle.standardOutput.write(Data($0)) }
        bytes.removeAll(keepingCapacity: true)
    }
}

/// Distinct (location, image) pairs; findings come sorted by image then location, so a change
/// from the previous finding is a new image.
func imageCount(_ findings: [Finding]) -> Int {
    var count = 0
    var previous: (image: String, location: String)?
    for f in findings where previous.map({ $0.image != f.image || $0.location != f.location }) ?? true {
        count += 1
        previous = (f.image, f.location)
    }
    return count
}

struct AuditIndex: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Record what images are made of in the inventory: run image, buildpacks, layers, launcher, packages.",
        discussion: """
            Reads manifests, configs, the SBOM layer and the run image's dpkg status, never app layers. \
            An image already indexed (same digest) costs one lookup. Without REF, every image in the store \
            is indexed and names the store no longer has are forgotten.
            """)

    @Argument(help: "Images in the store to index (default: all).") var refs: [String] = []
    @Flag(name: .customLong("whole-store"), help: "Index the whole store, also with --registry (the default when neither REF nor --registry is given).") var wholeStore = false
    @Option(name: .customLong("registry"), help: "Index every tag of this registry repository (HOST/REPO); repeatable.") var repositories: [String] = []
    @Option(name: [.customLong("store"), .customLong("store-path", withSingleDash: false)], help: "The image store to index (default: $CAIRN_HOME/store), as --store means for every command.")
    var storePath: String?
    @Option(name: .customLong("key"), help: "A public key (PEM) to check every indexed image's signature and provenance with; repeatable. `cairn audit trust` answers from it.")
    var keys: [String] = []
    @OptionGroup var inventory: InventoryOptions
    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        try await reportingErrors {
            try inventory.refuse(.csv, for: "audit index")
            let inv = try await inventory.open()
            let indexer = InventoryIndexer(inventory: inv) { FileHandle.standardError.write(Data("cairn: warning: \($0)\n".utf8)) }
            var reports: [[String: Any]] = []
            func report(_ what: String, _ s: InventoryIndexer.Summary, since started: Date) {
                let took = Date().timeIntervalSince(started)
                let others = s.images - s.indexed - s.known - s.skipped
                guard inventory.format == .table else {
                    reports.append(["location": what, "images": s.images, "indexed": s.indexed, "known": s.known, "notAppImages": others,
                                    "skipped": s.skipped, "runImages": s.runImages, "seconds": (took * 100).rounded() / 100])
                    return
                }
                print("\(what): \(s.images) images: \(s.indexed) indexed, \(s.known) already known, \(others) not app images, \(s.skipped) skipped; \(s.runImages) run images; \(String(format: "%.2f", took)) s")
            }
            defer { if inventory.format == .json { try? printJSON(reports) } }
            if wholeStore || storePath != nil || !refs.isEmpty || repositories.isEmpty {
                let store = try StoreOptions.parse(storePath.map { ["--store", $0] } ?? []).open()
                let started = Date()
                let names = refs.isEmpty || wholeStore ? nil : refs
                report("store", try await inv.run { _ in try indexer.index(store: store, names: names) }, since: started)
                try await recordTrust(indexer, store: store)
            }
            if !repositories.isEmpty {
                let cache = try ImageStore(root: cairnHome() + "/audit-cache")
                let started = Date()
                let s = try await withClient(registry) { client in
                    let s = try await indexer.index(registry: repositories, client: client, cache: cache)
                    try await recordTrust(indexer, client: client, cache: cache)
                    return s
                }
                report("registry", s, since: started)
            }
            try await inv.run { try $0.optimize() }
        }
    }
}

struct AuditVulns: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vulns",
        abstract: "Images with a package an imported advisory affects: the package, installed and fixed versions, and who brought it.")

    @Option(help: "Only this advisory (its id or an alias: CVE-…, GHSA-…).") var id: String?
    @Option(help: "Only advisories at least this severe: LOW, MEDIUM, HIGH, CRITICAL.") var severity: String?
    @Option(help: "image (by image name) or risk: advisories in CISA's KEV catalog first, then by severity, then by EPSS score (import them with `audit advisories import --kev/--epss`).")
    var sort: String = "image"
    @Option(help: "A VEX document (OpenVEX or CycloneDX): findings it says are not_affected or fixed are left out (repeatable).")
    var vex: [String] = []
    @Option(name: .customLong("as-of"), help: "The images the names pointed to on this date (YYYY-MM-DD or RFC 3339), as index runs saw them; today's advisories.")
    var asOf: String?
    @OptionGroup var inventory: InventoryOptions

    func run() async throws {
        try await reportingErrors {
            guard ["image", "risk"].contains(sort) else { throw CLIError("--sort \(sort): expected image or risk") }
            let (id, severity, risk, date) = (id, severity, sort == "risk", try asOf.map(parseDate))
            let statements = try readVEX(vex)
            var (findings, settled) = try await inventory.open().run { inv in
                try inv.applyVEX(try inv.vulnerabilities(id: id, minimumSeverity: severity, risk: risk, asOf: date), statements)
            }
            var columns: [(String, (Finding) -> String)] = [
                ("IMAGE", \.image), ("ADVISORY", { $0.advisory ?? "" }), ("SEVERITY", { ($0.severity ?? "").isEmpty ? "-" : $0.severity ?? "" }),
            ]
            if risk {
                findings = findings.sortedByRisk()
                columns += [("KEV", { $0.kev ?? "-" }), ("EPSS", { $0.epss ?? "-" })]
            }
            columns += [
                ("PACKAGE", { $0.package ?? "" }), ("INSTALLED", { $0.version ?? "" }), ("FIXED", { ($0.fixed ?? "").isEmpty ? "-" : $0.fixed ?? "" }),
                ("FROM", \.origin),
            ]
            try printFindings(findings, columns: columns, format: inventory.format,
                              summary: "\(findings.count) findings in \(imageCount(findings)) images" + unknownSummary(findings)
                                + (vex.isEmpty ? "" : "; \(settled) left out as not affected or fixed per VEX"))
        }
    }
}

struct AuditPackage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "package",
        abstract: "Images with a package (by name, or by purl for one ecosystem), optionally in a version range.")

    @Argument(help: "A package name (Debian: binary or source package) or a purl (pkg:pypi/flask).") var package: String
    @Option(help: "A version range in the package's ecosystem ordering: <2.3.2, >=1.0,<2, =1.2.") var version: String?
    @OptionGroup var inventory: InventoryOptions

    func run() async throws {
        try await reportingErrors {
            let (package, versions) = (package, try version.map { try VersionRange(parsing: $0) })
            let findings = try await inventory.open().run { try $0.package(package, versions: versions) }
            try printFindings(findings, columns: [
                ("IMAGE", \.image), ("ECOSYSTEM", { ($0.ecosystem ?? "").isEmpty ? "-" : $0.ecosystem ?? "" }),
                ("PACKAGE", { $0.package ?? "" }), ("VERSION", { $0.version ?? "" }), ("FROM", \.origin),
            ], format: inventory.format, summary: "\(imageCount(findings)) images" + unknownSummary(findings))
        }
    }
}

/// How many of the images in an answer are there as `unknown` (never counted clean).
func unknownSummary(_ findings: [Finding]) -> String {
    let unknown = Set(findings.filter { $0.status == "unknown" }.map { $0.location + "\u{0}" + $0.image }).count
    return unknown == 0 ? "" : "; \(unknown) of them unknown: packages that could not all be read, or versions that cannot be ordered (FROM says why)"
}

struct AuditRunImage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-image",
        abstract: "Images and their run image; --outdated: those for which a newer version of their run image is known.",
        discussion: "Newer: a later io.buildpacks.base.released, else found later under the run image's name, else created later.")

    @Argument(help: "Only images on this run image (repository, without tag).") var name: String?
    @Flag(help: "Only images whose run image has a newer version.") var outdated = false
    @OptionGroup var inventory: InventoryOptions

    func run() async throws {
        try await reportingErrors {
            let (outdated, name) = (outdated, name)
            let findings = try await inventory.open().run { try $0.runImages(outdatedOnly: outdated, name: name) }
            try printFindings(findings, columns: [
                ("IMAGE", \.image), ("RUN IMAGE", { $0.runImage ?? "-" }), ("STATUS", { $0.status ?? "" }),
                ("LAYERS", { String(($0.version ?? "-").prefix(19)) }), ("NEWEST", { String(($0.fixed ?? "-").prefix(19)) }),
            ], format: inventory.format, summary: "\(imageCount(findings)) images")
        }
    }
}

struct AuditBuildpack: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "buildpack",
        abstract: "Images built with a buildpack, optionally in a version range.")

    @Argument(help: "The buildpack ID.") var id: String
    @Option(help: "A version range: <1.2.0, >=1,<2.") var version: String?
    @OptionGroup var inventory: InventoryOptions

    func run() async throws {
        try await reportingErrors {
            let (id, versions) = (id, try version.map { try VersionRange(parsing: $0) })
            let findings = try await inventory.open().run { try $0.buildpack(id, versions: versions) }
            try printFindings(findings, columns: [("IMAGE", \.image), ("BUILDPACK", { $0.buildpack ?? "" }), ("VERSION", { $0.version ?? "" })],
                              format: inventory.format, summary: "\(imageCount(findings)) images")
        }
    }
}

struct AuditLauncher: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launcher",
        abstract: "Images and their launcher version and layer, optionally in a version range.")

    @Option(help: "A version range: <0.2.0.") var version: String?
    @OptionGroup var inventory: InventoryOptions

    func run() async throws {
        try await reportingErrors {
            let versions = try version.map { try VersionRange(parsing: $0) }
            let findings = try await inventory.open().run { try $0.launcher(versions: versions) }
            try printFindings(findings, columns: [("IMAGE", \.image), ("LAUNCHER", { ($0.version ?? "").isEmpty ? "-" : $0.version ?? "" }),
                                                  ("LAYER", { String(($0.layer ?? "-").prefix(19)) })],
                              format: inventory.format, summary: "\(imageCount(findings)) images")
        }
    }
}

struct AuditPlan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "For each vulnerable image, the cheapest fix: rebase, layer patch or rebuild, with the reason.",
        discussion: """
            Rebase: the package is in the run image and a newer run image without it is known. Patch: a \
            newer build of the same buildpack layer, marked rebasable, without it is indexed. Otherwise \
            rebuild. --output writes the layer patches file the printed `cairn rebase` commands use.
            """)

    @Option(help: "Only this advisory (id or alias).") var id: String?
    @Option(help: "Only advisories at least this severe.") var severity: String?
    @Option(help: "Write the layer patches file (JSON) here.") var output: String?
    @OptionGroup var inventory: InventoryOptions

    func run() async throws {
        try await reportingErrors {
            let inv = try await inventory.open()
            // Unknown images cannot be planned for: said, not dropped.
            let (id, severity) = (id, severity)
            let findings = try await inv.run { try $0.vulnerabilities(id: id, minimumSeverity: severity) }
            let unknown = findings.filter { $0.status == "unknown" }
            let plan = try await inv.run { try $0.plan(findings.filter { $0.status != "unknown" }) }
            defer {
                for f in unknown { FileHandle.standardError.write(Data("\(f.image): unknown, not planned: \(f.reason ?? "")\n".utf8)) }
            }
            let patchFile = output ?? "patches.json"
            if let output {
                let data = try CanonicalJSON.encode(plan.patchFile)
                try data.write(to: URL(fileURLWithPath: output), options: .atomic)
            }
            switch inventory.format {
            case .json:
                print(String(decoding: try CanonicalJSON.encode(plan.steps), as: UTF8.self))
            case .csv:
                try printRows(plan.steps, columns: [
                    ("location", \.location), ("image", \.image), ("digest", \.digest), ("action", \.action),
                    ("run-image", { $0.runImage ?? "" }),
                    ("patches", { $0.patches.map { "\($0.buildpack):\($0.layer) from \($0.patchImage)" }.joined(separator: "; ") }),
                    ("reasons", { $0.reasons.joined(separator: "; ") }),
                ], format: .csv, summary: "") { _ in }
            case .table:
                for step in plan.steps {
                    var command = ["cairn", "rebase", step.image]
                    if let run = step.runImage { command += ["--run-image", run] }
                    if !step.patches.isEmpty { command += ["--layer-patches", patchFile] }
                    print("\(step.image): \(step.action)")
                    for r in step.reasons { print("  " + r) }
                    if step.action != "rebuild" { print("  $ " + command.joined(separator: " ")) }
                }
                let counts = Dictionary(grouping: plan.steps, by: \.action).map { "\($0.value.count) \($0.key)" }.sorted()
                FileHandle.standardError.write(Data("\(plan.steps.count) images to fix: \(counts.joined(separator: ", "))\n".utf8))
            }
        }
    }
}

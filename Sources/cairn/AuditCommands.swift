import ArgumentParser
import Foundation
import OCI
import CairnPlatform

struct SBOM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sbom",
        abstract: "Show or save the SBOMs in an app image's SBOM layer.",
        discussion: "With --output DIR the documents are written to DIR/layers/sbom/launch/<buildpack>/[<layer>/]sbom.<ext>, as `pack sbom download` does.")

    @Argument(help: "The app image (in the store, or with --remote in its registry).") var image: String
    @Option(help: "Directory to write the SBOM documents to.") var output: String?
    @Option(help: "table or json.") var format: OutputFormat = .table
    @Flag(help: "Read the image from its registry (manifest, config and the SBOM layer only) instead of the store.") var remote = false
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var registry: RegistryOptions

    func run() async throws {
        try await reportingErrors {
            let documents: [SBOMDocument]
            if remote {
                documents = try await withRemoteImage(image, registry: registry, layers: { try SBOMReader.sbomLayer(of: $0).map { [$0] } ?? [] }) {
                    try SBOMReader.documents(of: $0, in: $1)
                }
            } else {
                let store = try storeOptions.open()
                documents = try SBOMReader.documents(of: try store.resolve(image), in: store)
            }
            guard !documents.isEmpty else { throw CLIError("\(image) has no SBOM layer: no buildpack wrote a launch SBOM") }
            if let output {
                for doc in documents {
                    let parts = doc.path.split(separator: "/").map(String.init).filter { $0 != "." }
                    guard !parts.contains("..") else { throw CLIError("SBOM layer entry \(doc.path) leaves the output directory") }
                    let target = output + "/" + parts.joined(separator: "/")
                    try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    try doc.data.write(to: URL(fileURLWithPath: target), options: .atomic)
                    print(target)
                }
                return
            }
            switch format {
            case .json:
                struct Entry: Encodable {
                    var path, buildpack, format: String
                    var layer: String?
                    var components: [SBOMDocument.Component]
                }
                let entries = try documents.map { Entry(path: $0.path, buildpack: $0.buildpack, format: $0.format, layer: $0.layer, components: try $0.components()) }
                print(String(decoding: try CanonicalJSON.encode(entries), as: UTF8.self))
            case .table:
                for doc in documents {
                    let components = try doc.components()
                    print("\(doc.buildpack)\(doc.layer.map { ":" + $0 } ?? " (launch)")  sbom.\(doc.format)  \(components.count) component\(components.count == 1 ? "" : "s")")
                    for c in components { print("  \(c.name)\(c.version.map { "  " + $0 } ?? "")") }
                }
            }
        }
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Which app images run a run image, a buildpack, a package or a vulnerability, and how to fix them.",
        discussion: """
            `cairn audit scan` (the default) reads the store on every query. The inventory commands \
            (`index`, `advisories import`, `vulns`, `package`, `run-image`, `buildpack`, `launcher`, \
            `plan`, `trust`) keep what images are made of in a database: $CAIRN_HOME/audit.db by default.
            """,
        subcommands: [AuditScan.self, AuditIndex.self, AuditAdvisories.self, AuditVulns.self, AuditVEX.self, AuditExposure.self, AuditPackage.self,
                      AuditRunImage.self, AuditBuildpack.self, AuditLauncher.self, AuditPlan.self, AuditTrustQuery.self],
        defaultSubcommand: AuditScan.self)
}

struct AuditScan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Which app images in the store use a run image, an outdated run image, a buildpack or a package (reads the store now).",
        discussion: """
            Reads every app image's labels and SBOM layer. Criteria combine (all must hold); without \
            any, every app image is listed. Versions: NAME, NAME@VERSION, NAME@<VERSION. An image is \
            outdated when the store's image of its run image name has other layers than it was built on \
            (`cairn rebase` fixes that).
            """)

    @Option(name: .customLong("run-image"), help: "Images built on (or rebased onto) this run image (without a tag: any tag of it).") var runImage: String?
    @Flag(help: "Images whose run image has newer layers in the store.") var outdated = false
    @Option(help: "Images built with this buildpack: ID, ID@VERSION or ID@<VERSION.") var buildpack: String?
    @Option(help: "Images whose SBOMs list this package: NAME, NAME@VERSION or NAME@<VERSION.") var package: String?
    @Option(help: "table or json.") var format: OutputFormat = .table
    @OptionGroup var trust: TrustCriteria
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            var query = AuditQuery()
            query.runImage = runImage
            query.outdatedOnly = outdated
            query.buildpack = try buildpack.map { try VersionConstraint(parsing: $0) }
            query.package = try package.map { try VersionConstraint(parsing: $0) }
            let store = try storeOptions.open()
            let records = try Audit.records(in: store) { FileHandle.standardError.write(Data("cairn: warning: \($0)\n".utf8)) }
            var matches: [(record: AuditRecord, reasons: [String])] = []
            for r in records {
                guard let reasons = query.reasons(r), let trusted = try await trust.reasons(r.image, store: store) else { continue }
                matches.append((r, reasons + trusted))
            }
            switch format {
            case .json:
                struct Entry: Encodable {
                    var record: AuditRecord
                    var reasons: [String]
                }
                print(String(decoding: try CanonicalJSON.encode(matches.map { Entry(record: $0.record, reasons: $0.reasons) }), as: UTF8.self))
            case .table:
                var rows = [["IMAGE", "RUN IMAGE", "BASE", "BUILDPACKS", "WHY"]]
                for m in matches {
                    rows.append([m.record.image, m.record.runImage ?? "-", m.record.runImageStatus,
                                 m.record.buildpacks.map { "\($0.id)@\($0.version)" }.joined(separator: ","),
                                 m.reasons.isEmpty ? "-" : m.reasons.joined(separator: "; ")])
                }
                let widths = (0..<5).map { c in rows.map { $0[c].count }.max() ?? 0 }
                for row in rows {
                    print(row.enumerated().map { $0.offset == 4 ? $0.element : $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                        .joined(separator: "  "))
                }
                FileHandle.standardError.write(Data("\(matches.count) of \(records.count) app images match\n".utf8))
            }
        }
    }
}

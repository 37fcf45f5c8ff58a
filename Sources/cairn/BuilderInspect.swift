import ArgumentParser
import Buildpacks
import CairnPlatform
import Foundation
import OCI

/// `cairn builder inspect NAME`: what pack's `builder inspect` shows, read from the builder's
/// labels (io.buildpacks.builder.metadata, .buildpack.order, .buildpack.order-extensions).
struct BuilderInspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a builder's description, run images, lifecycle and APIs, buildpacks, extensions and detection order.",
        discussion: "Examples:\n  cairn builder inspect cairn/builder\n  cairn builder inspect    (the default builder)\n  cairn builder inspect cairn/builder --format json")

    @Argument(help: "The builder image (default: `cairn config default-builder`).") var name: String?
    @Option(help: "table or json (one object).") var format: OutputFormat = .table
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            guard let name = try name ?? CairnConfig.load().defaultBuilder else {
                throw CLIError("no builder named and no default builder; give one, or set it with `cairn config default-builder NAME`")
            }
            let store = try storeOptions.open()
            let image: StoredImage
            do { image = try store.resolve(name) } catch {
                throw CLIError("builder \(name) is not in the store (see `cairn images`); pull it with `cairn pull \(name)`")
            }
            let labels = image.config.config?.labels ?? [:]
            guard let raw = labels[CNBLabel.builderMetadata] else {
                throw CLIError("\(name) is not a builder: it has no \(CNBLabel.builderMetadata) label")
            }
            let metadata: BuilderMetadataLabel
            do { metadata = try JSONDecoder().decode(BuilderMetadataLabel.self, from: Data(raw.utf8)) } catch {
                throw CLIError("builder \(name): its \(CNBLabel.builderMetadata) label cannot be read: \(error)")
            }
            let order = try Self.order(labels, CNBLabel.buildpackOrder, builder: name)
            let extensionOrder = try Self.order(labels, CNBLabel.orderExtensions, builder: name)
            if format == .json {
                return try printJSON(Self.json(name: name, image: image, metadata, order: order, extensionOrder: extensionOrder))
            }
            Self.printTable(name: name, image: image, metadata, order: order, extensionOrder: extensionOrder)
        }
    }

    static func order(_ labels: [String: String], _ label: String, builder: String) throws -> [OrderLabelGroup] {
        guard let raw = labels[label] else { return [] }
        do { return try JSONDecoder().decode([OrderLabelGroup].self, from: Data(raw.utf8)) } catch {
            throw CLIError("builder \(builder): its \(label) label cannot be read: \(error)")
        }
    }

    static func runImages(_ m: BuilderMetadataLabel) -> [BuilderMetadataLabel.RunImage] {
        m.images ?? m.stack?.runImage.map { [$0] } ?? []
    }

    static func printTable(name: String, image: StoredImage, _ m: BuilderMetadataLabel, order: [OrderLabelGroup], extensionOrder: [OrderLabelGroup]) {
        print("Inspecting builder: \(name)")
        print("Digest: \(image.digest)")
        print("Description: \(m.description.isEmpty ? "(none)" : m.description)")
        if let by = m.createdBy { print("Created By: \(by.name) \(by.version)") }
        print("\nRun Images:")
        let runs = runImages(m)
        if runs.isEmpty { print("  (none)") }
        for r in runs {
            print("  \(r.image ?? "(unnamed)")" + ((r.mirrors ?? []).isEmpty ? "" : " (mirrors: \((r.mirrors ?? []).joined(separator: ", ")))"))
        }
        print("\nLifecycle:")
        print("  Version: \(m.lifecycle?.version ?? "(unknown)")")
        if let apis = m.lifecycle?.apis {
            print("  Buildpack APIs: supported \(SupportedAPIs.list(apis.buildpack.supported)); deprecated \(apis.buildpack.deprecated.isEmpty ? "(none)" : SupportedAPIs.list(apis.buildpack.deprecated))")
            print("  Platform APIs: supported \(SupportedAPIs.list(apis.platform.supported)); deprecated \(apis.platform.deprecated.isEmpty ? "(none)" : SupportedAPIs.list(apis.platform.deprecated))")
        }
        printModules("Buildpacks", m.buildpacks)
        printOrder("Detection Order", order)
        if !(m.extensions ?? []).isEmpty || !extensionOrder.isEmpty {
            printModules("Extensions", m.extensions ?? [])
            printOrder("Detection Order (Extensions)", extensionOrder)
        }
    }

    static func printModules(_ title: String, _ modules: [BuilderMetadataLabel.Module]) {
        print("\n\(title):")
        if modules.isEmpty { return print("  (none)") }
        let width = max(2, modules.map(\.id.count).max() ?? 0) + 2
        let versionWidth = max(7, modules.map(\.version.count).max() ?? 0) + 2
        print("  " + "ID".padding(toLength: width, withPad: " ", startingAt: 0) + "VERSION".padding(toLength: versionWidth, withPad: " ", startingAt: 0) + "HOMEPAGE")
        for b in modules.sorted(by: { ($0.id, $0.version) < ($1.id, $1.version) }) {
            print("  " + b.id.padding(toLength: width, withPad: " ", startingAt: 0) + b.version.padding(toLength: versionWidth, withPad: " ", startingAt: 0)
                  + (b.homepage ?? "-"))
        }
    }

    static func printOrder(_ title: String, _ order: [OrderLabelGroup]) {
        print("\n\(title):")
        if order.isEmpty { return print("  (none)") }
        for (n, group) in order.enumerated() {
            print("  Group #\(n + 1):")
            for e in group.group {
                print("    \(e.id)" + (e.version.map { "@\($0)" } ?? "") + (e.optional == true ? " (optional)" : ""))
            }
        }
    }

    static func json(name: String, image: StoredImage, _ m: BuilderMetadataLabel, order: [OrderLabelGroup], extensionOrder: [OrderLabelGroup]) -> [String: Any] {
        let modules = { (list: [BuilderMetadataLabel.Module]) in
            list.map { b -> [String: Any] in ["id": b.id, "version": b.version, "homepage": b.homepage ?? NSNull()] }
        }
        let groups = { (list: [OrderLabelGroup]) in
            list.map { g in g.group.map { e -> [String: Any] in ["id": e.id, "version": e.version ?? NSNull(), "optional": e.optional ?? false] } }
        }
        var lifecycle: [String: Any] = ["version": m.lifecycle?.version ?? NSNull()]
        if let apis = m.lifecycle?.apis {
            lifecycle["buildpackAPIs"] = ["supported": apis.buildpack.supported.map(\.description), "deprecated": apis.buildpack.deprecated.map(\.description)]
            lifecycle["platformAPIs"] = ["supported": apis.platform.supported.map(\.description), "deprecated": apis.platform.deprecated.map(\.description)]
        }
        return ["builder": name, "digest": image.digest.description, "description": m.description,
                "createdBy": m.createdBy.map { ["name": $0.name, "version": $0.version] } ?? NSNull(),
                "runImages": runImages(m).map { ["image": $0.image ?? NSNull(), "mirrors": $0.mirrors ?? []] as [String: Any] },
                "lifecycle": lifecycle, "buildpacks": modules(m.buildpacks), "extensions": modules(m.extensions ?? []),
                "order": groups(order), "orderExtensions": groups(extensionOrder)]
    }
}

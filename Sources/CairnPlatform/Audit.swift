import Buildpacks
import Phases
import Foundation
import Inventory
import OCI

/// `NAME`, `NAME@VERSION` or `NAME@<VERSION` (versions compared part by part, numbers as numbers).
public struct VersionConstraint: Sendable, CustomStringConvertible {
    public var name: String
    public var version: String?
    public var below: Bool

    public init(parsing text: String) throws {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, !first.isEmpty else { throw PlatformError.invalidArgument("\"\(text)\"", reason: "expected NAME, NAME@VERSION or NAME@<VERSION") }
        name = first
        below = parts.count == 2 && parts[1].hasPrefix("<")
        version = parts.count == 2 ? String(parts[1].dropFirst(below ? 1 : 0)) : nil
        if parts.count == 2 && (version ?? "").isEmpty { throw PlatformError.invalidArgument("\"\(text)\"", reason: "no version after @") }
    }

    /// Whether a package matches; versions are compared in the package's ecosystem's order (the
    /// inventory's comparators: dpkg's for run image packages, PEP 440 for PyPI, …), part by
    /// part when the ecosystem is not known.
    public func matches(name other: String, version candidate: String?, ecosystem: Ecosystem = .generic) -> Bool {
        guard other == name else { return false }
        guard let version else { return true }
        guard let candidate else { return false }
        return below ? ecosystem.compare(candidate, version) < 0 : ecosystem.compare(candidate, version) == 0
    }

    public var description: String { name + (version.map { "@" + (below ? "<" : "") + $0 } ?? "") }

    /// Compares dotted versions: numeric parts as numbers, others as text. Where one version has
    /// more parts, a numeric one makes it greater (1.0.1 > 1.0), a textual one less (a
    /// pre-release: 1.0-rc1 < 1.0).
    public static func compare(_ a: String, _ b: String) -> Int { GenericVersion.compare(a, b) }
}

/// What an app image in the store is made of, as its labels and SBOM layer say.
public struct AuditRecord: Codable, Sendable {
    public var image: String
    public var digest: String
    /// The run image it was built on (or last rebased onto), by name.
    public var runImage: String?
    public var runImageTopLayer: String?
    /// `current` when the store's image of that name has the same layers (their ChainID: a new
    /// version may keep its top layer), `outdated` when it has others, `unknown` when the store
    /// does not hold it.
    public var runImageStatus: String
    public var buildpacks: [Module]
    public var packages: [Package]

    public struct Module: Codable, Hashable, Sendable {
        public var id: String
        public var version: String
    }

    /// A package: from a buildpack's SBOM (`buildpack`, and `layer` unless it is the buildpack's
    /// launch SBOM), or from dpkg's status in the run image layers (`buildpack` nil).
    public struct Package: Codable, Hashable, Sendable {
        public var name: String
        public var version: String?
        public var buildpack: String?
        public var layer: String?
        /// The ecosystem whose order its versions follow (OSV's name; "" when unknown).
        public var ecosystem: String?

        var origin: String { buildpack.map { $0 + (layer.map { ":" + $0 } ?? "") } ?? "run image" }
    }
}

/// Which images an audit asks for: every criterion given must hold.
public struct AuditQuery: Sendable {
    public var runImage: String?
    public var outdatedOnly = false
    public var buildpack: VersionConstraint?
    public var package: VersionConstraint?

    public init() {}

    /// Why `record` matches (one line per criterion), or nil when it does not.
    public func reasons(_ record: AuditRecord) -> [String]? {
        var why: [String] = []
        if let runImage {
            guard let have = record.runImage, ImageReference.sameImage(have, runImage, anyTag: true) else { return nil }
            why.append("run image \(have)")
        }
        if outdatedOnly {
            guard record.runImageStatus == "outdated" else { return nil }
            why.append("run image \(record.runImage ?? "?") has newer layers in the store")
        }
        if let buildpack {
            let hits = record.buildpacks.filter { buildpack.matches(name: $0.id, version: $0.version) }
            guard !hits.isEmpty else { return nil }
            why += hits.map { "buildpack \($0.id)@\($0.version)" }
        }
        if let package {
            let hits = record.packages.filter { package.matches(name: $0.name, version: $0.version, ecosystem: Ecosystem(rawValue: $0.ecosystem ?? "") ?? .generic) }
            guard !hits.isEmpty else { return nil }
            why += hits.map { "package \($0.name)\($0.version.map { "@" + $0 } ?? "") (\($0.origin))" }
        }
        return why
    }

}

public enum Audit {
    /// A record for every app image (one with lifecycle metadata) in the store, by name.
    /// Images whose labels or SBOM layer cannot be read are reported through `warn` and skipped.
    public static func records(in store: ImageStore, warn: (String) -> Void) throws -> [AuditRecord] {
        var records: [AuditRecord] = []
        var runStacks: [String: String?] = [:]
        var dpkg = DpkgStatusReader(store: store)
        for (name, descriptor) in try store.images() {
            let image: StoredImage
            do { image = try store.load(descriptor, name: name) } catch {
                warn("\(name): \(error)")
                continue
            }
            do {
                guard let metadata = try image.lifecycleMetadata() else { continue }
                let runName = metadata.runImage?.image
                // A run image version is its whole stack of layers (their ChainID): a new
                // version may keep a byte-identical top layer.
                let stack = metadata.runImage.flatMap { InventoryIndexer.runImageStack(image, $0) }
                var status = "unknown"
                if let runName {
                    if runStacks[runName] == nil {
                        runStacks[runName] = .some((try? store.resolve(runName)).flatMap { Digest.chainID(of: $0.config.rootfs.diffIDs)?.description })
                    }
                    if let current = runStacks[runName] ?? nil, let stack {
                        status = current == stack.layers ? "current" : "outdated"
                    }
                }
                var packages: [AuditRecord.Package] = []
                if let stack {
                    packages = try dpkg.packages(in: Array(image.manifest.layers[...stack.top])).map {
                        AuditRecord.Package(name: $0.name, version: $0.version, buildpack: nil, layer: nil, ecosystem: Ecosystem.debian.rawValue)
                    }
                }
                for doc in try SBOMReader.documents(of: image, in: store) {
                    let components: [SBOMDocument.Component]
                    do { components = try doc.components() } catch {
                        warn("\(name): \(error); its packages are not listed")
                        continue
                    }
                    packages += components.map { AuditRecord.Package(name: $0.name, version: $0.version, buildpack: doc.buildpack, layer: doc.layer,
                                                                           ecosystem: $0.purl.flatMap(PackageURL.init)?.osv.ecosystem.rawValue) }
                }
                var modules: [AuditRecord.Module] = []
                do { modules = try buildModules(image) } catch { warn("\(name): \(error); its buildpacks are not listed") }
                records.append(AuditRecord(image: name, digest: image.digest.description, runImage: runName,
                                           runImageTopLayer: metadata.runImage?.topLayer, runImageStatus: status,
                                           buildpacks: modules, packages: packages))
            } catch {
                warn("\(name): \(error)")
            }
        }
        return records
    }

    /// The buildpacks `io.buildpacks.build.metadata` lists (read leniently: other lifecycles'
    /// labels carry more).
    /// - Throws: `PlatformError.invalidLabel` when the label is there but cannot be read.
    static func buildModules(_ image: StoredImage) throws -> [AuditRecord.Module] {
        struct Label: Decodable {
            var buildpacks: [AuditRecord.Module]?
        }
        guard let raw = image.config.config?.labels?[CNBLabel.buildMetadata] else { return [] }
        do {
            return try JSONDecoder().decode(Label.self, from: Data(raw.utf8)).buildpacks ?? []
        } catch {
            throw PlatformError.invalidLabel(image: image.name ?? image.digest.description, label: CNBLabel.buildMetadata,
                                             reason: "is not the expected JSON", cause: error)
        }
    }
}

/// The packages dpkg records as installed in a stack of layers: `var/lib/dpkg/status` (the top-most
/// layer that has it) and `var/lib/dpkg/status.d/*` (distroless images). Each layer is read once
/// per reader, however many images share it. Whiteouts of these files are not followed.
public struct DpkgStatusReader: Sendable {
    let store: ImageStore
    private var seen: [Digest: Scanned] = [:]

    struct Scanned: Sendable {
        var status: String?
        var statusD: [String: String] = [:]
        /// `etc/os-release`, else `usr/lib/os-release` (etc/os-release is often a link to it).
        var osRelease: String?
    }

    public init(store: ImageStore) { self.store = store }

    mutating func packages(in layers: [Descriptor]) throws -> [SBOMDocument.Component] {
        var status: String?
        var statusD: [String: String] = [:]
        for layer in layers {
            let found = try scan(layer)
            if let s = found.status { status = s }
            statusD.merge(found.statusD) { _, new in new }
        }
        let texts = (status.map { [$0] } ?? []) + statusD.keys.sorted().compactMap { statusD[$0] }
        return texts.flatMap(Self.parse)
    }

    /// `ID` and `VERSION_ID` of the os-release the layers leave (the last layer that has one).
    public mutating func osRelease(in layers: [Descriptor]) throws -> (id: String, versionID: String)? {
        var text: String?
        for layer in layers { if let t = try scan(layer).osRelease { text = t } }
        guard let text else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<eq])] = line[line.index(after: eq)...].trimmingCharacters(in: CharacterSet(charactersIn: "\"' "))
        }
        guard let id = fields["ID"], !id.isEmpty else { return nil }
        return (id, fields["VERSION_ID"] ?? "")
    }

    private mutating func scan(_ layer: Descriptor) throws -> Scanned {
        if let known = seen[layer.digest] { return known }
        guard store.hasBlob(layer.digest) else { throw PlatformError.notInStore(what: "layer", reference: layer.digest.description) }
        let reader = try TarReader(layerBlob: store.blobPath(layer.digest), what: "layer \(layer.digest)")
        var result = Scanned()
        while let header = try reader.next() {
            guard header.type == .regular, header.size <= Int64(SBOMReader.maxDocument) else { continue }
            let name = header.name.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
            if name == "var/lib/dpkg/status" {
                result.status = String(decoding: try reader.readAll(), as: UTF8.self)
            } else if name.hasPrefix("var/lib/dpkg/status.d/") {
                result.statusD[name] = String(decoding: try reader.readAll(), as: UTF8.self)
            } else if name == "etc/os-release" || (name == "usr/lib/os-release" && result.osRelease == nil) {
                result.osRelease = String(decoding: try reader.readAll(), as: UTF8.self)
            }
        }
        seen[layer.digest] = result
        return result
    }

    /// Stanzas with `Package` and `Version` whose `Status` (when given) says installed.
    static func parse(_ text: String) -> [SBOMDocument.Component] {
        text.components(separatedBy: "\n\n").compactMap { stanza in
            var fields: [String: String] = [:]
            for line in stanza.split(separator: "\n") where !line.hasPrefix(" ") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            guard let name = fields["Package"] else { return nil }
            if let state = fields["Status"], !state.hasSuffix(" installed") { return nil }
            // `Source: name` or `Source: name (version)` when the source version differs.
            var source: String?, sourceVersion: String?
            if let s = fields["Source"] {
                let parts = s.split(separator: " ", maxSplits: 1).map(String.init)
                source = parts.first
                if parts.count == 2 { sourceVersion = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "() ")) }
            }
            return SBOMDocument.Component(name: name, version: fields["Version"], source: source, sourceVersion: sourceVersion)
        }
    }
}

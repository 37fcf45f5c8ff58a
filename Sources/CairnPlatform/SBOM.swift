import Buildpacks
import Phases
import Foundation
import OCI

/// One SBOM document from an app image's SBOM layer (platform.md, exporter:
/// `<layers>/sbom/launch/<buildpack>/[<layer>/]sbom.<ext>`).
public struct SBOMDocument: Sendable {
    /// The path in the layer.
    public var path: String
    /// The buildpack's ID as its directory names it (`/` escaped to `_`).
    public var buildpack: String
    /// The launch layer it describes; nil for the buildpack's own (`launch.sbom.*`).
    public var layer: String?
    /// `cdx.json`, `spdx.json` or `syft.json`.
    public var format: String
    public var data: Data

    /// The packages it lists: CycloneDX `components` (nested too), SPDX `packages`, Syft `artifacts`.
    /// - Throws: `PlatformError.invalidFile` naming the document when it is not a JSON object.
    public func components() throws -> [Component] {
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: data) } catch {
            throw PlatformError.invalidFile(path: path, reason: "the \(format) SBOM of \(buildpack)\(layer.map { ":" + $0 } ?? "") is not valid JSON", cause: error)
        }
        guard let root = parsed as? [String: Any] else {
            throw PlatformError.invalidFile(path: path, reason: "the \(format) SBOM of \(buildpack)\(layer.map { ":" + $0 } ?? "") is not a JSON object")
        }
        /// CycloneDX and Syft give `purl`; SPDX an external reference of type purl.
        func purl(_ item: [String: Any]) -> String? {
            if let p = item["purl"] as? String { return p }
            let refs = item["externalRefs"] as? [[String: Any]] ?? []
            return refs.first { ($0["referenceType"] as? String) == "purl" }?["referenceLocator"] as? String
        }
        func named(_ items: Any?, version key: String, nested: String? = nil) -> [Component] {
            guard let list = items as? [[String: Any]] else { return [] }
            return list.flatMap { item -> [Component] in
                let own = (item["name"] as? String).map { [Component(name: $0, version: item[key] as? String, purl: purl(item))] } ?? []
                return own + (nested.map { named(item[$0], version: key, nested: $0) } ?? [])
            }
        }
        switch format {
        case "cdx.json": return named(root["components"], version: "version", nested: "components")
        case "spdx.json": return named(root["packages"], version: "versionInfo")
        case "syft.json": return named(root["artifacts"], version: "version")
        default: return []
        }
    }

    public struct Component: Codable, Hashable, Sendable {
        public var name: String
        public var version: String?
        public var purl: String?
        /// dpkg: the source package and its version, when they differ from the binary's.
        public var source: String?
        public var sourceVersion: String?

        public init(name: String, version: String?, purl: String? = nil, source: String? = nil, sourceVersion: String? = nil) {
            self.name = name
            self.version = version
            self.purl = purl
            self.source = source
            self.sourceVersion = sourceVersion
        }
    }
}

/// `sbom.sha` of io.buildpacks.lifecycle.metadata, all `SBOMReader.sbomLayer` needs of the
/// label: decoding the whole label (a dozen nested types, each set up on first use) took most of
/// the time a signed build spent finding its SBOM.
private struct SBOMOnly: Decodable {
    struct Layer: Decodable { var sha: String? }
    var sbom: Layer?
}

public enum SBOMReader {
    /// Largest SBOM file read into memory.
    static let maxDocument = 64 << 20

    /// The SBOM documents of an app image in `store`; empty when it has no SBOM layer.
    /// - Throws: when the label names a layer the image lacks or the layer cannot be read.
    public static func documents(of image: StoredImage, in store: ImageStore) throws -> [SBOMDocument] {
        guard let blob = try sbomLayer(of: image) else { return [] }
        guard store.hasBlob(blob.digest) else { throw PlatformError.notInStore(what: "the SBOM layer", reference: blob.digest.description) }
        let reader = try TarReader(layerBlob: store.blobPath(blob.digest), what: "SBOM layer")
        var documents: [SBOMDocument] = []
        while let header = try reader.next() {
            guard header.type == .regular, let doc = parse(header.name) else { continue }
            guard header.size <= Int64(maxDocument) else { throw PlatformError.tooLarge(what: "SBOM \(header.name)", limitMiB: maxDocument >> 20) }
            var d = doc
            d.data = Data(try reader.readAll())
            documents.append(d)
        }
        return documents
    }

    /// The SBOM layer the lifecycle metadata label names, if any.
    public static func sbomLayer(of image: StoredImage) throws -> Descriptor? {
        guard let raw = image.config.config?.labels?[CNBLabel.lifecycleMetadata] else { return nil }
        let label: SBOMOnly
        do { label = try JSONDecoder().decode(SBOMOnly.self, from: Data(raw.utf8)) } catch {
            throw PlatformError.invalidLabel(image: image.name ?? image.digest.description, label: CNBLabel.lifecycleMetadata, reason: "is not valid JSON", cause: error)
        }
        guard let sha = label.sbom?.sha else { return nil }
        guard let layer = Digest(sha).flatMap(image.layer(diffID:)) else {
            throw PlatformError.invalidLabel(image: image.name ?? image.digest.description, label: CNBLabel.lifecycleMetadata, reason: "names SBOM layer \(sha), which is not one of the image's layers")
        }
        return layer.descriptor
    }

    /// `…/sbom/<scope>/<bp>/sbom.<ext>` or `…/sbom/<scope>/<bp>/<layer>/sbom.<ext>`; the scope is
    /// `launch` (the image's SBOM layer) or `build` (the build-time SBOM kept beside it).
    static func parse(_ name: String, scope: String = "launch") -> SBOMDocument? {
        let parts = name.split(separator: "/").map(String.init)
        guard let at = parts.lastIndex(of: scope), at > 0, parts[at - 1] == "sbom" else { return nil }
        let rest = Array(parts[(at + 1)...])
        guard rest.count == 2 || rest.count == 3, let file = rest.last, file.hasPrefix("sbom.") else { return nil }
        return SBOMDocument(path: name, buildpack: rest[0], layer: rest.count == 3 ? rest[1] : nil,
                            format: String(file.dropFirst(5)), data: Data())
    }
}

import Buildpacks
import Phases
import Foundation
import OCI

/// What a buildpacks-built image's labels say about it, for `cairn inspect`: its run image,
/// buildpacks, processes and what each layer is.
public struct AppImageSummary: Sendable {
    public var runImage: String?
    public var runImageReference: String?
    public var rebasable: String?
    public var buildpacks: [AuditRecord.Module]
    public var processes: [Process]
    /// diffID → `run image`, `<buildpack>:<layer>`, `app`, `slice`, `launcher`, `process types`, `SBOM`.
    public var layerRoles: [Digest: String]

    public struct Process: Sendable {
        public var type: String
        public var command: String
        public var isDefault: Bool
    }

    /// nil when the image has no (readable) `io.buildpacks.lifecycle.metadata` label.
    public init?(_ image: StoredImage) {
        let labels = image.config.config?.labels ?? [:]
        guard let metadata = try? image.lifecycleMetadata() else { return nil }
        runImage = metadata.runImage?.image
        runImageReference = metadata.runImage?.reference
        rebasable = labels[CNBLabel.rebasable]
        // A summary for display: `cairn inspect` prints the labels as they are beside it.
        buildpacks = (try? Audit.buildModules(image)) ?? []
        var roles: [Digest: String] = [:]
        let diffIDs = image.config.rootfs.diffIDs
        if let top = metadata.runImage?.topLayer.flatMap(Digest.init), let index = diffIDs.firstIndex(of: top) {
            for d in diffIDs[...index] { roles[d] = "run image" }
        }
        for bp in metadata.buildpacks {
            for (name, layer) in bp.layers { if let d = Digest(layer.sha) { roles[d] = "\(bp.key):\(name)" } }
        }
        for (i, app) in metadata.app.enumerated() { if let d = Digest(app.sha) { roles[d] = i == metadata.app.count - 1 ? "app" : "app slice" } }
        for (sha, role) in [(metadata.launcher?.sha, "launcher"), (metadata.config?.sha, "process types"), (metadata.sbom?.sha, "SBOM")] {
            if let d = sha.flatMap(Digest.init) { roles[d] = role }
        }
        layerRoles = roles
        struct BuildLabel: Decodable {
            struct P: Decodable {
                var type: String
                var command: [String]?
                var args: [String]?
            }
            var processes: [P]?
        }
        let entrypoint = image.config.config?.entrypoint?.first ?? ""
        let build = labels[CNBLabel.buildMetadata].flatMap { try? JSONDecoder().decode(BuildLabel.self, from: Data($0.utf8)) }
        processes = (build?.processes ?? []).map {
            Process(type: $0.type, command: (($0.command ?? []) + ($0.args ?? [])).joined(separator: " "),
                    isDefault: entrypoint.hasSuffix("/process/" + $0.type))
        }
    }
}

import Buildpacks
import OCI

/// A patch that changes nothing in this image, and why (no matching layer, already patched).
public struct SkippedPatch: Codable, Hashable, Sendable {
    public var patch: String
    public var reason: String
}

/// The patches of a patches file resolved against one app image: every patch image read and
/// checked, nothing changed yet. Applying it cannot fail for a reason resolution could see.
public struct LayerPatchPlan: Sendable {
    public var replacements: [LayerReplacement] = []
    public var skipped: [SkippedPatch] = []
    /// Per replacement (same order): where its new layer and metadata come from.
    var sources: [Source] = []
    /// The app image's SBOM layer entries, read when a replaced layer has SBOM documents to swap.
    var appSBOM: SBOMEntries?

    struct Source: Sendable {
        var descriptor: Descriptor
        var store: ImageStore
        /// The patch image's label entry for the layer, verbatim (nil for the launcher).
        var labelEntry: AnyTOML?
        /// The patch image's history entry for the layer.
        var history: History?
        /// The patch image's SBOM documents for the layer (`sbom/launch/<bp>/<layer>/…`).
        var sbom: SBOMEntries?
    }

    public var isEmpty: Bool { replacements.isEmpty }
}

/// Entries of an SBOM layer: paths relative to `…/sbom/launch/`, with their headers and bytes.
struct SBOMEntries: Sendable {
    /// The path up to and including `sbom/launch` in this layer (`layers/sbom/launch`).
    var root: String
    var entries: [(relative: String, header: TarHeader, contents: [UInt8])]
    /// The directories above `root` (`layers`, `layers/sbom`), kept as they are.
    var parents: [(name: String, header: TarHeader)] = []
    /// The diffID of the layer these entries were read from, when read from an image's SBOM layer.
    var diffID: Digest?
}

import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// A layer patches file (RFC #333's format, plus the launcher entry proposed in its discussion):
/// which buildpack-contributed layers of an app image to replace by the same layer of a patch
/// image, and optionally the launcher layer.
public struct LayerPatchFile: Codable, Hashable, Sendable {
    public var patches: [Patch]
    public var launcher: LauncherPatch?

    public struct Patch: Codable, Hashable, Sendable {
        /// Buildpack ID, a glob (`example/*`).
        public var buildpack: String
        /// Layer name, a glob.
        public var layer: String
        /// Dot paths into the layer's metadata and the glob (strings) or value each must match.
        public var data: [String: AnyTOML]?
        public var patchImage: String
        public var patchImageMirrors: [String]?

        enum CodingKeys: String, CodingKey {
            case buildpack, layer, data
            case patchImage = "patch-image"
            case patchImageMirrors = "patch-image.mirrors"
        }

        public init(buildpack: String, layer: String, data: [String: AnyTOML]? = nil, patchImage: String, patchImageMirrors: [String]? = nil) {
            self.buildpack = buildpack
            self.layer = layer
            self.data = data
            self.patchImage = patchImage
            self.patchImageMirrors = patchImageMirrors
        }

        /// The patch image, then its mirrors, in the order they are tried.
        public var images: [String] { [patchImage] + (patchImageMirrors ?? []) }
    }

    public struct LauncherPatch: Codable, Hashable, Sendable {
        /// The launcher layer is replaced only when its diffID is one of these (any, when absent).
        public var mustMatchSHA: [String]?
        public var patchImage: String
        public var patchImageMirrors: [String]?

        enum CodingKeys: String, CodingKey {
            case mustMatchSHA = "must-match-sha"
            case patchImage = "patch-image"
            case patchImageMirrors = "patch-image.mirrors"
        }

        public init(mustMatchSHA: [String]? = nil, patchImage: String, patchImageMirrors: [String]? = nil) {
            self.mustMatchSHA = mustMatchSHA
            self.patchImage = patchImage
            self.patchImageMirrors = patchImageMirrors
        }

        public var images: [String] { [patchImage] + (patchImageMirrors ?? []) }
    }

    public init(patches: [Patch], launcher: LauncherPatch? = nil) {
        self.patches = patches
        self.launcher = launcher
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        patches = try c.decodeIfPresent([Patch].self, forKey: .patches) ?? []
        launcher = try c.decodeIfPresent(LauncherPatch.self, forKey: .launcher)
    }

    enum CodingKeys: String, CodingKey { case patches, launcher }

    /// Reads and checks a patches file.
    /// - Throws: `LayerPatchError.invalidFile` naming the file and what is wrong.
    public static func read(_ path: String) throws(LayerPatchError) -> LayerPatchFile {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .invalidFile(path: path, detail: "cannot read it: \(errorText(error))")
        }
        let file: LayerPatchFile
        do { file = try JSONDecoder().decode(LayerPatchFile.self, from: data) } catch {
            throw .invalidFile(path: path, detail: "not a layer patches document ({\"patches\": [{\"buildpack\", \"layer\", \"patch-image\", …}]}): \(error)")
        }
        for (i, p) in file.patches.enumerated() {
            for (field, value) in [("buildpack", p.buildpack), ("layer", p.layer), ("patch-image", p.patchImage)] where value.isEmpty {
                throw .invalidFile(path: path, detail: "patches[\(i)].\(field) is empty")
            }
        }
        if let l = file.launcher, l.patchImage.isEmpty { throw .invalidFile(path: path, detail: "launcher.patch-image is empty") }
        if file.patches.isEmpty && file.launcher == nil { throw .invalidFile(path: path, detail: "it names no patch and no launcher patch") }
        return file
    }
}

public enum LayerPatchError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidFile(path: String, detail: String)

    public var description: String {
        switch self {
        case .invalidFile(let path, let detail): "layer patches file \(path): \(detail)"
        }
    }
}

/// One layer of an app image replaced by the same layer of a patch image.
public struct LayerReplacement: Codable, Hashable, Sendable {
    /// The buildpack that contributed the layer; nil for the launcher layer.
    public var buildpack: String?
    /// The layer name (`launcher` for the launcher layer).
    public var layer: String
    public var oldDiffID: String
    public var newDiffID: String
    /// The patch image reference the layer came from (the image or the mirror that answered).
    public var patchImage: String
    public var patchImageDigest: String
    /// The buildpack's (or launcher's) version before and after, when known.
    public var oldVersion: String?
    public var newVersion: String?

    enum CodingKeys: String, CodingKey {
        case buildpack, layer
        case oldDiffID = "old-diff-id"
        case newDiffID = "new-diff-id"
        case patchImage = "patch-image"
        case patchImageDigest = "patch-image-digest"
        case oldVersion = "old-version"
        case newVersion = "new-version"
    }

    public init(buildpack: String?, layer: String, oldDiffID: String, newDiffID: String, patchImage: String,
                patchImageDigest: String, oldVersion: String?, newVersion: String?) {
        self.buildpack = buildpack
        self.layer = layer
        self.oldDiffID = oldDiffID
        self.newDiffID = newDiffID
        self.patchImage = patchImage
        self.patchImageDigest = patchImageDigest
        self.oldVersion = oldVersion
        self.newVersion = newVersion
    }

    /// `example/node:dist` or `launcher`.
    public var name: String { buildpack.map { "\($0):\(layer)" } ?? layer }
}

/// The rules that decide which layers a patch applies to; pure functions over label data.
public enum LayerPatchMatching {
    /// The layer metadata key by which a buildpack allows its layer to be patched (in the
    /// `[metadata]` table of `<layer>.toml`, so it travels in the image's label), set to true: the
    /// name of the rebasable label, as the RFC discussion proposed.
    public static let rebasableKey = CNBLabel.rebasable

    /// Shell-style glob (`*`, `?`, `[…]`) over the whole string.
    public static func glob(_ pattern: String, _ text: String) -> Bool {
        fnmatch(pattern, text, 0) == 0
    }

    /// Whether a layer's metadata matches every selector: each key a dot path into nested tables
    /// (a key that itself contains dots is found too), each value a glob for strings or, for
    /// numbers and booleans, compared as their TOML text.
    public static func matches(_ selectors: [String: AnyTOML]?, _ data: [String: AnyTOML]?) -> Bool {
        for (path, expected) in selectors ?? [:] {
            guard let actual = lookup(path.split(separator: ".", omittingEmptySubsequences: false).map(String.init), in: data ?? [:]),
                  let actualText = text(actual), let expectedText = text(expected) else { return false }
            if case .string = expected {
                guard glob(expectedText, actualText) else { return false }
            } else if actualText != expectedText {
                return false
            }
        }
        return true
    }

    /// The value at a dot path: at each step the longest run of components that is a key.
    static func lookup(_ components: [String], in table: [String: AnyTOML]) -> AnyTOML? {
        guard !components.isEmpty else { return nil }
        for length in stride(from: components.count, through: 1, by: -1) {
            let key = components[..<length].joined(separator: ".")
            guard let value = table[key] else { continue }
            if length == components.count { return value }
            if case .table(let nested) = value, let found = lookup(Array(components[length...]), in: nested) { return found }
        }
        return nil
    }

    /// A scalar's TOML text; nil for arrays and tables (no selector matches them).
    static func text(_ value: AnyTOML) -> String? {
        switch value {
        case .string(let s): s
        case .integer(let i): String(i)
        case .bool(let b): b ? "true" : "false"
        case .float(let d): d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) + ".0" : String(d)
        case .array, .table: nil
        }
    }

    /// Whether the buildpack allowed this layer to be patched (`rebasableKey` true in
    /// its metadata).
    public static func isRebasable(_ data: [String: AnyTOML]?) -> Bool {
        guard let value = lookup([rebasableKey], in: data ?? [:]) else { return false }
        switch value {
        case .bool(let b): return b
        case .string(let s): return s == "true"
        default: return false
        }
    }

    /// The layers of `metadata` a patch applies to, in a fixed order (buildpack order in the label,
    /// then layer name).
    public static func matchingLayers(_ patch: LayerPatchFile.Patch, in metadata: LifecycleMetadataLabel) -> [(buildpack: String, layer: String)] {
        var found: [(String, String)] = []
        for bp in metadata.buildpacks where glob(patch.buildpack, bp.key) {
            for name in bp.layers.keys.sorted() where glob(patch.layer, name) {
                if matches(patch.data, bp.layers[name]?.data) { found.append((bp.key, name)) }
            }
        }
        return found
    }

    /// Whether version `a` is newer than `b`, comparing dot-separated numbers (`1.10.0` >
    /// `1.9.3`); a pre-release (`-rc1`) sorts before its release. False when either is not a
    /// version.
    public static func isNewer(_ a: String, than b: String) -> Bool {
        func parse(_ v: String) -> (numbers: [Int], prerelease: String?)? {
            let trimmed = v.hasPrefix("v") ? String(v.dropFirst()) : v
            let core = trimmed.split(separator: "+", maxSplits: 1).first.map(String.init) ?? ""
            let parts = core.split(separator: "-", maxSplits: 1).map(String.init)
            let numbers = (parts.first ?? "").split(separator: ".").map { Int($0) }
            guard !numbers.isEmpty, numbers.allSatisfy({ $0 != nil }) else { return nil }
            return (numbers.map { $0! }, parts.count > 1 ? parts[1] : nil)
        }
        guard let x = parse(a), let y = parse(b) else { return false }
        for i in 0..<max(x.numbers.count, y.numbers.count) {
            let (p, q) = (i < x.numbers.count ? x.numbers[i] : 0, i < y.numbers.count ? y.numbers[i] : 0)
            if p != q { return p > q }
        }
        switch (x.prerelease, y.prerelease) {
        case (nil, .some): return true
        case (.some(let p), .some(let q)): return p > q
        default: return false
        }
    }
}

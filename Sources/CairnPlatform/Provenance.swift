import Buildpacks
import CairnBasics
import Foundation
import OCI
import Processes
import Trust

/// SLSA Provenance v1 (`https://slsa.dev/provenance/v1`) for an image `cairn build` made: what
/// was asked (source, builder, env var names — never values —, run image) and what was used
/// (builder, run image, lifecycle, each buildpack and extension with its layer in the builder),
/// who ran it and when. The predicate only; `Trust.Attestation` wraps it in a Statement.
public struct BuildProvenance {
    /// Cairn's build type: the meaning of externalParameters and resolvedDependencies below.
    public static let buildType = "https://cairn.dev/provenance/build/v1"
    public static let builderID = "https://cairn.dev/cairn@" + cairnVersion

    public var request: BuildRequest
    public var app: StoredImage
    public var builder: StoredImage
    public var runImage: (name: String, digest: Digest?)?
    public var started: Date
    public var finished: Date
    public var invocationID = UUID().uuidString.lowercased()
    /// The builder's unpacked root, where each buildpack's buildpack.toml names the dependencies
    /// it downloads (`[[metadata.dependencies]]`, as Paketo's buildpacks list them).
    public var builderRoot: String?
    /// The source's identity when found beforehand (`BuildSigner.prepare`); read now when nil.
    public var source: SourceIdentity.Found?
    /// The builder's labels, decoded beforehand (`BuildSigner.prepare`); decoded now when nil.
    public var builderFacts: BuilderFacts?
    /// io.buildpacks.build.metadata's buildpacks and extensions, when the caller decoded them.
    var used: UsedModules?
    /// `dependencies(of:_:)` by "id@version", when the caller read them (for the SBOM too).
    var buildpackDependencies: [String: [BuildpackDependency]]?

    public init(request: BuildRequest, app: StoredImage, builder: StoredImage, runImage: (name: String, digest: Digest?)?,
                started: Date, finished: Date) {
        self.request = request
        self.app = app
        self.builder = builder
        self.runImage = runImage
        self.started = started
        self.finished = finished
    }

    /// The predicate as JSON (keys sorted).
    public func predicate() throws -> Data {
        try Self.slsaPredicate(buildType: Self.buildType, external: try externalParameters(), dependencies: try resolvedDependencies(),
                               started: started, finished: finished, invocationID: invocationID)
    }

    /// An SLSA Provenance v1 predicate with Cairn as the builder: what every Cairn build type
    /// shares (runDetails from start, finish and invocation id; byproducts when given).
    static func slsaPredicate(buildType: String, external: [String: Any], dependencies: [[String: Any]], started: Date, finished: Date,
                              invocationID: String = UUID().uuidString.lowercased(), byproducts: [[String: Any]] = []) throws -> Data {
        var runDetails: [String: Any] = [
            "builder": ["id": builderID],
            "metadata": ["invocationId": invocationID, "startedOn": rfc3339(started), "finishedOn": rfc3339(finished)],
        ]
        if !byproducts.isEmpty { runDetails["byproducts"] = byproducts }
        let predicate: [String: Any] = [
            "buildDefinition": ["buildType": buildType, "externalParameters": external, "resolvedDependencies": dependencies] as [String: Any],
            "runDetails": runDetails,
        ]
        return try canonicalJSON(predicate)
    }

    func externalParameters() throws -> [String: Any] {
        var source: [String: Any] = ["path": request.appPath]
        switch try self.source ?? SourceIdentity.of(request.appPath) {
        case .git(let git): source["git"] = git
        case .digest(let sha256): source["digest"] = ["sha256": sha256]
        }
        var out: [String: Any] = [
            "source": source,
            "builder": request.builder,
            // Names only: values may be secrets and never go into provenance.
            "env": request.env.map { String($0.split(separator: "=", maxSplits: 1).first ?? "") },
        ]
        if let runImage { out["runImage"] = runImage.name }
        if !request.buildpacks.isEmpty { out["buildpacks"] = request.buildpacks }
        if let lifecycle = request.lifecycle { out["lifecycle"] = lifecycle }
        return out
    }

    func resolvedDependencies() throws -> [[String: Any]] {
        var deps: [[String: Any]] = [descriptor("builder", request.builder, builder.digest)]
        if let runImage { deps.append(descriptor("run-image", runImage.name, runImage.digest)) }
        let facts = builderFacts ?? BuilderFacts(builder)
        if let version = facts.lifecycleVersion {
            var lifecycle: [String: Any] = ["name": "lifecycle", "uri": "pkg:generic/lifecycle@\(version)"]
            if let diffID = facts.lifecycleLayer { lifecycle["digest"] = ["sha256": diffID.encoded] }
            deps.append(lifecycle)
        }
        let used = self.used ?? UsedModules(of: app)
        for (kind, modules) in [("buildpack", facts.buildpacks), ("extension", facts.extensions)] {
            guard let modules else { continue }
            for module in (kind == "buildpack" ? used?.buildpacks : used?.extensions) ?? [] {
                guard let info = modules[module.id]?[module.version] else { continue }
                var dep: [String: Any] = ["name": "\(module.id)@\(module.version)", "uri": "pkg:cnb/\(kind)/\(module.id)@\(module.version)",
                                          "annotations": ["kind": kind]]
                if let d = Digest(info.layerDiffID) { dep["digest"] = ["sha256": d.encoded] }
                deps.append(dep)
                if kind == "buildpack" {
                    for d in buildpackDependencies?["\(module.id)@\(module.version)"] ?? dependencies(of: module.id, module.version) {
                        var entry: [String: Any] = ["name": "dependency \(d.id)@\(d.version)", "uri": d.uri,
                                                    "annotations": ["buildpack": "\(module.id)@\(module.version)"]]
                        if let sha = d.sha256 { entry["digest"] = ["sha256": sha] }
                        deps.append(entry)
                    }
                }
            }
        }
        return deps
    }

    /// What the provenance reads of a builder's labels and history, decoded once per build
    /// (`BuildSigner.prepare`) rather than for every image signed with it.
    public struct BuilderFacts: Sendable {
        var lifecycleVersion: String?
        /// The builder layer holding `/cnb/lifecycle`, found by its history entry.
        var lifecycleLayer: Digest?
        var buildpacks: [String: [String: LayerOnly]]?
        var extensions: [String: [String: LayerOnly]]?

        // Only the fields read here are decoded: the whole labels (a dozen nested types each,
        // every one set up on first use) took a millisecond of every signed build.
        struct LayerOnly: Decodable, Sendable { var layerDiffID: String }
        struct LifecycleOnly: Decodable {
            struct Lifecycle: Decodable { var version: String? }
            var lifecycle: Lifecycle?
        }

        public init(_ builder: StoredImage) {
            let labels = builder.config.config?.labels ?? [:]
            func decode<T: Decodable>(_ type: T.Type, _ label: String) -> T? {
                labels[label].flatMap { try? JSONDecoder().decode(type, from: Data($0.utf8)) }
            }
            lifecycleVersion = decode(LifecycleOnly.self, CNBLabel.builderMetadata)?.lifecycle?.version
            let history = (builder.config.history ?? []).filter { !($0.emptyLayer ?? false) }
            if let i = history.lastIndex(where: { ($0.createdBy ?? "").contains("lifecycle") }), i < builder.config.rootfs.diffIDs.count {
                lifecycleLayer = builder.config.rootfs.diffIDs[i]
            }
            buildpacks = decode([String: [String: LayerOnly]].self, CNBLabel.buildpackLayers)
            extensions = decode([String: [String: LayerOnly]].self, CNBLabel.extensionLayers)
        }
    }

    /// `[[metadata.dependencies]]` of a buildpack in the builder: id, version, uri, sha256
    /// (`sha256`, or `checksum = "sha256:…"` as newer Paketo buildpacks write it).
    public func dependencies(of id: String, _ version: String) -> [BuildpackDependency] {
        guard let root = builderRoot else { return [] }
        return BuildpackDependency.read(root + "/cnb/buildpacks/" + escapedID(id) + "/" + version + "/buildpack.toml")
    }

    /// The buildpacks and extensions io.buildpacks.build.metadata says ran (only id and version
    /// are read: the label's other fields vary between lifecycles).
    struct UsedModules: Decodable {
        struct Module: Decodable { var id: String; var version: String }
        var buildpacks: [Module]?
        var extensions: [Module]?

        init?(of app: StoredImage) {
            guard let raw = app.config.config?.labels?[CNBLabel.buildMetadata],
                  let decoded = try? JSONDecoder().decode(Self.self, from: Data(raw.utf8)) else { return nil }
            self = decoded
        }
    }

    func descriptor(_ name: String, _ reference: String, _ digest: Digest?) -> [String: Any] {
        var d: [String: Any] = ["name": name, "uri": reference]
        if let digest { d["digest"] = [digest.algorithm: digest.encoded] }
        return d
    }

    /// RFC 3339 UTC, whole seconds (FoundationEssentials' ISO 8601 style: an
    /// ISO8601DateFormatter took ~2 ms to make on Linux, a fifth of what signing a build costs).
    static func rfc3339(_ date: Date) -> String {
        OCI.rfc3339(Int64(date.timeIntervalSince1970.rounded(.down)))
    }
}

/// Where the source came from: a git checkout's commit and remote, else a digest of the tree
/// (of the file, for a zip or jar app).
public enum SourceIdentity {
    public enum Found: Sendable {
        case git([String: String])
        case digest(String)
    }

    static func of(_ path: String) throws -> Found {
        if let git = git(path) { return .git(git) }
        return .digest(FS.isDirectory(path) ? try treeDigest(path) : try fileDigest(path))
    }

    /// `commit` and `remote` (credentials in the URL removed) when `path` is a git checkout.
    static func git(_ path: String) -> [String: String]? {
        guard FileManager.default.fileExists(atPath: path + "/.git"),
              let commit = try? ChildProcess.tool("/usr/bin/git", ["-C", path, "rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines),
              commit.count >= 40 else { return nil }
        var out = ["commit": commit]
        if let remote = try? ChildProcess.tool("/usr/bin/git", ["-C", path, "config", "--get", "remote.origin.url"]).trimmingCharacters(in: .whitespacesAndNewlines),
           !remote.isEmpty {
            out["remote"] = withoutCredentials(remote)
        }
        return out
    }

    /// `https://user:token@host/x` → `https://host/x`.
    static func withoutCredentials(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@"),
              !url[scheme.upperBound..<at].contains("/") else { return url }
        return String(url[..<scheme.upperBound]) + String(url[url.index(after: at)...])
    }

    /// sha256 over the sorted tree: each entry's relative path, type, permission bits, and the
    /// sha256 of a file's content or a link's target. `.git` is left out.
    static func treeDigest(_ root: String) throws -> String {
        var lines: [String] = []
        // Walked with the store's lstat and readdir helpers (FileManager's enumerator cost ~1.5 ms
        // to start, a tenth of what signing a small build costs); symbolic links are not followed.
        func walk(_ prefix: String) throws {
            for name in try FS.listDirectory(prefix.isEmpty ? root : root + "/" + prefix) {
                let rel = prefix.isEmpty ? name : prefix + "/" + name
                if rel == ".git" { continue }
                let path = root + "/" + rel
                guard let st = FS.mode(path) else { continue }
                let mode = String(Int(st) & 0o7777, radix: 8)
                switch st & UInt32(S_IFMT) {
                case UInt32(S_IFREG): lines.append("f \(mode) \(try fileDigest(path)) \(rel)")
                case UInt32(S_IFLNK): lines.append("l \(mode) \(String(decoding: (try? FS.readLink(path)) ?? [], as: UTF8.self)) \(rel)")
                case UInt32(S_IFDIR):
                    lines.append("d \(mode) \(rel)")
                    try walk(rel)
                default: continue
                }
            }
        }
        try walk("")
        return Digest.sha256(of: Data(lines.sorted().joined(separator: "\n").utf8)).encoded
    }

    static func fileDigest(_ path: String) throws -> String {
        guard let digest = try sha256File(path) else { throw PlatformError.missingFile(what: "source file", path: path) }
        return digest
    }
}

/// SLSA Provenance v1 for `cairn rebase`: the image it started from (name and manifest digest),
/// the run image it moved onto, each patch image a layer came from, and in byproducts what was
/// replaced — each patched layer (old → new diffID) and the manifest (old → new digest).
public struct RebaseProvenance {
    public static let buildType = "https://cairn.dev/provenance/rebase/v1"

    public var image: String
    public var previousDigest: Digest
    public var newDigest: Digest
    public var runImage: String
    public var runImageReference: String?
    public var requestedRunImage: String?
    public var removedLayers: Int
    public var addedLayers: Int
    public var replacements: [LayerReplacement]
    public var layerPatchesFile: String?
    public var started: Date
    public var finished: Date
    public var invocationID = UUID().uuidString.lowercased()

    public init(image: String, previousDigest: Digest, newDigest: Digest, runImage: String, runImageReference: String?,
                requestedRunImage: String?, removedLayers: Int, addedLayers: Int, replacements: [LayerReplacement],
                layerPatchesFile: String?, started: Date, finished: Date) {
        self.image = image
        self.previousDigest = previousDigest
        self.newDigest = newDigest
        self.runImage = runImage
        self.runImageReference = runImageReference
        self.requestedRunImage = requestedRunImage
        self.removedLayers = removedLayers
        self.addedLayers = addedLayers
        self.replacements = replacements
        self.layerPatchesFile = layerPatchesFile
        self.started = started
        self.finished = finished
    }

    public func predicate() throws -> Data {
        var external: [String: Any] = ["image": image]
        if let requestedRunImage { external["runImage"] = requestedRunImage }
        if let layerPatchesFile {
            var file: [String: Any] = ["path": layerPatchesFile]
            if let digest = try sha256File(layerPatchesFile) { file["digest"] = ["sha256": digest] }
            external["layerPatches"] = file
        }
        var deps: [[String: Any]] = [["name": "previous-image", "uri": image, "digest": ["sha256": previousDigest.encoded]]]
        var run: [String: Any] = ["name": "run-image", "uri": runImage]
        if let d = runImageReference.flatMap({ $0.split(separator: "@").last.map(String.init) }).flatMap(Digest.init) {
            run["digest"] = ["sha256": d.encoded]
        }
        deps.append(run)
        for r in replacements {
            guard let d = Digest(r.patchImageDigest) else { continue }
            deps.append(["name": "patch-image", "uri": r.patchImage, "digest": ["sha256": d.encoded]])
        }
        var byproducts: [[String: Any]] = [[
            "name": "manifest", "digest": ["sha256": newDigest.encoded],
            "annotations": ["previousDigest": previousDigest.description, "runImageLayersRemoved": removedLayers, "runImageLayersAdded": addedLayers],
        ]]
        for r in replacements {
            var annotations: [String: Any] = ["previousDiffID": r.oldDiffID, "patchImage": "\(r.patchImage)@\(r.patchImageDigest)"]
            if let v = r.oldVersion { annotations["previousVersion"] = v }
            if let v = r.newVersion { annotations["version"] = v }
            var entry: [String: Any] = ["name": "layer \(r.name)", "annotations": annotations]
            if let d = Digest(r.newDiffID) { entry["digest"] = ["sha256": d.encoded] }
            byproducts.append(entry)
        }
        return try BuildProvenance.slsaPredicate(buildType: Self.buildType, external: external, dependencies: deps, started: started,
                                                 finished: finished, invocationID: invocationID, byproducts: byproducts)
    }
}

/// A dependency a buildpack declares it downloads (buildpack.toml `[[metadata.dependencies]]`).
public struct BuildpackDependency: Sendable {
    public var id: String
    public var version: String
    public var uri: String
    public var sha256: String?

    public static func read(_ path: String) -> [BuildpackDependency] {
        // Most buildpack.toml files list no dependencies: those are not parsed.
        guard let data = try? FS.read(path), data.withUnsafeBytes({ bytes($0, contain: "dependencies".utf8) }), let text = String(data: data, encoding: .utf8),
              let table = try? TOMLParser.parse(text),
              let list = table["metadata"]?["dependencies"]?.array else { return [] }
        return list.compactMap { d in
            guard let id = d["id"]?.string else { return nil }
            var sha = d["sha256"]?.string
            if sha == nil, let checksum = d["checksum"]?.string, checksum.hasPrefix("sha256:") { sha = String(checksum.dropFirst(7)) }
            return BuildpackDependency(id: id, version: d["version"]?.string ?? "", uri: d["uri"]?.string ?? "", sha256: sha)
        }
    }
}

/// A JSON object built as dictionaries, encoded as CanonicalJSON encodes (sorted keys, `/`
/// unescaped): through JSONValue and the JSONEncoder the build has already used, rather than
/// JSONSerialization, whose first use cost ~2 ms of a signed build's ~12.
func canonicalJSON(_ object: Any) throws -> Data {
    func value(_ any: Any) throws -> JSONValue {
        switch any {
        case let s as String: return .string(s)
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(Int64(i))
        case let i as Int64: return .int(i)
        case let d as Double: return .double(d)
        case let o as [String: Any]: return .object(try o.mapValues(value))
        case let a as [Any]: return .array(try a.map(value))
        default: throw PlatformError.invalidArgument("JSON value \(type(of: any))", reason: "expected a string, number, boolean, array or object")
        }
    }
    return try CanonicalJSON.encode(try value(object))
}

import Buildpacks
import Foundation
import OCI
import Trust

/// SLSA Provenance v1 for `cairn builder create --sign`: the builder.toml (path and digest), the
/// build image, and each buildpack and extension as given — a directory with the digest of its
/// tree, or a buildpackage image with its manifest digest and, when a trust policy checked it,
/// the fingerprint of the key that signed it.
public struct BuilderProvenance {
    public static let buildType = "https://cairn.dev/provenance/builder/v1"

    public var configPath: String
    public var buildImage: (name: String, digest: Digest)
    /// Each [[buildpacks]]/[[extensions]] uri: buildpackage digest and signer, or nil (a directory).
    public var sources: [(uri: String, kind: String, package: (digest: Digest, signer: String?)?)]
    public var lifecycleVersion: String
    public var started: Date
    public var finished: Date

    public init(configPath: String, buildImage: (name: String, digest: Digest),
                sources: [(uri: String, kind: String, package: (digest: Digest, signer: String?)?)],
                lifecycleVersion: String, started: Date, finished: Date) {
        self.configPath = configPath
        self.buildImage = buildImage
        self.sources = sources
        self.lifecycleVersion = lifecycleVersion
        self.started = started
        self.finished = finished
    }

    public func predicate() throws -> Data {
        var config: [String: Any] = ["path": configPath]
        if let d = try sha256File(configPath) { config["digest"] = ["sha256": d] }
        var deps: [[String: Any]] = [["name": "build-image", "uri": buildImage.name, "digest": ["sha256": buildImage.digest.encoded]],
                                     ["name": "lifecycle", "uri": "pkg:generic/lifecycle@\(lifecycleVersion)"]]
        let base = URL(fileURLWithPath: configPath).deletingLastPathComponent().path
        let external: [String: Any] = ["config": config]
        for s in sources {
            var dep: [String: Any] = ["name": s.kind, "uri": s.uri]
            if let package = s.package {
                dep["digest"] = ["sha256": package.digest.encoded]
                var annotations: [String: Any] = ["source": "buildpackage"]
                if let signer = package.signer { annotations["signerKeySHA256"] = signer }
                dep["annotations"] = annotations
            } else {
                let path = s.uri.hasPrefix("/") ? s.uri : base + "/" + s.uri
                if FileManager.default.fileExists(atPath: path) {
                    dep["digest"] = ["sha256": try SourceIdentity.treeDigest(path)]
                    dep["annotations"] = ["source": "directory"]
                }
            }
            deps.append(dep)
        }
        return try BuildProvenance.slsaPredicate(buildType: Self.buildType, external: external, dependencies: deps,
                                                 started: started, finished: finished)
    }
}

/// SLSA Provenance v1 for `cairn extend --sign`: the Dockerfile and build context (digests),
/// the build-arg names (not values), the kind, and the base image with its digest.
public struct ExtendProvenance {
    public static let buildType = "https://cairn.dev/provenance/extend/v1"

    public var base: (name: String, digest: Digest)
    public var dockerfile: String
    public var context: String
    public var argNames: [String]
    public var kind: String
    public var started: Date
    public var finished: Date

    public init(base: (name: String, digest: Digest), dockerfile: String, context: String, argNames: [String], kind: String,
                started: Date, finished: Date) {
        self.base = base
        self.dockerfile = dockerfile
        self.context = context
        self.argNames = argNames
        self.kind = kind
        self.started = started
        self.finished = finished
    }

    public func predicate() throws -> Data {
        var file: [String: Any] = ["path": dockerfile]
        if let d = try sha256File(dockerfile) { file["digest"] = ["sha256": d] }
        let external: [String: Any] = [
            "dockerfile": file, "context": ["path": context, "digest": ["sha256": try SourceIdentity.treeDigest(context)]],
            "buildArgs": argNames.sorted(), "kind": kind,
        ]
        let deps: [[String: Any]] = [["name": "base-image", "uri": base.name, "digest": ["sha256": base.digest.encoded]]]
        return try BuildProvenance.slsaPredicate(buildType: Self.buildType, external: external, dependencies: deps,
                                                 started: started, finished: finished)
    }
}

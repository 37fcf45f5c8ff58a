import Foundation

/// A package as an image's SBOM or its run image's dpkg status lists it.
public struct PackageRecord: Sendable, Hashable, Codable {
    public var ecosystem: Ecosystem
    /// As the ecosystem compares names (PEP 503 for PyPI…).
    public var name: String
    public var version: String
    public var purl: String
    /// Debian: the source package and its version (advisories name source packages).
    public var sourceName: String
    public var sourceVersion: String

    public init(ecosystem: Ecosystem, name: String, version: String, purl: String = "", sourceName: String = "", sourceVersion: String = "") {
        self.ecosystem = ecosystem
        self.name = ecosystem.normalize(name: name)
        self.version = version
        self.purl = purl
        self.sourceName = sourceName
        self.sourceVersion = sourceVersion
    }

    /// A package from an SBOM entry: the ecosystem from the purl when there is one.
    public init(name: String, version: String?, purl: String?) {
        if let purl, let parsed = PackageURL(purl) {
            let osv = parsed.osv
            self.init(ecosystem: osv.ecosystem, name: osv.name, version: version ?? parsed.version ?? "", purl: purl)
        } else {
            self.init(ecosystem: .generic, name: name, version: version ?? "", purl: purl ?? "")
        }
    }

    /// The name and version advisories of its ecosystem are written against.
    var advisoryKey: (name: String, version: String) {
        (ecosystem == .debian || ecosystem == .ubuntu) && !sourceName.isEmpty ? (sourceName, sourceVersion.isEmpty ? version : sourceVersion) : (name, version)
    }
}

/// One version of a run image: an app image records the run image it was built on (name, top
/// layer, reference); the inventory also records run images it finds by name. A version is
/// identified by its name and `layers`, the ChainID of all its layers.
public struct RunImageRecord: Sendable, Hashable {
    /// `io.buildpacks.base.id` (else the stack id), "" when neither label is set.
    public var identity: String
    /// The repository, without tag or digest.
    public var name: String
    public var topLayer: String
    /// The ChainID of the run image's layers (`Digest.chainID(of:)`): the version's key.
    public var layers: String
    public var reference: String = ""
    public var released: String = ""
    public var created: String = ""
    public var distro: String = ""
    public var distroVersion: String = ""
    /// Its dpkg packages; nil when they were not read (layers not at hand, or already known).
    public var packages: [PackageRecord]?

    public init(identity: String, name: String, topLayer: String, layers: String) {
        self.identity = identity
        self.name = name
        self.topLayer = topLayer
        self.layers = layers
    }
}

/// What an app image is made of, as its manifest, config, labels and SBOM layer say.
public struct ImageRecord: Sendable {
    public struct Module: Sendable, Hashable {
        public var kind: String
        public var id: String
        public var version: String
        public init(kind: String, id: String, version: String) { self.kind = kind; self.id = id; self.version = version }
    }

    public struct Layer: Sendable, Hashable {
        public var buildpack: String
        public var name: String
        public var diffID: String
        public var metadata: String
        public var rebasable: Bool
        public init(buildpack: String, name: String, diffID: String, metadata: String, rebasable: Bool) {
            self.buildpack = buildpack; self.name = name; self.diffID = diffID; self.metadata = metadata; self.rebasable = rebasable
        }
    }

    /// A package with the buildpack (and layer, "" for the buildpack's launch SBOM) that brought it.
    public struct Contributed: Sendable, Hashable {
        public var package: PackageRecord
        public var buildpack: String
        public var layer: String
        public init(package: PackageRecord, buildpack: String, layer: String) { self.package = package; self.buildpack = buildpack; self.layer = layer }
    }

    public var digest: String
    public var created = ""
    public var os = ""
    public var architecture = ""
    public var runImage: RunImageRecord?
    public var launcherVersion = ""
    public var launcherDiffID = ""
    public var modules: [Module] = []
    public var layers: [Layer] = []
    public var packages: [Contributed] = []
    /// The packages its build-time SBOM lists (what its buildpacks used to build, not in the
    /// image); the layer is the build layer's name, or "".
    public var buildPackages: [Contributed] = []
    /// Why its packages are not all known (no SBOM layer, an unreadable SBOM document); empty
    /// when they are. Such an image is `unknown` in answers, never clean.
    public var unknown: [String] = []

    public init(digest: String) { self.digest = digest }
}

import CairnBasics
import Foundation

/// One named image a query found, and why.
///
/// A whole-fleet answer is hundreds of thousands of findings that repeat a few thousand images,
/// affected packages and origins: a finding holds three shared parts rather than a dozen strings
/// of its own, so making, sorting and dropping one is three reference counts, not thirteen.
public struct Finding: Codable, Sendable, Hashable {
    /// The named image; shared by the findings of one image name.
    public final class Subject: Sendable {
        let location, image, digest: String
        public init(location: String, image: String, digest: String) { self.location = location; self.image = image; self.digest = digest }
    }

    /// What was found in it; shared by the findings of one affected package version (vulns).
    public final class Matter: Sendable {
        let advisory, severity, ecosystem, package, version, fixed: String?
        /// Why it cannot be told whether this version is affected (see `AdvisoryMatch`).
        let unknown: String?
        /// With `--sort risk`: when the advisory's CVE entered CISA's KEV catalog, and its EPSS score.
        let kev, epss: String?
        public init(advisory: String?, severity: String?, ecosystem: String?, package: String?, version: String?, fixed: String?,
                    unknown: String? = nil, kev: String? = nil, epss: String? = nil) {
            self.advisory = advisory; self.severity = severity; self.ecosystem = ecosystem
            self.package = package; self.version = version; self.fixed = fixed; self.unknown = unknown
            self.kev = kev; self.epss = epss
        }
    }

    /// Who brought it; shared by the findings of one buildpack layer or run image.
    public final class Source: Sendable {
        let buildpack, layer, runImage, status: String?
        /// Why an image is `unknown` (its packages could not all be read).
        let reason: String?
        /// Where the package came from, for a table: made once, shown for every finding.
        let origin: String

        public init(buildpack: String?, layer: String?, runImage: String?, status: String? = nil, reason: String? = nil) {
            self.buildpack = buildpack; self.layer = layer; self.runImage = runImage; self.status = status; self.reason = reason
            if let reason {
                origin = "unknown: " + reason
            } else if let buildpack {
                origin = buildpack + ((layer ?? "").isEmpty ? "" : ":" + (layer ?? ""))
            } else {
                origin = "run image " + (runImage ?? "?")
            }
        }
    }

    let subject: Subject
    let matter: Matter
    let source: Source

    public var location: String { subject.location }
    public var image: String { subject.image }
    public var digest: String { subject.digest }
    /// The advisory (vulns), else nil.
    public var advisory: String? { matter.advisory }
    public var severity: String? { matter.severity }
    public var ecosystem: String? { matter.ecosystem }
    public var package: String? { matter.package }
    public var version: String? { matter.version }
    public var fixed: String? { matter.fixed }
    public var kev: String? { matter.kev }
    public var epss: String? { matter.epss }
    /// Who brought the package: a buildpack (and layer, "" for its launch SBOM), else the run image.
    public var buildpack: String? { source.buildpack }
    public var layer: String? { source.layer }
    public var runImage: String? { source.runImage }
    /// run-image and plan queries: current, outdated or unknown; `unknown` in vulns and package
    /// answers for an image whose packages could not all be read, and in vulns for a package
    /// version whether an advisory affects cannot be told (`reason` says why).
    public var status: String? { source.status ?? (matter.unknown == nil ? nil : "unknown") }
    public var reason: String? { source.reason ?? matter.unknown }

    public init(_ subject: Subject, _ matter: Matter, _ source: Source) {
        self.subject = subject
        self.matter = matter
        self.source = source
    }

    public init(location: String, image: String, digest: String, advisory: String? = nil, severity: String? = nil,
                ecosystem: String? = nil, package: String? = nil, version: String? = nil, fixed: String? = nil,
                buildpack: String? = nil, layer: String? = nil, runImage: String? = nil, status: String? = nil, reason: String? = nil,
                kev: String? = nil, epss: String? = nil) {
        self.init(Subject(location: location, image: image, digest: digest),
                  Matter(advisory: advisory, severity: severity, ecosystem: ecosystem, package: package, version: version, fixed: fixed,
                         kev: kev, epss: epss),
                  Source(buildpack: buildpack, layer: layer, runImage: runImage, status: status, reason: reason))
    }

    /// Where the package came from, for a table: a buildpack (`id:layer`), else `run image NAME`.
    public var origin: String { matter.unknown.map { source.origin + " (unknown: " + $0 + ")" } ?? source.origin }

    enum CodingKeys: String, CodingKey {
        case location, image, digest, advisory, severity, ecosystem, package, version, fixed, buildpack, layer, runImage, status, reason
        case kev, epss
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func text(_ key: CodingKeys) throws -> String? { try c.decodeIfPresent(String.self, forKey: key) }
        self.init(location: try c.decode(String.self, forKey: .location), image: try c.decode(String.self, forKey: .image),
                  digest: try c.decode(String.self, forKey: .digest), advisory: try text(.advisory), severity: try text(.severity),
                  ecosystem: try text(.ecosystem), package: try text(.package), version: try text(.version), fixed: try text(.fixed),
                  buildpack: try text(.buildpack), layer: try text(.layer), runImage: try text(.runImage), status: try text(.status),
                  reason: try text(.reason), kev: try text(.kev), epss: try text(.epss))
    }

    /// The fields that are set, as the synthesized encoding wrote them.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try forEachField { key, value in try c.encodeIfPresent(value, forKey: key) }
    }

    /// Every field in the order sorted keys put them (location, image and digest always set):
    /// what encoding, the JSON writer, equality and hashing all go through.
    func forEachField(_ body: (CodingKeys, String?) throws -> Void) rethrows {
        try body(.advisory, advisory)
        try body(.buildpack, buildpack)
        try body(.digest, digest)
        try body(.ecosystem, ecosystem)
        try body(.epss, epss)
        try body(.fixed, fixed)
        try body(.image, image)
        try body(.kev, kev)
        try body(.layer, layer)
        try body(.location, location)
        try body(.package, package)
        try body(.reason, reason)
        try body(.runImage, runImage)
        try body(.severity, severity)
        try body(.status, status)
        try body(.version, version)
    }

    public static func == (a: Finding, b: Finding) -> Bool {
        var x: [String?] = [], y: [String?] = []
        a.forEachField { x.append($1) }
        b.forEachField { y.append($1) }
        return x == y
    }

    public func hash(into hasher: inout Hasher) {
        forEachField { hasher.combine($1) }
    }
}

extension Array where Element == Finding {
    /// By image, location, advisory, package, then origin. The keys are made once per finding and
    /// read in place by the comparison: for 21,785 findings of a package, keys made in the
    /// comparison took a third of the query's time, and keys copied out of an array for each
    /// comparison (a tuple of five strings) still most of the sort's.
    func sortedFindings() -> [Finding] {
        let keys = enumerated().map { FindingSortKey(image: $1.image, location: $1.location, advisory: $1.advisory ?? "", package: $1.package ?? "",
                                          origin: $1.origin, index: $0) }
        // Positions are sorted, the keys read in place: a merge that moves keys copies five strings.
        return keys.withUnsafeBufferPointer { k in
            k.indices.sorted { FindingSortKey.less(k[$0], k[$1]) }.map { self[$0] }
        }
    }
}

/// A finding's sort key and its position (see `sortedFindings`).
struct FindingSortKey {
    var image, location, advisory, package, origin: String
    var index: Int

    static func less(_ a: FindingSortKey, _ b: FindingSortKey) -> Bool {
        if a.image != b.image { return a.image < b.image }
        if a.location != b.location { return a.location < b.location }
        if a.advisory != b.advisory { return a.advisory < b.advisory }
        if a.package != b.package { return a.package < b.package }
        if a.origin != b.origin { return a.origin < b.origin }
        return a.index < b.index
    }
}

extension Finding {
    /// Findings as a JSON array, byte for byte what `CanonicalJSON.encode` (sorted keys, slashes
    /// not escaped) makes of them, written straight into bytes: a whole-fleet answer through
    /// JSONEncoder took 7.7 s and 930 MB for 798,209 findings.
    public static func appendJSON(_ findings: [Finding], to out: inout [UInt8], flush: (inout [UInt8]) -> Void) {
        out.append(UInt8(ascii: "["))
        for (i, f) in findings.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            var first = true
            f.forEachField { key, value in
                guard let value else { return }
                out.append(UInt8(ascii: first ? "{" : ","))
                first = false
                CairnBasics.appendJSONString(key.rawValue, to: &out)
                out.append(UInt8(ascii: ":"))
                CairnBasics.appendJSONString(value, to: &out)
            }
            out.append(UInt8(ascii: "}"))
            if out.count >= 1 << 20 { flush(&out) }
        }
        out.append(UInt8(ascii: "]"))
    }

}

extension String {
    /// Whether a UTF-8 byte of the string matches, read from its contiguous storage when it has
    /// one (the UTF8View's own iteration cost a sixth of writing a whole-fleet answer).
    public func utf8Contains(where match: (UInt8) -> Bool) -> Bool {
        utf8.withContiguousStorageIfAvailable { $0.contains(where: match) } ?? utf8.contains(where: match)
    }
}

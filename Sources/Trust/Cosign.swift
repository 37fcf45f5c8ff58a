import CairnBasics
import FoundationEssentials
import OCI

/// cosign's key-based signature format, as cosign v2 writes it on a registry without the OCI 1.1
/// referrers API: an OCI image manifest tagged `sha256-<hex>.sig` in the image's repository, one
/// layer per signature, each layer a simple-signing payload
/// (`application/vnd.dev.cosign.simplesigning.v1+json`) whose
/// `dev.cosignproject.cosign/signature` annotation is the base64 ECDSA P-256 signature (DER) over
/// the layer's bytes. The payload names the repository and the signed manifest digest.
public enum Cosign {
    public static let simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
    public static let signatureAnnotation = "dev.cosignproject.cosign/signature"
    public static let signatureType = "cosign container image signature"

    /// An artifact as cosign writes it: its config blob (an empty image whose diff_ids are the
    /// layers), the layer blobs, and the manifest.
    static func encode(layers descriptors: [Descriptor], blobs: [Data]) throws -> (config: Data, blobs: [Data], manifest: Data) {
        let config = config(layers: descriptors.map(\.digest))
        let manifest = Manifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: Digest.sha256(of: config), size: Int64(config.count)),
                                layers: descriptors)
        return (config, blobs, try CanonicalJSON.encode(manifest))
    }

    /// An artifact's manifest, or an error naming it.
    static func manifest(_ data: Data, what: String) throws -> Manifest {
        do { return try CanonicalJSON.decode(Manifest.self, from: data, what: what) } catch {
            throw TrustError.artifact(what: what, reason: "is not an image manifest: \(error)")
        }
    }

    /// The suffixes of the tags artifacts about an image live under: cosign's signatures and
    /// attestations, Cairn's build-time SBOM.
    public static let artifactTagSuffixes = [".sig", ".att", BuildSBOM.tagSuffix]

    /// Whether a store name (`repo:tag`) is a signature, attestation or build-SBOM artifact's.
    public static func isArtifactName(_ name: String) -> Bool {
        guard let colon = name.lastIndex(of: ":") else { return false }
        let tag = name[name.index(after: colon)...]
        return tag.hasPrefix("sha256-") && artifactTagSuffixes.contains { tag.hasSuffix($0) && tag.count == 7 + 64 + $0.count }
    }

    /// `sha256-<hex>.sig`: where the signatures of the manifest `digest` live.
    public static func signatureTag(for digest: Digest) -> String {
        "\(digest.algorithm)-\(digest.encoded).sig"
    }

    /// The image a stored name is about when its tag is one of the tag schema's: cosign's
    /// `sha256-<hex>.sig` and `.att`, Cairn's `.build-sbom`, or the referrers fallback tag
    /// `sha256-<hex>`; else nil.
    public static func subject(ofStoredName name: String) -> Digest? {
        guard let colon = name.lastIndex(of: ":"), !name[colon...].contains("/") else { return nil }
        var tag = name[name.index(after: colon)...]
        for suffix in artifactTagSuffixes where tag.hasSuffix(suffix) { tag = tag.dropLast(suffix.count) }
        guard tag.hasPrefix("sha256-"), let digest = Digest("sha256:" + tag.dropFirst(7)) else { return nil }
        return digest
    }

    /// The simple-signing payload for `digest` in `repository` (`registry/name`), key order and
    /// spacing as cosign writes it.
    public static func payload(repository: String, digest: Digest) -> Data {
        Data(#"{"critical":{"identity":{"docker-reference":\#(jsonString(repository))},"image":{"docker-manifest-digest":\#(jsonString(digest.description))},"type":"\#(signatureType)"},"optional":null}"#.utf8)
    }

    /// The claims a payload makes.
    public struct Claims: Sendable {
        public var repository: String
        public var digest: String
        public var type: String
    }

    public static func claims(_ payload: Data) throws -> Claims {
        guard let object = try? JSONDecoder().decode(JSONValue.self, from: payload).object,
              let critical = object["critical"]?.object,
              let repository = critical["identity"]?.object?["docker-reference"]?.string,
              let digest = critical["image"]?.object?["docker-manifest-digest"]?.string,
              let type = critical["type"]?.string else {
            throw TrustError.artifact(what: "simple-signing payload", reason: "is not JSON with critical.identity.docker-reference, critical.image.docker-manifest-digest and critical.type")
        }
        return Claims(repository: repository, digest: digest, type: type)
    }

    /// The config blob of a signature artifact, as cosign writes it: an empty image whose
    /// diff_ids are the payload layers.
    public static func config(layers: [Digest]) -> Data {
        let ids = layers.map { jsonString($0.description) }.joined(separator: ",")
        return Data(#"{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[\#(ids)]},"config":{}}"#.utf8)
    }
}

/// One signature: the signed payload and the DER signature over it.
public struct SignatureLayer: Sendable, Equatable {
    public var payload: Data
    public var signature: Data

    public init(payload: Data, signature: Data) {
        self.payload = payload
        self.signature = signature
    }

    var descriptor: Descriptor {
        var d = Descriptor(mediaType: Cosign.simpleSigningMediaType, digest: Digest.sha256(of: payload), size: Int64(payload.count))
        d.annotations = [Cosign.signatureAnnotation: signature.base64EncodedString()]
        return d
    }
}

/// A `sha256-<hex>.sig` artifact: its signature layers, and the blobs that make it.
public struct SignatureArtifact: Sendable {
    public var layers: [SignatureLayer]

    public init(layers: [SignatureLayer]) { self.layers = layers }

    /// Adds `layer` unless the same payload is already signed with the same signature.
    public mutating func add(_ layer: SignatureLayer) {
        if !layers.contains(layer) { layers.append(layer) }
    }

    /// The config blob, the payload blobs and the manifest.
    public func encoded() throws -> (config: Data, blobs: [Data], manifest: Data) {
        try Cosign.encode(layers: layers.map(\.descriptor), blobs: layers.map(\.payload))
    }

    /// Reads an artifact from its manifest, fetching payloads with `blob`.
    public static func decode(manifest data: Data, what: String, blob: (Descriptor) async throws -> Data) async throws -> SignatureArtifact {
        let manifest = try Cosign.manifest(data, what: what)
        var layers: [SignatureLayer] = []
        for d in manifest.layers where d.mediaType == Cosign.simpleSigningMediaType {
            guard let b64 = d.annotations?[Cosign.signatureAnnotation], let signature = Data(base64Encoded: b64) else {
                throw TrustError.artifact(what: what, reason: "layer \(d.digest) has no base64 \(Cosign.signatureAnnotation) annotation")
            }
            let payload = try await blob(d)
            guard Digest.sha256(of: payload) == d.digest else {
                throw TrustError.artifact(what: what, reason: "payload \(d.digest) does not match its digest")
            }
            layers.append(SignatureLayer(payload: payload, signature: signature))
        }
        return SignatureArtifact(layers: layers)
    }
}

/// What verification found: which signatures hold for this digest and key, and why the others
/// do not.
public struct SignatureCheck: Sendable {
    public var valid: [Cosign.Claims] = []
    public var failures: [String] = []

    /// Checks each layer: the signature verifies under `key` over the payload, the payload is a
    /// cosign image signature, and it names `digest`.
    public static func check(_ artifact: SignatureArtifact, digest: Digest, key: VerificationKey) -> SignatureCheck {
        var result = SignatureCheck()
        for (i, layer) in artifact.layers.enumerated() {
            guard key.isValid(layer.signature, for: layer.payload) else {
                result.failures.append("signature \(i + 1): does not verify with the given key (another key, or an edited payload)")
                continue
            }
            guard let claims = try? Cosign.claims(layer.payload) else {
                result.failures.append("signature \(i + 1): the payload is not a simple-signing payload")
                continue
            }
            guard claims.type == Cosign.signatureType else {
                result.failures.append("signature \(i + 1): payload type is \"\(claims.type)\", not \"\(Cosign.signatureType)\"")
                continue
            }
            guard claims.digest == digest.description else {
                result.failures.append("signature \(i + 1): signs \(claims.digest), not this manifest \(digest)")
                continue
            }
            result.valid.append(claims)
        }
        if artifact.layers.isEmpty { result.failures.append("the signature artifact has no signature layers") }
        return result
    }
}

import CairnBasics
import FoundationEssentials
import OCI

/// in-toto attestations as cosign attaches them: a DSSE envelope
/// (`application/vnd.dsse.envelope.v1+json`) around an in-toto Statement, one layer per
/// attestation of an OCI manifest tagged `sha256-<hex>.att`, each layer annotated with its
/// `predicateType`. `cosign verify-attestation --key --type slsaprovenance1` reads exactly this.
public enum Attestation {
    public static let envelopeMediaType = "application/vnd.dsse.envelope.v1+json"
    public static let inTotoPayloadType = "application/vnd.in-toto+json"
    public static let predicateTypeAnnotation = "predicateType"
    public static let statementType = "https://in-toto.io/Statement/v1"
    /// Statements read: v1 (what Cairn writes) and v0.1 (what cosign v2 writes).
    public static let statementTypes: Set<String> = [statementType, "https://in-toto.io/Statement/v0.1"]
    public static let slsaProvenance = "https://slsa.dev/provenance/v1"
    public static let cycloneDX = "https://cyclonedx.org/bom"

    /// `sha256-<hex>.att`.
    public static func tag(for digest: Digest) -> String { "\(digest.algorithm)-\(digest.encoded).att" }

    /// An in-toto Statement v1 about the manifest `digest` of `repository`, with `predicate`
    /// (JSON text) of `predicateType`.
    public static func statement(repository: String, digest: Digest, predicateType: String, predicate: Data) -> Data {
        var out = Data(#"{"_type":"\#(statementType)","subject":[{"name":\#(jsonString(repository)),"digest":{"\#(digest.algorithm)":"\#(digest.encoded)"}}],"predicateType":\#(jsonString(predicateType)),"predicate":"#.utf8)
        out.append(predicate)
        out.append(Data("}".utf8))
        return out
    }

    /// DSSE's pre-authentication encoding: what is signed.
    public static func pae(payloadType: String, payload: Data) -> Data {
        var out = Data("DSSEv1 \(payloadType.utf8.count) \(payloadType) \(payload.count) ".utf8)
        out.append(payload)
        return out
    }

    /// A signed DSSE envelope around `statement`.
    public static func envelope(_ statement: Data, key: SigningKey) throws -> Data {
        let signature = try key.sign(pae(payloadType: inTotoPayloadType, payload: statement))
        return Data(#"{"payloadType":"\#(inTotoPayloadType)","payload":"\#(statement.base64EncodedString())","signatures":[{"keyid":"","sig":"\#(signature.base64EncodedString())"}]}"#.utf8)
    }

    /// The statement inside `envelope` when one of its signatures verifies with `key`.
    public static func open(_ envelope: Data, key: VerificationKey) throws -> Data {
        guard let object = try? JSONDecoder().decode(JSONValue.self, from: envelope).object,
              let type = object["payloadType"]?.string, let b64 = object["payload"]?.string, let payload = Data(base64Encoded: b64),
              case .array(let signatures)? = object["signatures"] else {
            throw TrustError.artifact(what: "DSSE envelope", reason: "is not JSON with payloadType, base64 payload and signatures")
        }
        guard type == inTotoPayloadType else {
            throw TrustError.artifact(what: "DSSE envelope", reason: "payloadType is \(type), not \(inTotoPayloadType)")
        }
        let signed = pae(payloadType: type, payload: payload)
        for s in signatures {
            if let sig = s.object?["sig"]?.string.flatMap({ Data(base64Encoded: $0) }), key.isValid(sig, for: signed) { return payload }
        }
        throw TrustError.artifact(what: "DSSE envelope", reason: "no signature verifies with the given key (another key, or an edited statement)")
    }
}

/// A `sha256-<hex>.att` artifact: its envelopes with their predicate types.
public struct AttestationArtifact: Sendable {
    public var envelopes: [(predicateType: String, envelope: Data)]

    public init(envelopes: [(predicateType: String, envelope: Data)] = []) { self.envelopes = envelopes }

    /// Adds an envelope, replacing an earlier one of the same predicate type signed by the same
    /// run (a re-attest of one image keeps one statement per type).
    public mutating func add(predicateType: String, envelope: Data) {
        envelopes.removeAll { $0.predicateType == predicateType && $0.envelope == envelope }
        envelopes.append((predicateType, envelope))
    }

    public func encoded() throws -> (config: Data, blobs: [Data], manifest: Data) {
        let descriptors = envelopes.map { e in
            Descriptor(mediaType: Attestation.envelopeMediaType, digest: Digest.sha256(of: e.envelope), size: Int64(e.envelope.count),
                       // cosign wants the signature annotation on every layer of its artifacts; for
                       // DSSE the signature is in the envelope and the annotation is empty.
                       annotations: [Attestation.predicateTypeAnnotation: e.predicateType, Cosign.signatureAnnotation: ""])
        }
        return try Cosign.encode(layers: descriptors, blobs: envelopes.map(\.envelope))
    }

    public static func decode(manifest data: Data, what: String, blob: (Descriptor) async throws -> Data) async throws -> AttestationArtifact {
        let manifest = try Cosign.manifest(data, what: what)
        var out = AttestationArtifact()
        for d in manifest.layers where d.mediaType == Attestation.envelopeMediaType {
            let envelope = try await blob(d)
            guard Digest.sha256(of: envelope) == d.digest else {
                throw TrustError.artifact(what: what, reason: "envelope \(d.digest) does not match its digest")
            }
            out.envelopes.append((d.annotations?[Attestation.predicateTypeAnnotation] ?? "", envelope))
        }
        return out
    }
}

/// What the attestations of an image say, checked: each envelope's signature under the key and
/// its statement's subject digest.
public struct AttestationCheck: Sendable {
    public var verified: [(predicateType: String, statement: Data)] = []
    public var failures: [String] = []

    /// The verified SLSA provenance that answers for the image: the newest, as attestations are
    /// appended in order (an unchanged rebuild attests the same digest again). `cairn verify`,
    /// `audit index --key` and the trust policy all read this one.
    public var provenance: Data? { provenances.last }
    /// Every verified SLSA provenance, oldest first.
    public var provenances: [Data] { verified.filter { $0.predicateType == Attestation.slsaProvenance }.map(\.statement) }

    public static func check(_ artifact: AttestationArtifact, digest: Digest, key: VerificationKey) -> AttestationCheck {
        var result = AttestationCheck()
        for (i, e) in artifact.envelopes.enumerated() {
            let name = "attestation \(i + 1) (\(e.predicateType))"
            let statement: Data
            do { statement = try Attestation.open(e.envelope, key: key) } catch {
                result.failures.append("\(name): \(error)")
                continue
            }
            guard let object = try? JSONDecoder().decode(JSONValue.self, from: statement).object,
                  let type = object["_type"]?.string, Attestation.statementTypes.contains(type),
                  case .array(let subjects)? = object["subject"] else {
                result.failures.append("\(name): not an in-toto Statement (v1 or v0.1)")
                continue
            }
            let names = subjects.compactMap { $0.object?["digest"]?.object?[digest.algorithm]?.string }
            guard names.contains(digest.encoded) else {
                result.failures.append("\(name): its subject is not this manifest \(digest)")
                continue
            }
            guard object["predicateType"]?.string == e.predicateType else {
                result.failures.append("\(name): the statement's predicateType differs from the layer's annotation")
                continue
            }
            result.verified.append((e.predicateType, statement))
        }
        return result
    }
}

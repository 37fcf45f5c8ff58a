import Crypto
import CryptoExtras
import FoundationEssentials
import SwiftASN1

/// Password-protected private keys: PKCS#8 `EncryptedPrivateKeyInfo` (RFC 5958) with PBES2
/// (RFC 8018): PBKDF2 with HMAC-SHA-1/256/512, then AES-128/192/256-CBC. That is the
/// `-----BEGIN ENCRYPTED PRIVATE KEY-----` that `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes and
/// OpenSSL, Python's `cryptography` and Go's x509 tooling read; Cairn writes PBKDF2-HMAC-SHA-256
/// (600,000 rounds, OWASP's figure) with AES-256-CBC. The cryptography is swift-crypto's
/// (CryptoExtras' PBKDF2 and AES-CBC over BoringSSL) and the DER is swift-asn1's; only the
/// structure of the three ASN.1 sequences is written here.
///
/// cosign's own `ENCRYPTED SIGSTORE PRIVATE KEY` (scrypt + NaCl secretbox) is not read: swift-crypto
/// has no XSalsa20-Poly1305, and hand-written cipher code has no place in a signing path.
enum EncryptedPrivateKey {
    static let pemType = "ENCRYPTED PRIVATE KEY"
    static let writeRounds = 600_000
    /// Above this a key file would make loading it a denial of service.
    static let maxRounds = 50_000_000

    static let pbes2: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 13]
    static let pbkdf2: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 12]
    static let prfs: [ASN1ObjectIdentifier: KDF.Insecure.PBKDF2.HashFunction] = [
        [1, 2, 840, 113_549, 2, 7]: .insecureSHA1,
        [1, 2, 840, 113_549, 2, 9]: .sha256,
        [1, 2, 840, 113_549, 2, 11]: .sha512,
    ]
    static let hmacSHA256: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 9]
    static let ciphers: [ASN1ObjectIdentifier: Int] = [
        [2, 16, 840, 1, 101, 3, 4, 1, 2]: 16,
        [2, 16, 840, 1, 101, 3, 4, 1, 22]: 24,
        [2, 16, 840, 1, 101, 3, 4, 1, 42]: 32,
    ]
    static let aes256CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 42]

    /// The parameters read from (or written to) the file.
    struct Parameters {
        var salt: [UInt8]
        var rounds: Int
        var prf: KDF.Insecure.PBKDF2.HashFunction
        var prfOID: ASN1ObjectIdentifier
        var cipherOID: ASN1ObjectIdentifier
        var keyLength: Int
        var iv: [UInt8]
    }

    /// `pkcs8` (an unencrypted PKCS#8 DER private key) encrypted under `password`, as PEM.
    static func encrypt(pkcs8: [UInt8], password: String) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16), iv = [UInt8](repeating: 0, count: 16)
        var rng = SystemRandomNumberGenerator()
        for i in 0..<16 { salt[i] = rng.next(); iv[i] = rng.next() }
        let p = Parameters(salt: salt, rounds: writeRounds, prf: .sha256, prfOID: hmacSHA256, cipherOID: aes256CBC, keyLength: 32, iv: iv)
        let key = try derive(password, p)
        let ciphertext = try AES._CBC.encrypt(pkcs8, using: key, iv: try AES._CBC.IV(ivBytes: iv))
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { info in
            try info.appendConstructedNode(identifier: .sequence) { algorithm in
                try algorithm.serialize(pbes2)
                try algorithm.appendConstructedNode(identifier: .sequence) { params in
                    try params.appendConstructedNode(identifier: .sequence) { kdf in
                        try kdf.serialize(pbkdf2)
                        try kdf.appendConstructedNode(identifier: .sequence) { kdfParams in
                            try kdfParams.serialize(ASN1OctetString(contentBytes: ArraySlice(p.salt)))
                            try kdfParams.serialize(p.rounds)
                            try kdfParams.appendConstructedNode(identifier: .sequence) { prf in
                                try prf.serialize(p.prfOID)
                                try prf.serialize(ASN1Null())
                            }
                        }
                    }
                    try params.appendConstructedNode(identifier: .sequence) { cipher in
                        try cipher.serialize(p.cipherOID)
                        try cipher.serialize(ASN1OctetString(contentBytes: ArraySlice(p.iv)))
                    }
                }
            }
            try info.serialize(ASN1OctetString(contentBytes: ArraySlice(ciphertext)))
        }
        return PEMDocument(type: pemType, derBytes: serializer.serializedBytes).pemString
    }

    /// The PKCS#8 DER inside an `ENCRYPTED PRIVATE KEY` PEM; `path` names the file in errors.
    static func decrypt(pem: String, password: String, path: String) throws -> [UInt8] {
        let (p, ciphertext): (Parameters, [UInt8])
        do { (p, ciphertext) = try parse(pem) } catch let error as TrustError { throw error } catch {
            throw TrustError.keyFile(path: path, reason: "is not a PKCS#8 EncryptedPrivateKeyInfo (RFC 5958) in PEM: \(error)")
        }
        guard p.rounds > 0, p.rounds <= maxRounds else {
            throw TrustError.keyFile(path: path, reason: "asks for \(p.rounds) PBKDF2 rounds; expected 1...\(maxRounds)")
        }
        let plain: Data
        do {
            plain = try AES._CBC.decrypt(ciphertext, using: try derive(password, p), iv: try AES._CBC.IV(ivBytes: p.iv))
        } catch {
            throw TrustError.keyFile(path: path, reason: "cannot be decrypted: wrong password (CAIRN_KEY_PASSWORD)")
        }
        // A wrong password passes the padding check about once in 256 tries; the DER then does not parse.
        guard (try? DER.parse(Array(plain))) != nil else {
            throw TrustError.keyFile(path: path, reason: "cannot be decrypted: wrong password (CAIRN_KEY_PASSWORD)")
        }
        return Array(plain)
    }

    static func derive(_ password: String, _ p: Parameters) throws -> SymmetricKey {
        try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: p.salt, using: p.prf, outputByteCount: p.keyLength, unsafeUncheckedRounds: p.rounds)
    }

    static func parse(_ pem: String) throws -> (Parameters, [UInt8]) {
        let document = try PEMDocument(pemString: pem)
        guard document.discriminator == pemType else {
            throw ASN1Error.invalidASN1Object(reason: "PEM type \(document.discriminator), expected \(pemType)")
        }
        return try DER.sequence(try DER.parse(document.derBytes), identifier: .sequence) { info in
            let p = try algorithm(next(&info)) { oid, node in
                guard oid == pbes2, let node else { throw unsupported("encryption scheme \(oid) (expected PBES2, \(pbes2))") }
                return try pbes2Parameters(node)
            }
            let data = try ASN1OctetString(derEncoded: try next(&info))
            return (p, Array(data.bytes))
        }
    }

    static func pbes2Parameters(_ node: ASN1Node) throws -> Parameters {
        try DER.sequence(node, identifier: .sequence) { params in
            var p = try algorithm(next(&params)) { oid, node in
                guard oid == pbkdf2, let node else { throw unsupported("key derivation \(oid) (expected PBKDF2, \(pbkdf2))") }
                return try pbkdf2Parameters(node)
            }
            let (cipher, iv) = try algorithm(next(&params)) { oid, node -> (ASN1ObjectIdentifier, [UInt8]) in
                guard ciphers[oid] != nil, let node else { throw unsupported("cipher \(oid) (expected AES-CBC)") }
                return (oid, Array(try ASN1OctetString(derEncoded: node).bytes))
            }
            p.cipherOID = cipher
            p.iv = iv
            if p.keyLength == 0 { p.keyLength = ciphers[cipher] ?? 32 }
            return p
        }
    }

    static func pbkdf2Parameters(_ node: ASN1Node) throws -> Parameters {
        try DER.sequence(node, identifier: .sequence) { kdf in
            let salt = Array(try ASN1OctetString(derEncoded: try next(&kdf)).bytes)
            let rounds = try Int(derEncoded: try next(&kdf))
            var keyLength = 0
            var prfOID: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 7]  // RFC 8018's default
            while let field = kdf.next() {
                if field.identifier == .integer {
                    keyLength = try Int(derEncoded: field)
                } else {
                    prfOID = try algorithm(field) { oid, _ in oid }
                }
            }
            guard let prf = prfs[prfOID] else { throw unsupported("PBKDF2 PRF \(prfOID) (expected HMAC-SHA-1/256/512)") }
            return Parameters(salt: salt, rounds: rounds, prf: prf, prfOID: prfOID, cipherOID: aes256CBC, keyLength: keyLength, iv: [])
        }
    }

    /// An AlgorithmIdentifier: its OID and parameters (absent, or NULL, give nil).
    static func algorithm<T>(_ node: ASN1Node, _ body: (ASN1ObjectIdentifier, ASN1Node?) throws -> T) throws -> T {
        try DER.sequence(node, identifier: .sequence) { fields in
            let oid = try ASN1ObjectIdentifier(derEncoded: try next(&fields))
            var parameters = fields.next()
            if parameters?.identifier == .null { parameters = nil }
            return try body(oid, parameters)
        }
    }

    static func next(_ nodes: inout ASN1NodeCollection.Iterator) throws -> ASN1Node {
        guard let node = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "a field is missing") }
        return node
    }

    static func unsupported(_ what: String) -> ASN1Error {
        ASN1Error.invalidASN1Object(reason: "unsupported \(what)")
    }
}

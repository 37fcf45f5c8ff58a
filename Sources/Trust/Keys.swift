import Crypto
import FoundationEssentials
import SwiftASN1

#if canImport(Glibc)
import Glibc
#endif

/// Errors of signing and verification: each names the file, image or field and what was
/// expected.
public enum TrustError: Error, CustomStringConvertible, Sendable {
    case keyFile(path: String, reason: String)
    case noSignature(image: String, tag: String)
    case invalidSignature(image: String, detail: String)
    case artifact(what: String, reason: String)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .keyFile(let path, let reason): return "key \(path): \(reason)"
        case .noSignature(let image, let tag): return "\(image) is not signed: no signature artifact \(tag)"
        case .invalidSignature(let image, let detail): return "\(image): no valid signature: \(detail)"
        case .artifact(let what, let reason): return "\(what): \(reason)"
        case .io(let path, let reason): return "\(path): \(reason)"
        }
    }
}

/// An ECDSA P-256 private key, the kind cosign's key-based signing uses. Stored as PKCS#8 PEM
/// (`-----BEGIN PRIVATE KEY-----`), or encrypted with a password (`ENCRYPTED PRIVATE KEY`, PBES2:
/// see EncryptedPrivateKey); SEC 1 (`EC PRIVATE KEY`) is read too. cosign's own
/// `ENCRYPTED SIGSTORE PRIVATE KEY` is not read, and the error says so.
public struct SigningKey: Sendable {
    let key: P256.Signing.PrivateKey

    public init() { key = P256.Signing.PrivateKey() }

    /// `password` opens an encrypted key; an encrypted key without one is refused, naming the
    /// variable that gives it.
    public init(pem: String, path: String, password: String? = nil) throws {
        if pem.contains("ENCRYPTED SIGSTORE PRIVATE KEY") || pem.contains("ENCRYPTED COSIGN PRIVATE KEY") {
            throw TrustError.keyFile(path: path, reason: "is cosign's encrypted key format (scrypt + NaCl secretbox), which Cairn does not read; export it unencrypted or as PKCS#8 (`openssl pkcs8 -topk8 -v2 aes-256-cbc`), or use cairn key generate")
        }
        var pem = pem
        if pem.contains("BEGIN \(EncryptedPrivateKey.pemType)") {
            guard let password, !password.isEmpty else {
                throw TrustError.keyFile(path: path, reason: "is encrypted; give its password in CAIRN_KEY_PASSWORD")
            }
            let der = try EncryptedPrivateKey.decrypt(pem: pem, password: password, path: path)
            pem = PEMDocument(type: "PRIVATE KEY", derBytes: der).pemString
        }
        do { key = try P256.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw TrustError.keyFile(path: path, reason: "is not an ECDSA P-256 private key in PEM (PKCS#8 or SEC 1): \(error)")
        }
    }

    public static func load(_ path: String, password: String? = nil) throws -> SigningKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrustError.keyFile(path: path, reason: "cannot be read")
        }
        return try SigningKey(pem: String(decoding: data, as: UTF8.self), path: path, password: password)
    }

    /// PKCS#8 PEM, encrypted under `password` when one is given (not empty).
    public func pem(password: String?) throws -> String {
        guard let password, !password.isEmpty else { return pem }
        return try EncryptedPrivateKey.encrypt(pkcs8: Array(key.derRepresentation), password: password)
    }

    /// PKCS#8 PEM.
    public var pem: String { key.pemRepresentation }
    public var publicKey: VerificationKey { VerificationKey(key: key.publicKey) }

    /// ECDSA over SHA-256 of `payload`, DER-encoded (what cosign puts, base64, in its annotation).
    public func sign(_ payload: Data) throws -> Data {
        try key.signature(for: payload).derRepresentation
    }
}

/// An ECDSA P-256 public key as PKIX PEM (`-----BEGIN PUBLIC KEY-----`), as `cosign verify --key`
/// takes it.
public struct VerificationKey: Sendable {
    let key: P256.Signing.PublicKey

    init(key: P256.Signing.PublicKey) { self.key = key }

    public init(pem: String, path: String) throws {
        do { key = try P256.Signing.PublicKey(pemRepresentation: pem) } catch {
            throw TrustError.keyFile(path: path, reason: "is not an ECDSA P-256 public key in PEM (PKIX): \(error)")
        }
    }

    public static func load(_ path: String) throws -> VerificationKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrustError.keyFile(path: path, reason: "cannot be read")
        }
        return try VerificationKey(pem: String(decoding: data, as: UTF8.self), path: path)
    }

    public var pem: String { key.pemRepresentation }

    /// Whether `signature` (DER) is this key's signature of `payload`.
    public func isValid(_ signature: Data, for payload: Data) -> Bool {
        guard let s = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
        return key.isValidSignature(s, for: payload)
    }

    /// sha256 of the DER public key, hex: names the key in reports without printing it.
    public var fingerprint: String {
        hexString(SHA256.hash(data: key.derRepresentation))
    }
}

extension SigningKey {
    /// Writes `<prefix>.key` (mode 0600, written to a temporary file and renamed) and
    /// `<prefix>.pub`; refuses to overwrite either.
    public func write(prefix: String, password: String? = nil) throws -> (key: String, pub: String) {
        let keyPath = prefix + ".key", pubPath = prefix + ".pub"
        for p in [keyPath, pubPath] where FileManager.default.fileExists(atPath: p) {
            throw TrustError.io(path: p, reason: "exists; not overwritten (remove it or choose another --output-key-prefix)")
        }
        try writeAtomically(Data(try pem(password: password).utf8), to: keyPath, mode: 0o600)
        try writeAtomically(Data(publicKey.pem.utf8), to: pubPath, mode: 0o644)
        return (keyPath, pubPath)
    }
}

/// sha256 of a file's content, hex, read in chunks; nil when it cannot be opened.
public func sha256File(_ path: String) throws -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var hasher = SHA256()
    // Sized to the file (at most 1 MiB): a fresh 1 MiB buffer per small file was 256 page
    // faults each, most of the time a source tree's digest took.
    var st = stat()
    let size = fstat(fd, &st) == 0 ? Int(st.st_size) : 1 << 20
    var buffer = [UInt8](repeating: 0, count: min(max(size + 1, 4096), 1 << 20))
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw TrustError.io(path: path, reason: "cannot be read: \(String(cString: strerror(errno)))") }
        if n == 0 { break }
        buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0.prefix(n))) }
    }
    return hexString(hasher.finalize())
}

/// Lower-case hex of `bytes`.
func hexString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    let digits = Array("0123456789abcdef")
    var out = ""
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xf)]) }
    return out
}

func writeAtomically(_ data: Data, to path: String, mode: mode_t) throws {
    let temp = path + ".tmp-\(getpid())"
    let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw TrustError.io(path: path, reason: "cannot be written: \(String(cString: strerror(errno)))") }
    let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    let synced = fsync(fd)
    close(fd)
    guard written == data.count, synced == 0, rename(temp, path) == 0 else {
        unlink(temp)
        throw TrustError.io(path: path, reason: "cannot be written: \(String(cString: strerror(errno)))")
    }
}

/// SHA-256 fed in chunks (a file inside a layer, read as it streams).
public struct StreamingSHA256 {
    var hasher = SHA256()
    public init() {}
    public mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }
    public func hex() -> String { hexString(hasher.finalize()) }
}

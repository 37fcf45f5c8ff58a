import CNIOBoringSSL

/// Incremental SHA-256 from the BoringSSL that swift-nio-ssl carries for the registry's TLS (its
/// C module, reached through the NIOSSL product), so the binaries hold one BoringSSL, not two:
/// swift-crypto, used for nothing but this, brought its own copy (about 1.3 MB of the static
/// lifecycle). BoringSSL picks the CPU's SHA extensions or its AVX2/SSSE3 code at run time.
struct SHA256Hasher {
    private var context = SHA256_CTX()

    init() {
        SHA256_Init(&context)
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        SHA256_Update(&context, base, bytes.count)
    }

    /// The digest of what was added so far (the hasher itself is left as it was).
    func finalize() -> [UInt8] {
        var copy = context
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBufferPointer { _ = SHA256_Final($0.baseAddress, &copy) }
        return out
    }
}

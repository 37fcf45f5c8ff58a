import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// cosign v2.6.4 from ../shared/reference, unpacked once per test process, run offline: no
/// transparency log, a trusted root with nothing in it, HOME and TUF_ROOT in a temp dir.
final class CosignTool: @unchecked Sendable {
    let tmp = TempDir("cosign")
    var binary: String { tmp.path + "/cosign" }
    var trustedRoot: String { tmp.path + "/root.json" }

    private init() throws {
        let xz = packageRoot + "/../shared/reference/cosign-v2.6.4-linux-amd64.xz"
        guard FileManager.default.fileExists(atPath: xz) else { throw TestSupportError("\(xz) is missing: ../shared/reference beside the clone") }
        let r = try sh("xz -dc '\(xz)' > '\(binary)' && chmod 755 '\(binary)'")
        guard r.status == 0 else { throw TestSupportError("unpacking cosign: \(r.stderr)") }
        try writeFile(trustedRoot, #"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#)
    }

    nonisolated(unsafe) private static var instance: CosignTool?
    private static let lock = NSLock()
    static func shared() throws -> CosignTool {
        lock.lock()
        defer { lock.unlock() }
        if let instance { return instance }
        let made = try CosignTool()
        instance = made
        return made
    }

    func run(_ args: [String], cwd: String? = nil, extraEnvironment: [String: String] = [:]) throws -> RunResult {
        try TestSupport.run([binary] + args, cwd: cwd, environment: [
            "HOME": tmp.path, "TUF_ROOT": tmp.path + "/tuf", "COSIGN_PASSWORD": "", "PATH": "/usr/bin:/bin",
        ].merging(extraEnvironment) { $1 })
    }

    func verify(_ reference: String, key: String) throws -> RunResult {
        try run(["verify", "--key", key, "--insecure-ignore-tlog", "--allow-insecure-registry", "--trusted-root", trustedRoot, reference])
    }
}

/// A home with the tiny stack's store, and a key pair made by `cairn key generate`.
final class TrustHome {
    let tmp = TempDir("trust")
    var home: String { tmp.path + "/home" }
    var key: String { tmp.path + "/cairn.key" }
    var pub: String { tmp.path + "/cairn.pub" }

    init() throws {
        _ = try sh("mkdir -p '\(home)' && cp -a '\(try TinyStack.shared().store)' '\(home)/store'")
        let made = try cairnAt(["key", "generate", "--output-key-prefix", tmp.path + "/cairn"], home: home)
        guard made.status == 0 else { throw TestSupportError("cairn key generate: \(made.stderr)") }
    }

    func cairn(_ args: [String]) throws -> RunResult { try cairnAt(args, home: home) }
}

/// The signature checked without Cairn: Python's `cryptography` verifies the ECDSA P-256
/// signature over the payload bytes, as cosign's documented format says, and the payload names
/// the digest. Prints "ok" or the reason.
let independentVerifier = #"""
import base64, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
store, ref_name, pub, digest = sys.argv[1:5]
def blob(d):
    return open(f"{store}/blobs/sha256/{d.split(':')[1]}", "rb").read()
index = json.load(open(f"{store}/index.json"))
entry = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref_name][0]
manifest = json.loads(blob(entry["digest"]))
layer = manifest["layers"][0]
assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json", layer["mediaType"]
payload = blob(layer["digest"])
key = serialization.load_pem_public_key(open(pub, "rb").read())
key.verify(base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"]), payload, ec.ECDSA(hashes.SHA256()))
claims = json.loads(payload)
assert claims["critical"]["image"]["docker-manifest-digest"] == digest, claims
assert claims["critical"]["type"] == "cosign container image signature"
print("ok")
"""#

@Test func keysSignAndVerifyInTheStoreAndAnIndependentVerifierAgrees() throws {
    let t = try TrustHome()
    let keyMode = (try FileManager.default.attributesOfItem(atPath: t.key)[.posixPermissions] as? NSNumber)?.intValue
    #expect(keyMode == 0o600, "the private key is written 0600")
    // The PEMs are what other tools read: PKCS#8 and PKIX, loaded by Python's cryptography.
    let load = try run(["python3", "-c", """
        import sys
        from cryptography.hazmat.primitives import serialization
        k = serialization.load_pem_private_key(open(sys.argv[1], 'rb').read(), password=None)
        p = serialization.load_pem_public_key(open(sys.argv[2], 'rb').read())
        assert k.public_key().public_numbers() == p.public_numbers()
        print(k.curve.name)
        """, t.key, t.pub])
    #expect(load.stdout == "secp256r1\n", "\(load.stdout)\(load.stderr)")

    let signed = try t.cairn(["sign", "tiny/run:latest", "--key", t.key])
    try #require(signed.status == 0, "\(signed.stderr)")
    let verified = try t.cairn(["verify", "tiny/run:latest", "--key", t.pub, "--format", "json"])
    #expect(verified.status == 0, "\(verified.stderr)")
    let object = try JSONSerialization.jsonObject(with: verified.stdoutData) as? [String: Any]
    #expect(object?["verified"] as? Bool == true)
    let digest = try #require(object?["digest"] as? String)
    let sigName = "tiny/run:sha256-\(digest.dropFirst(7)).sig"
    let independent = try run(["python3", "-c", independentVerifier, t.home + "/store", sigName, t.pub, digest])
    #expect(independent.stdout == "ok\n", "\(independent.stdout)\(independent.stderr)")

    // A wrong key, an unsigned image, and a signature moved to another image each fail, named.
    _ = try t.cairn(["key", "generate", "--output-key-prefix", t.tmp.path + "/other"])
    let wrongKey = try t.cairn(["verify", "tiny/run:latest", "--key", t.tmp.path + "/other.pub"])
    #expect(wrongKey.status != 0 && wrongKey.stderr.contains("does not verify with the given key"), "\(wrongKey.stderr)")
    let unsigned = try t.cairn(["verify", "tiny/build:latest", "--key", t.pub])
    #expect(unsigned.status != 0 && unsigned.stderr.contains("is not signed"), "\(unsigned.stderr)")
    let buildDigest = try storeDigest(t.home + "/store", "tiny/build:latest")
    let moved = try run(["python3", "-c", """
        import json, sys
        store, src, dst = sys.argv[1:4]
        index = json.load(open(store + "/index.json"))
        entry = [m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == src][0]
        copy = dict(entry, annotations={"org.opencontainers.image.ref.name": dst})
        index["manifests"].append(copy)
        json.dump(index, open(store + "/index.json", "w"))
        """, t.home + "/store", sigName, "tiny/build:sha256-\(buildDigest.dropFirst(7)).sig"])
    try #require(moved.status == 0, "\(moved.stderr)")
    let tampered = try t.cairn(["verify", "tiny/build:latest", "--key", t.pub])
    #expect(tampered.status != 0 && tampered.stderr.contains("signs \(digest), not this manifest"), "\(tampered.stderr)")
    // No key: a clear error, not a crash.
    let noKey = try t.cairn(["sign", "tiny/run:latest"])
    #expect(noKey.status != 0 && noKey.stderr.contains("CAIRN_SIGNING_KEY"), "\(noKey.stderr)")
}

/// The manifest digest a store's index names `name` with (read as a layout, not through Cairn).
func storeDigest(_ store: String, _ name: String) throws -> String {
    let r = try run(["python3", "-c", """
        import json, sys
        index = json.load(open(sys.argv[1] + "/index.json"))
        print([m["digest"] for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]][0])
        """, store, name])
    guard r.status == 0 else { throw TestSupportError("no \(name) in \(store): \(r.stderr)") }
    return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Both directions with cosign on a loopback docker-registry (no referrers API): cosign verifies
/// what Cairn signed (the .sig tag is where it looks), and Cairn verifies what cosign signed.
@Test(.requires("docker-registry", "xz"))
func cosignVerifiesCairnsSignaturesAndCairnVerifiesCosigns() throws {
    let t = try TrustHome()
    let cosign = try CosignTool.shared()
    let registry = try LocalRegistry()
    let insecure = ["--insecure-registry", registry.host]
    let run = "\(registry.host)/tiny/run:latest", build = "\(registry.host)/tiny/build:latest"
    for (local, remote) in [("tiny/run:latest", run), ("tiny/build:latest", build)] {
        let pushed = try t.cairn(["push", local, remote] + insecure)
        try #require(pushed.status == 0, "\(pushed.stderr)")
    }
    let signed = try t.cairn(["sign", "--remote", run, "--key", t.key] + insecure)
    try #require(signed.status == 0, "\(signed.stderr)")
    let tags = try TestSupport.run(["curl", "-fsS", "http://\(registry.host)/v2/tiny/run/tags/list"]).stdout
    #expect(tags.contains(".sig\""), "\(tags)")

    let byCosign = try cosign.verify(run, key: t.pub)
    #expect(byCosign.status == 0, "cosign verify: \(byCosign.stdout)\(byCosign.stderr)")
    _ = try t.cairn(["key", "generate", "--output-key-prefix", t.tmp.path + "/other"])
    let wrong = try cosign.verify(run, key: t.tmp.path + "/other.pub")
    #expect(wrong.status != 0, "cosign must refuse another key")

    let pair = try cosign.run(["generate-key-pair"], cwd: t.tmp.path)
    try #require(pair.status == 0, "\(pair.stderr)")
    let cosignSigned = try cosign.run(["sign", "--key", t.tmp.path + "/cosign.key", "--tlog-upload=false", "--allow-insecure-registry", "--yes", build])
    try #require(cosignSigned.status == 0, "\(cosignSigned.stderr)")
    let byCairn = try t.cairn(["verify", "--remote", build, "--key", t.tmp.path + "/cosign.pub"] + insecure)
    #expect(byCairn.status == 0, "cairn verify of cosign's signature: \(byCairn.stderr)")
    let cairnWrongKey = try t.cairn(["verify", "--remote", build, "--key", t.pub] + insecure)
    #expect(cairnWrongKey.status != 0 && cairnWrongKey.stderr.contains("does not verify with the given key"), "\(cairnWrongKey.stderr)")

    // Pulled, cosign's signature comes along into the store and verifies there.
    let pulled = try t.cairn(["pull", build] + insecure)
    #expect(pulled.status == 0 && pulled.stderr.contains(".sig"), "\(pulled.stdout)\(pulled.stderr)")
    let inStore = try t.cairn(["verify", build, "--key", t.tmp.path + "/cosign.pub"])
    #expect(inStore.status == 0, "\(inStore.stdout)\(inStore.stderr)")
}

/// Buildpack binaries' chain of custody: `cairn buildpack package --sign`; a trust policy with
/// `buildpackage-keys` makes `cairn builder create` accept only buildpackages signed by those
/// keys, refusing unsigned ones and directories by name; a signed builder's provenance lists
/// each buildpack's source, digest and signer.
@Test func builderCreateAcceptsOnlySignedBuildpackagesUnderAPolicyAndAttestsTheirSources() throws {
    let t = try TrustHome()
    let signed = try t.cairn(["buildpack", "package", packageRoot + "/examples/buildpacks/procfile", "bp/procfile:0.1.0", "--sign", "--key", t.key])
    try #require(signed.status == 0, "\(signed.stderr)")
    let unsigned = try t.cairn(["buildpack", "package", packageRoot + "/examples/buildpacks/static-site", "bp/static-site:0.1.0"])
    try #require(unsigned.status == 0, "\(unsigned.stderr)")
    try writeFile(t.tmp.path + "/policy.toml", "buildpackage-keys = [\"cairn.pub\"]\n")
    func config(_ uris: [String], _ id: String) throws -> String {
        let path = t.tmp.path + "/builder-\(id).toml"
        try writeFile(path, uris.map { "[[buildpacks]]\nuri = \"\($0)\"\n" }.joined() + """
            [[order]]
            [[order.group]]
            id = "\(id)"
            version = "0.1.0"
            [build]
            image = "tiny/build:latest"
            [[run.images]]
            image = "tiny/run:latest"
            """)
        return path
    }
    let ok = try t.cairn(["builder", "create", "trusted", "--config", try config(["bp/procfile:0.1.0"], "examples/procfile"),
                          "--policy", t.tmp.path + "/policy.toml", "--sign", "--key", t.key])
    #expect(ok.status == 0, "\(ok.stderr)")
    let refusedUnsigned = try t.cairn(["builder", "create", "untrusted", "--config", try config(["bp/static-site:0.1.0"], "examples/static-site"),
                                       "--policy", t.tmp.path + "/policy.toml"])
    #expect(refusedUnsigned.status != 0 && refusedUnsigned.stderr.contains("buildpackage bp/static-site:0.1.0")
            && refusedUnsigned.stderr.contains("is not signed by a key the trust policy names"), "\(refusedUnsigned.stderr)")
    let refusedDirectory = try t.cairn(["builder", "create", "dir", "--config",
                                        try config([packageRoot + "/examples/buildpacks/procfile"], "examples/procfile"), "--policy", t.tmp.path + "/policy.toml"])
    #expect(refusedDirectory.status != 0 && refusedDirectory.stderr.contains("is a directory: the trust policy accepts only buildpackage images"),
            "\(refusedDirectory.stderr)")
    // Without a policy the same builder is made (the policy is what refuses).
    #expect(try t.cairn(["builder", "create", "untrusted", "--config", try config(["bp/static-site:0.1.0"], "examples/static-site")]).status == 0)

    let verified = try t.cairn(["verify", "trusted", "--key", t.pub])
    #expect(verified.status == 0 && verified.stdout.contains("https://slsa.dev/provenance/v1"), "\(verified.stdout)\(verified.stderr)")
    let builderDigest = try storeDigest(t.home + "/store", "trusted:latest")
    let packageDigest = try storeDigest(t.home + "/store", "bp/procfile:0.1.0")
    let read = try run(["python3", "-c", attestationReader, t.home + "/store", "trusted:sha256-\(builderDigest.dropFirst(7)).att"])
    #expect(read.stdout.contains("\"uri\": \"bp/procfile:0.1.0\"") && read.stdout.contains(String(packageDigest.dropFirst(7)))
            && read.stdout.contains("signerKeySHA256"), "\(read.stdout)\(read.stderr)")
}

/// Password-protected keys: `cairn key generate` with CAIRN_KEY_PASSWORD writes PKCS#8 PBES2 that
/// Python's `cryptography` opens with the password (and not without); Cairn signs with keys that
/// `cryptography` and `openssl pkcs8` encrypted; a wrong or missing password, and cosign's own
/// encrypted format, are refused by name.
@Test func encryptedKeysAreWrittenAndReadAsOtherToolsDo() throws {
    let t = try TrustHome()
    func cairn(_ args: [String], password: String?) throws -> RunResult {
        var env = ["CAIRN_HOME": t.home, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        if let password { env["CAIRN_KEY_PASSWORD"] = password }
        return try run([cairnBinary] + args, environment: env)
    }
    let prefix = t.tmp.path + "/enc"
    let made = try cairn(["key", "generate", "--output-key-prefix", prefix], password: "correct horse")
    try #require(made.status == 0 && made.stdout.contains("encrypted with CAIRN_KEY_PASSWORD"), "\(made.stdout)\(made.stderr)")
    #expect(try String(contentsOfFile: prefix + ".key", encoding: .utf8).hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY-----"))
    let opened = try run(["python3", "-c", """
        import sys
        from cryptography.hazmat.primitives import serialization
        data = open(sys.argv[1], 'rb').read()
        k = serialization.load_pem_private_key(data, password=b'correct horse')
        assert k.public_key().public_numbers() == serialization.load_pem_public_key(open(sys.argv[2], 'rb').read()).public_numbers()
        for wrong in (None, b'wrong'):
            try:
                serialization.load_pem_private_key(data, password=wrong); print('opened with', wrong)
            except (TypeError, ValueError):
                pass
        # A key `cryptography` encrypted (its PKCS#8 PBES2), for Cairn to read.
        fmt = serialization.BestAvailableEncryption(b'py pass')
        from cryptography.hazmat.primitives.asymmetric import ec
        other = ec.generate_private_key(ec.SECP256R1())
        open(sys.argv[3] + '.key', 'wb').write(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, fmt))
        open(sys.argv[3] + '.pub', 'wb').write(other.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        print('ok')
        """, prefix + ".key", prefix + ".pub", t.tmp.path + "/py"])
    #expect(opened.stdout == "ok\n", "\(opened.stdout)\(opened.stderr)")

    let signed = try cairn(["sign", "tiny/run:latest", "--key", prefix + ".key"], password: "correct horse")
    #expect(signed.status == 0, "\(signed.stderr)")
    #expect(try cairn(["verify", "tiny/run:latest", "--key", prefix + ".pub"], password: nil).status == 0)
    let pySigned = try cairn(["sign", "tiny/build:latest", "--key", t.tmp.path + "/py.key"], password: "py pass")
    #expect(pySigned.status == 0, "\(pySigned.stderr)")
    #expect(try cairn(["verify", "tiny/build:latest", "--key", t.tmp.path + "/py.pub"], password: nil).status == 0)
    if toolAvailable("openssl") {
        // OpenSSL's PBES2 with the RFC's default PRF (HMAC-SHA-1) and AES-128-CBC.
        let ossl = try sh("""
            cd '\(t.tmp.path)' && openssl ecparam -name prime256v1 -genkey -noout | \
            CAIRN_KEY_PASSWORD=o openssl pkcs8 -topk8 -v2 aes-128-cbc -v2prf hmacWithSHA1 -passout env:CAIRN_KEY_PASSWORD -out ossl.key && \
            CAIRN_KEY_PASSWORD=o openssl pkey -in ossl.key -passin env:CAIRN_KEY_PASSWORD -pubout -out ossl.pub
            """)
        try #require(ossl.status == 0, "\(ossl.stderr)")
        #expect(try cairn(["sign", "tiny/run:latest", "--key", t.tmp.path + "/ossl.key"], password: "o").status == 0)
        #expect(try cairn(["verify", "tiny/run:latest", "--key", t.tmp.path + "/ossl.pub"], password: nil).status == 0)
    }

    let wrong = try cairn(["sign", "tiny/run:latest", "--key", prefix + ".key"], password: "wrong")
    #expect(wrong.status != 0 && wrong.stderr.contains("enc.key: cannot be decrypted: wrong password (CAIRN_KEY_PASSWORD)"), "\(wrong.stderr)")
    let missing = try cairn(["sign", "tiny/run:latest", "--key", prefix + ".key"], password: nil)
    #expect(missing.status != 0 && missing.stderr.contains("is encrypted; give its password in CAIRN_KEY_PASSWORD"), "\(missing.stderr)")
    try writeFile(t.tmp.path + "/cosign.key", "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJ9\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    let cosignKey = try cairn(["sign", "tiny/run:latest", "--key", t.tmp.path + "/cosign.key"], password: "x")
    #expect(cosignKey.status != 0 && cosignKey.stderr.contains("cosign's encrypted key format"), "\(cosignKey.stderr)")
    // The key file is never echoed: not its PEM, not the password.
    #expect(!(wrong.stderr + missing.stderr).contains("BEGIN") && !wrong.stderr.contains("wrong\n"))
}

/// A signature is about one digest. A name moved to another image (rebuilt, imported again)
/// takes the old image's `.sig` name with it when nothing else reaches that image; once no name
/// reaches an image (`rmi`), `cairn prune` removes its `.sig` name; so index.json does not grow
/// by a name per signed rebuild. The current image's signature stays and verifies.
@Test func pruneRemovesSignaturesOfImagesNoNameReaches() throws {
    let t = try TrustHome()
    let src = t.tmp.sub("src")
    let names = { try t.cairn(["images", "--all"]).stdout.split(separator: "\n").filter { $0.contains(".sig") }.count }
    try writeFile(src + "/a.txt", "one\n")
    #expect(try t.cairn(["import", "--quiet", src, "app:1"]).status == 0)
    #expect(try t.cairn(["sign", "app:1", "--key", t.key]).status == 0)
    #expect(try names() == 1)
    // The name moves to a new image: the old image's signature name goes with it (StoreNamesTests:
    // kept while another name, a pin or an index still reaches the old image).
    try writeFile(src + "/a.txt", "two\n")
    #expect(try t.cairn(["import", "--quiet", src, "app:1"]).status == 0)
    #expect(try names() == 0)
    #expect(try t.cairn(["sign", "app:1", "--key", t.key]).status == 0)
    try writeFile(src + "/a.txt", "three\n")
    #expect(try t.cairn(["import", "--quiet", src, "app:2"]).status == 0)
    #expect(try t.cairn(["sign", "app:2", "--key", t.key]).status == 0)
    #expect(try t.cairn(["rmi", "app:2"]).status == 0)
    #expect(try names() == 2)
    let pruned = try t.cairn(["prune"])
    #expect(pruned.status == 0 && pruned.stdout.contains("Removed 1 signature and attestation names"), "\(pruned.stdout)\(pruned.stderr)")
    #expect(try names() == 1)
    let verified = try t.cairn(["verify", "app:1", "--key", t.pub])
    #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
    // Pruning again removes nothing more.
    #expect(try !t.cairn(["prune"]).stdout.contains("signature and attestation names"))
}

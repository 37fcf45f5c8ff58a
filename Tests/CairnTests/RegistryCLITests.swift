import Foundation
import OCI
import Testing
import TestSupport

// The limit guards against a hang, not for speed: on a 2-core machine these async tests can wait
// minutes for a cooperative-pool thread while long synchronous tests (the Debian flask build, the
// kill -9 series) hold both; with 2 minutes four of them failed one full run that way.
@Suite(.requires("docker-registry", "curl"), .serialized, .timeLimit(.minutes(10)))
struct RegistryCLITests {
    @Test func loginPushPullThroughTheCLI() throws {
        let registry = try LocalRegistry(auth: .basic(user: "carol", password: "pa55-word"))
        let tmp = TempDir()
        let src = tmp.sub("src")
        try makeSampleTree(src)
        #expect(try cairn(["import", src, "app:1"], home: tmp.path).status == 0)
        let insecure = ["--insecure-registry", registry.host]
        // A wrong password is refused and not saved.
        let bad = try run([cairnBinary, "login", registry.host, "-u", "carol", "--password-stdin"] + insecure,
                          environment: ["HOME": tmp.path, "PATH": "/usr/bin:/bin"], stdin: Data("wrong-pass\n".utf8))
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("rejected the credentials"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tmp.path + "/.docker/config.json"))
        let good = try run([cairnBinary, "login", registry.host, "-u", "carol", "--password-stdin"] + insecure,
                           environment: ["HOME": tmp.path, "PATH": "/usr/bin:/bin"], stdin: Data("pa55-word\n".utf8))
        #expect(good.status == 0, "\(good.stderr)")
        #expect(!(good.stdout + good.stderr).contains("pa55-word"))
        let config = try String(contentsOfFile: tmp.path + "/.docker/config.json", encoding: .utf8)
        #expect(config.contains(Data("carol:pa55-word".utf8).base64EncodedString()))
        let mode = try FileManager.default.attributesOfItem(atPath: tmp.path + "/.docker/config.json")[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o777 } == 0o600)

        let push = try cairn(["push", "app:1", "\(registry.host)/team/app:1"] + insecure, home: tmp.path)
        #expect(push.status == 0, "\(push.stderr)")
        #expect(push.stdout.contains("Pushed \(registry.host)/team/app:1 sha256:"))
        #expect(push.stderr.contains("uploaded"), "plain progress lines when stderr is not a terminal")
        let again = try cairn(["push", "app:1", "\(registry.host)/team/app:1"] + insecure, home: tmp.path)
        #expect(again.stderr.contains("already in the registry"))
        #expect(!(push.stdout + push.stderr + again.stderr).contains("pa55-word"))

        let pulled = try cairn(["pull", "--quiet", "--store", tmp.path + "/other", "\(registry.host)/team/app:1"] + insecure, home: tmp.path)
        #expect(pulled.status == 0, "\(pulled.stderr)")
        let original = try cairn(["inspect", "--format", "json", "app:1"], home: tmp.path)
        let digest = (try JSONSerialization.jsonObject(with: original.stdoutData) as? [String: Any])?["digest"] as? String
        #expect(pulled.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == digest)
    }

    @Test func credentialHelpersAndPlainHTTPOnlyWhenNamed() throws {
        let registry = try LocalRegistry(auth: .basic(user: "dave", password: "helper-secret"))
        let tmp = TempDir()
        let src = tmp.sub("src")
        try writeFile(src + "/f", "x")
        #expect(try cairn(["import", src, "app:1"], home: tmp.path).status == 0)
        // A docker-credential helper of our own, found on PATH.
        let bin = tmp.sub("bin")
        try writeFile(bin + "/docker-credential-cairntest", """
            #!/bin/sh
            read server
            [ "$server" = "\(registry.host)" ] || { echo "credentials not found in native keychain"; exit 1; }
            echo '{"ServerURL":"\(registry.host)","Username":"dave","Secret":"helper-secret"}'
            """, mode: 0o755)
        try writeFile(tmp.path + "/.docker/config.json", #"{"credHelpers":{"\#(registry.host)":"cairntest"}}"#)
        let path = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let push = try cairn(["push", "app:1", "\(registry.host)/h/app:1", "--insecure-registry", registry.host], home: tmp.path,
                             extraEnv: ["PATH": path])
        #expect(push.status == 0, "\(push.stderr)")
        #expect(!(push.stdout + push.stderr).contains("helper-secret"))
        // The same helper as the default store (`credsStore`) for every registry.
        try writeFile(tmp.path + "/.docker/config.json", #"{"credsStore":"cairntest"}"#)
        let viaStore = try cairn(["push", "app:1", "\(registry.host)/h/store:1", "--insecure-registry", registry.host], home: tmp.path,
                                 extraEnv: ["PATH": path])
        #expect(viaStore.status == 0, "\(viaStore.stderr)")
        // Not named insecure: HTTPS is used, and the error says how to allow plain HTTP.
        let tls = try cairn(["push", "app:1", "\(registry.host)/h/app:2"], home: tmp.path, extraEnv: ["PATH": path])
        #expect(tls.status != 0)
        #expect(tls.stderr.contains("--insecure-registry \(registry.host)"), "\(tls.stderr)")
        // CNB_INSECURE_REGISTRIES names it too.
        let env = try cairn(["push", "app:1", "\(registry.host)/h/app:3"], home: tmp.path,
                            extraEnv: ["PATH": path, "CNB_INSECURE_REGISTRIES": registry.host])
        #expect(env.status == 0, "\(env.stderr)")
    }
}

// The limit guards against a hang, not for speed: on a 2-core machine these async tests can wait
// minutes for a cooperative-pool thread while long synchronous tests (the Debian flask build, the
// kill -9 series) hold both; with 2 minutes four of them failed one full run that way.
@Suite(.requires("docker-registry", "python3"), .timeLimit(.minutes(10)))
struct RegistryTLSTests {
    @Test func privateCAIsTrustedOnlyWhenGiven() throws {
        let registry = try LocalRegistry(tls: true)
        let tmp = TempDir()
        let src = tmp.sub("src")
        try writeFile(src + "/f", "tls")
        #expect(try cairn(["import", src, "app:1"], home: tmp.path).status == 0)
        let untrusted = try cairn(["push", "app:1", "\(registry.host)/tls/app:1"], home: tmp.path)
        #expect(untrusted.status != 0)
        #expect(untrusted.stderr.contains("cannot reach \(registry.host)"), "\(untrusted.stderr)")
        let trusted = try cairn(["push", "--registry-ca-cert", registry.caBundle!, "app:1", "\(registry.host)/tls/app:1"], home: tmp.path)
        #expect(trusted.status == 0, "\(trusted.stderr)")
        let pulled = try cairn(["pull", "--ca-cert", registry.caBundle!, "--store", tmp.path + "/p", "\(registry.host)/tls/app:1"], home: tmp.path)
        #expect(pulled.status == 0, "\(pulled.stderr)")
    }

    /// As the reference treats CNB_INSECURE_REGISTRIES: HTTPS without certificate checks first,
    /// so a self-signed registry named insecure works (plain HTTP would get 400).
    @Test func anInsecureRegistryIsTriedOverHTTPSWithoutVerification() throws {
        let registry = try LocalRegistry(tls: true)
        let tmp = TempDir()
        let src = tmp.sub("src")
        try writeFile(src + "/f", "self-signed")
        #expect(try cairn(["import", src, "app:1"], home: tmp.path).status == 0)
        let push = try cairn(["push", "app:1", "\(registry.host)/tls/app"], home: tmp.path,
                             extraEnv: ["CNB_INSECURE_REGISTRIES": registry.host])
        #expect(push.status == 0, "\(push.stderr)")
        let pulled = try cairn(["pull", "--insecure-registry", registry.host, "--store", tmp.path + "/p", "\(registry.host)/tls/app:latest"],
                               home: tmp.path)
        #expect(pulled.status == 0, "a name without a tag is pushed as :latest: \(pulled.stderr)")
    }
}

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real CNCF distribution registry (Debian's `docker-registry`) on 127.0.0.1, with optional
/// htpasswd Basic auth or Bearer tokens from our token server, and optionally our fault proxy in
/// front. Everything it starts is stopped when it is released.
public final class LocalRegistry: @unchecked Sendable {
    public enum Auth: Sendable {
        case none
        case basic(user: String, password: String)
        case token(user: String, password: String)
    }

    /// `127.0.0.1:<port>` of the registry itself.
    public let registryHost: String
    /// `127.0.0.1:<port>` of the fault proxy, when started.
    public let proxyHost: String?
    /// `127.0.0.1:<port>` of the token server, when started.
    public let tokenHost: String?
    /// What clients should talk to: the proxy if any, else the registry.
    public var host: String { proxyHost ?? registryHost }

    private let dir: TempDir
    private var processes: [Process] = []

    /// The test CA's PEM file, when the registry serves HTTPS.
    public let caBundle: String?

    /// - Parameter tls: serve HTTPS with a certificate for 127.0.0.1 from a fresh test CA.
    public init(auth: Auth = .none, proxy: Bool = false, tls: Bool = false) throws {
        dir = TempDir("registry")
        var tlsConfig = ""
        if tls {
            let made = try run(["python3", fixturesRoot + "/registry/make_tls.py", dir.path])
            guard made.status == 0 else { throw TestSupportError("make_tls.py failed: \(made.stderr)") }
            tlsConfig = "  tls:\n    certificate: \(dir.path)/server.pem\n    key: \(dir.path)/server.key\n"
            caBundle = dir.path + "/ca.pem"
        } else {
            caBundle = nil
        }
        let port = try Self.freePort()
        registryHost = "127.0.0.1:\(port)"
        var authConfig = ""
        var tokenHost: String?
        switch auth {
        case .none:
            break
        case .basic(let user, let password):
            let h = try run(["htpasswd", "-Bbn", user, password])
            guard h.status == 0 else { throw TestSupportError("htpasswd failed: \(h.stderr)") }
            try Data(h.stdoutData).write(to: URL(fileURLWithPath: dir.path + "/htpasswd"))
            authConfig = "auth:\n  htpasswd:\n    realm: cairn-test\n    path: \(dir.path)/htpasswd\n"
        case .token(let user, let password):
            let tokenProcess = try Self.start(["python3", fixturesRoot + "/registry/token_server.py", dir.path + "/token.port",
                                               dir.path + "/ca.pem", "cairn-test", "cairn-registry", user, password])
            processes.append(tokenProcess)
            let tport = try Self.waitForFile(dir.path + "/token.port", process: tokenProcess)
            tokenHost = "127.0.0.1:\(tport)"
            authConfig = """
                auth:
                  token:
                    realm: http://127.0.0.1:\(tport)/token
                    service: cairn-registry
                    issuer: cairn-test
                    rootcertbundle: \(dir.path)/ca.pem

                """
        }
        self.tokenHost = tokenHost
        let config = """
            version: 0.1
            log:
              level: error
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: \(dir.path)/data
              delete:
                enabled: true
            http:
              addr: \(registryHost)
            \(tlsConfig)\(authConfig)
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: dir.path + "/config.yml"))
        let registry = try Self.start(["docker-registry", "serve", dir.path + "/config.yml"], log: dir.path + "/registry.log")
        processes.append(registry)
        try Self.waitForPort(port, process: registry, log: dir.path + "/registry.log")
        if proxy {
            let p = try Self.start(["python3", fixturesRoot + "/registry/fault_proxy.py", dir.path + "/proxy.port", String(port)])
            processes.append(p)
            proxyHost = "127.0.0.1:\(try Self.waitForFile(dir.path + "/proxy.port", process: p))"
        } else {
            proxyHost = nil
        }
    }

    deinit { stop() }

    /// Children every LocalRegistry started and has not stopped: killed when the test process
    /// exits, so a registry held in a static (never released) does not outlive the tests.
    nonisolated(unsafe) private static var running: Set<Int32> = []
    private static let runningLock = NSLock()
    private static let exitCleanup: Void = {
        atexit {
            LocalRegistry.runningLock.lock()
            for pid in LocalRegistry.running { kill(pid, SIGKILL) }
            LocalRegistry.runningLock.unlock()
        }
    }()

    static func track(_ pid: Int32, running isRunning: Bool) {
        _ = exitCleanup
        runningLock.lock()
        defer { runningLock.unlock() }
        if isRunning { running.insert(pid) } else { running.remove(pid) }
    }

    public func stop() {
        for p in processes {
            Self.track(p.processIdentifier, running: false)
            guard p.isRunning else { continue }
            p.terminate()
            // A child may have inherited a blocked SIGTERM: escalate after a grace period.
            for _ in 0..<40 where p.isRunning { usleep(50_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        processes.removeAll()
    }

    /// Sets the proxy's faults (see fault_proxy.py).
    @discardableResult
    public func proxy(_ path: String, _ json: String = "{}") throws -> [String: Int] {
        guard let proxyHost else { throw TestSupportError("no proxy") }
        let r = try run(["curl", "-sf", "-X", path == "/__stats" ? "GET" : "POST", "-d", json, "http://\(proxyHost)\(path)"])
        guard r.status == 0, let obj = try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Int] else {
            throw TestSupportError("proxy \(path) failed: \(r.stderr)")
        }
        return obj
    }

    /// The token server's counters.
    public func tokenStats() throws -> [String: Int] {
        guard let tokenHost else { throw TestSupportError("no token server") }
        let r = try run(["curl", "-sf", "http://\(tokenHost)/stats"])
        return (try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Int]) ?? [:]
    }

    static func start(_ args: [String], log: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try which(args[0]))
        p.arguments = Array(args.dropFirst())
        if let log {
            FileManager.default.createFile(atPath: log, contents: nil)
            let h = FileHandle(forWritingAtPath: log)
            p.standardOutput = h
            p.standardError = h
        } else {
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.standardError
        }
        try p.run()
        track(p.processIdentifier, running: true)
        return p
    }

    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw TestSupportError("cannot find a free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func waitForFile(_ path: String, process: Process) throws -> Int {
        for _ in 0..<200 {
            if let s = try? String(contentsOfFile: path, encoding: .utf8), let port = Int(s) { return port }
            guard process.isRunning else { throw TestSupportError("\(process.executableURL?.lastPathComponent ?? "server") exited early") }
            usleep(50_000)
        }
        throw TestSupportError("timed out waiting for \(path)")
    }

    static func waitForPort(_ port: Int, process: Process, log: String) throws {
        for _ in 0..<200 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if ok { return }
            guard process.isRunning else {
                throw TestSupportError("docker-registry exited: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            usleep(50_000)
        }
        throw TestSupportError("docker-registry did not start listening on \(port)")
    }
}

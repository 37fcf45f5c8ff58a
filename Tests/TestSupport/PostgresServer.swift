import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster (Debian's `postgresql`): `initdb` in a temp directory, the
/// server on 127.0.0.1 at a free port with trust authentication for the user `cairn`, stopped
/// (immediate) when released. As root, the server runs as the `postgres` system user (initdb
/// refuses root).
public final class PostgresServer: @unchecked Sendable {
    public let port: Int
    private let dir: TempDir
    private let bin: String
    private let asUser: [String]
    private var running = false

    /// The newest installed server's bin directory, if any.
    public static var binDirectory: String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        return versions.last.map { "\(root)/\($0)/bin" }.flatMap { FileManager.default.isExecutableFile(atPath: $0 + "/initdb") ? $0 : nil }
    }

    public static var available: Bool { binDirectory != nil }

    public init() throws {
        guard let bin = Self.binDirectory else { throw TestSupportError("PostgreSQL is not installed (Debian package postgresql)") }
        self.bin = bin
        dir = TempDir("postgres")
        asUser = getuid() == 0 ? ["runuser", "-u", "postgres", "--"] : []
        if getuid() == 0 {
            let owned = try run(["chown", "-R", "postgres:postgres", dir.path])
            guard owned.status == 0 else { throw TestSupportError("chown: \(owned.stderr)") }
        }
        let data = dir.path + "/data"
        let initdb = try run(asUser + [bin + "/initdb", "-D", data, "-U", "cairn", "--auth=trust", "-E", "UTF8", "--no-sync"])
        guard initdb.status == 0 else { throw TestSupportError("initdb: \(initdb.stdout)\(initdb.stderr)") }
        port = try LocalRegistry.freePort()
        // The server outlives this call: started through Python with every descriptor but 0-2
        // closed and those on /dev/null, so it holds no pipe of a test running beside this one
        // (whose reader would then never see the end of its output).
        let start = asUser + [bin + "/pg_ctl", "-D", data, "-l", dir.path + "/server.log", "-w", "-t", "60", "-o",
                              "-p \(port) -k \(dir.path) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50", "start"]
        let started = try run(["python3", "-c", """
            import subprocess, sys
            sys.exit(subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True).returncode)
            """] + start)
        guard started.status == 0 else {
            let log = (try? String(contentsOfFile: dir.path + "/server.log", encoding: .utf8)) ?? ""
            throw TestSupportError("pg_ctl start: \(started.stdout)\(started.stderr)\(log)")
        }
        running = true
    }

    /// A new empty database; its URL.
    public func createDatabase(_ name: String) throws -> String {
        let r = try run(["psql", "-h", "127.0.0.1", "-p", String(port), "-U", "cairn", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE \(name)"])
        guard r.status == 0 else { throw TestSupportError("CREATE DATABASE \(name): \(r.stderr)") }
        return "postgres://cairn@127.0.0.1:\(port)/\(name)"
    }

    public func stop() {
        guard running else { return }
        running = false
        _ = try? run(asUser + [bin + "/pg_ctl", "-D", dir.path + "/data", "-m", "immediate", "-w", "stop"])
    }

    deinit { stop() }
}

import Foundation
import Synchronization
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// PostgreSQL through postgres-nio, for fleets: the same schema and statements as SQLite (`?`
/// placeholders become `$n`). One connection per process; the inventory's calls are synchronous,
/// so each statement waits on its event-loop future (never on the Swift concurrency pool).
/// Transactions that lose a deadlock or serialization race to another `cairn audit index` are
/// retried.
public final class PostgresBackend: SQLBackend {
    public let dialect = SQLDialect.postgres
    public let location: String
    let connection: PostgresConnection
    let logger: Logger
    /// One statement or transaction at a time on the one connection.
    private let serial = Mutex(())

    public init(url: String) throws {
        location = Self.redacted(url)
        guard let parts = URLComponents(string: url), let host = parts.host, !host.isEmpty else {
            throw InventoryError.database(location: location, reason: "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        var logger = Logger(label: "cairn.inventory.postgres")
        logger.logLevel = .critical
        self.logger = logger
        let database = String(parts.path.drop { $0 == "/" })
        let config = PostgresConnection.Configuration(
            host: host, port: parts.port ?? 5432, username: parts.user ?? NSUserName(), password: parts.password,
            database: database.isEmpty ? nil : database, tls: .disable)
        do {
            connection = try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(), configuration: config, id: 1, logger: logger).wait()
            // This session's settings: the inventory's statements are index lookups whose row
            // counts the planner overestimates, so JIT compiled them (15–160 ms a statement on
            // the bench fleet, more than running them); and sorting a fleet's image names (100,000
            // rows) spilled to disk under the 4 MB default. And index lookups cost as little as
            // they do on SSDs or cached tables: at the default (4, spinning disks) the planner
            // scanned both 100,000-row tables to find 1,000 images' names (44 ms, against 5 ms
            // through the indexes).
            _ = try connection.query(PostgresQuery(unsafeSQL: "SET jit = off"), logger: logger).wait()
            _ = try connection.query(PostgresQuery(unsafeSQL: "SET work_mem = '64MB'"), logger: logger).wait()
            _ = try connection.query(PostgresQuery(unsafeSQL: "SET random_page_cost = 1.1"), logger: logger).wait()
        } catch {
            throw InventoryError.database(location: location, reason: "cannot connect: \(Self.describe(error))")
        }
    }

    // Not waited for: the last reference may go in async code, where waiting would block one of
    // Swift concurrency's threads. The completion holds the connection until it is closed
    // (postgres-nio requires a connection to be closed before it goes).
    deinit {
        let connection = connection
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// The URL without its password, for messages.
    static func redacted(_ url: String) -> String {
        guard let at = url.firstIndex(of: "@"), let scheme = url.range(of: "://") else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }

    /// A server error's message and SQLSTATE, else the error.
    static func describe(_ error: any Error) -> String {
        guard let e = error as? PSQLError else { return "\(error)" }
        if let info = e.serverInfo, let message = info[.message] {
            return message + (info[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
        }
        return "\(e.code)" + (e.underlying.map { ": \($0)" } ?? "")
    }

    struct Session: SQLSession {
        let backend: PostgresBackend

        func execute(_ sql: String, _ arguments: [SQLValue]) throws { _ = try rows(sql, arguments) }

        func cursor(_ sql: String, _ arguments: [SQLValue]) throws -> SQLCursor {
            SQLCursor(source: .postgres(try result(sql, arguments).rows.makeIterator()))
        }

        func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [[SQLValue]] {
            try result(sql, arguments).rows.map { row in try row.map(PostgresBackend.value) }
        }

        func queue(_ statements: [SQLStatement]) throws -> SQLStatementQueue {
            let sent = try statements.map { try send($0.sql, $0.arguments) }
            return SQLStatementQueue(pending: .sent(sent.map { future in
                { SQLCursor(source: .postgres(try future.wait().rows.makeIterator())) }
            }))
        }

        func result(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQueryResult {
            try send(sql, arguments).wait()
        }

        /// The statement on its way; its rows when the future is waited on.
        func send(_ sql: String, _ arguments: [SQLValue]) throws -> EventLoopFuture<PostgresQueryResult> {
            var binds = PostgresBindings(capacity: arguments.count)
            for a in arguments {
                switch a {
                case .null: binds.appendNull()
                case .int(let i): try binds.append(i)
                case .text(let s): try binds.append(s)
                case .real(let d): try binds.append(d)
                }
            }
            let query = PostgresQuery(unsafeSQL: PostgresBackend.numbered(sql), binds: binds)
            return backend.connection.query(query, logger: backend.logger)
        }
    }

    /// `?` → `$1`, `$2`… outside quoted text.
    static func numbered(_ sql: String) -> String {
        var out = ""
        var n = 0
        var quoted = false
        for c in sql {
            if c == "'" { quoted.toggle() }
            if c == "?" && !quoted {
                n += 1
                out += "$\(n)"
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// A cell as `value` reads it; a cell that does not decode as its own type reads as NULL
    /// (for the cursor, whose rows were decoded by the server's own type descriptions).
    static func cellValue(_ cell: PostgresCell) -> SQLValue {
        (try? value(cell)) ?? .null
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .int(try cell.decode(Int64.self))
        case .float4, .float8: return .real(try cell.decode(Double.self))
        case .bool: return .int(try cell.decode(Bool.self) ? 1 : 0)
        default: return .text(try cell.decode(String.self))
        }
    }

    /// The elements of a one-dimensional array cell in binary format, each read in place by
    /// `element` (given exactly its bytes; nil if they do not make one); nil when the cell is not
    /// such an array (or holds a NULL element), for the generic decoder to handle. A fleet's names are 100,000-element
    /// arrays, and decoding element by element through `PostgresDecodable` cost ~2 µs each.
    static func arrayElements<T>(_ cell: PostgresCell, _ element: (UnsafeRawBufferPointer) -> T?) -> [T]? {
        guard cell.format == .binary, let bytes = cell.bytes else { return nil }
        return bytes.withUnsafeReadableBytes { raw -> [T]? in
            var at = 0
            func int32() -> Int? {
                guard at + 4 <= raw.count else { return nil }
                defer { at += 4 }
                return Int(Int32(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: Int32.self)))
            }
            // Header: dimensions, has-nulls flag, element type; per dimension: size, lower bound.
            guard let dimensions = int32(), int32() != nil, int32() != nil else { return nil }
            if dimensions == 0 { return [] }
            guard dimensions == 1, let count = int32(), int32() != nil, count >= 0 else { return nil }
            var values: [T] = []
            values.reserveCapacity(count)
            for _ in 0..<count {
                guard let length = int32(), length >= 0, at + length <= raw.count else { return nil }
                guard let value = element(UnsafeRawBufferPointer(rebasing: raw[at..<at + length])) else { return nil }
                values.append(value)
                at += length
            }
            return at == raw.count ? values : nil
        }
    }

    /// A statement that cannot run in a transaction (VACUUM), on its own.
    func executeOutsideTransaction(_ sql: String) throws {
        try serial.withLock { _ in
            do {
                _ = try connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).wait()
            } catch {
                throw InventoryError.database(location: location, reason: Self.describe(error))
            }
        }
    }

    func transaction<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try serial.withLock { _ in
            let session = Session(backend: self)
            var attempt = 0
            while true {
                attempt += 1
                do {
                    try session.execute("BEGIN", [])
                    do {
                        let result = try body(session)
                        try session.execute("COMMIT", [])
                        return result
                    } catch {
                        try? session.execute("ROLLBACK", [])
                        throw error
                    }
                } catch let error as PSQLError {
                    // 40001 serialization failure, 40P01 deadlock, 23505 a unique row another
                    // writer committed first: the transaction is retried.
                    let state = error.serverInfo?[.sqlState] ?? ""
                    if ["40001", "40P01", "23505"].contains(state) && attempt < 8 { continue }
                    throw InventoryError.database(location: location, reason: Self.describe(error))
                }
            }
        }
    }

    public func write<T>(_ body: (any SQLSession) throws -> T) throws -> T { try transaction(body) }
    public func read<T>(_ body: (any SQLSession) throws -> T) throws -> T { try transaction(body) }

    /// A transaction-level advisory lock first: concurrent first runs take turns.
    public func exclusiveWrite<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try transaction { db in
            try db.execute("SELECT pg_advisory_xact_lock(4242001)", [])
            return try body(db)
        }
    }
}

import Foundation
import GRDB
import GRDBSQLite
import PostgresNIO

/// A value in a row or a statement argument: what SQLite and PostgreSQL both store.
public enum SQLValue: Hashable, Sendable {
    case null
    case int(Int64)
    case text(String)
    case real(Double)

    public var text: String? {
        switch self {
        case .text(let s): return s
        case .int(let i): return String(i)
        case .real(let d): return String(d)
        case .null: return nil
        }
    }

    public var int: Int64? {
        switch self {
        case .int(let i): return i
        case .text(let s): return Int64(s)
        case .real(let d): return Int64(d)
        case .null: return nil
        }
    }
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
}

/// Statements of one transaction. SQL is written once for both databases: `?` placeholders,
/// `ON CONFLICT … DO UPDATE`, `RETURNING`; the schema's id columns come from the dialect.
public protocol SQLSession {
    func execute(_ sql: String, _ arguments: [SQLValue]) throws
    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [[SQLValue]]
    /// The rows one at a time, read in place: for answers of hundreds of thousands of rows, where
    /// an array of values per row costs more than the query. Valid until the session ends; two
    /// cursors of the same statement text must not be stepped at once (SQLite's statements are
    /// cached by text).
    func cursor(_ sql: String, _ arguments: [SQLValue]) throws -> SQLCursor
    /// Cursors of several statements, in order, each taken when the one before has been read
    /// (see `SQLStatementQueue`).
    func queue(_ statements: [SQLStatement]) throws -> SQLStatementQueue
}

/// A statement and its arguments.
public struct SQLStatement: Sendable {
    public var sql: String
    public var arguments: [SQLValue]

    public init(_ sql: String, _ arguments: [SQLValue] = []) {
        self.sql = sql
        self.arguments = arguments
    }
}

/// Statements whose cursors are taken one after the other. PostgreSQL is sent them all at once:
/// the server runs each next one while the rows of the one before are read here (a whole-fleet
/// `vulns` is a dozen statements whose rows cost the client about as long as the server). SQLite
/// runs each when its cursor is taken.
public struct SQLStatementQueue {
    enum Pending {
        case lazy(any SQLSession, [SQLStatement])
        case sent([() throws -> SQLCursor])
    }

    var pending: Pending
    var position = 0

    /// The next statement's cursor; nil after the last. The cursor before must not be stepped
    /// any more.
    public mutating func next() throws -> SQLCursor? {
        defer { position += 1 }
        switch pending {
        case .lazy(let db, let statements):
            guard position < statements.count else { return nil }
            return try db.cursor(statements[position].sql, statements[position].arguments)
        case .sent(let results):
            guard position < results.count else { return nil }
            return try results[position]()
        }
    }
}

extension SQLSession {
    public func queue(_ statements: [SQLStatement]) throws -> SQLStatementQueue {
        SQLStatementQueue(pending: .lazy(self, statements))
    }
}

/// Rows being stepped (see `SQLSession.cursor`); each `next()` row is valid until the next call.
public struct SQLCursor {
    enum Source {
        case values(IndexingIterator<[[SQLValue]]>)
        case postgres(IndexingIterator<[PostgresRow]>)
        /// GRDB steps the statement; the columns are read from the statement where it stands.
        case sqlite(RowCursor, OpaquePointer)
    }

    var source: Source

    public mutating func next() throws -> SQLRow? {
        switch source {
        case .values(var rows):
            defer { source = .values(rows) }
            return rows.next().map { SQLRow(storage: .values($0)) }
        case .sqlite(let cursor, let statement):
            return try cursor.next() == nil ? nil : SQLRow(storage: .sqlite(statement))
        case .postgres(var rows):
            defer { source = .postgres(rows) }
            return rows.next().map { SQLRow(storage: .postgres(PostgresRandomAccessRow($0))) }
        }
    }
}

/// A row being stepped: its columns by position. Valid only until the cursor moves on.
public struct SQLRow {
    enum Storage {
        case values([SQLValue])
        /// A SQLite statement positioned on the row.
        case sqlite(OpaquePointer)
        /// A PostgreSQL row as received, decoded cell by cell when read.
        case postgres(PostgresRandomAccessRow)
    }

    let storage: Storage

    /// A column as `rows` would give it; `int` and `text` convert as `SQLValue` does (text is
    /// parsed, never a conversion trap).
    public func value(_ column: Int) -> SQLValue {
        switch storage {
        case .values(let v): return v[column]
        case .postgres(let row): return PostgresBackend.cellValue(row[column])
        case .sqlite(let statement):
            let i = Int32(column)
            switch sqlite3_column_type(statement, i) {
            case SQLITE_NULL: return .null
            case SQLITE_INTEGER: return .int(sqlite3_column_int64(statement, i))
            case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, i))
            default:
                guard let bytes = sqlite3_column_text(statement, i) else { return .text("") }
                return .text(String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(statement, i))), as: UTF8.self))
            }
        }
    }

    public func int(_ column: Int) -> Int64? { value(column).int }

    public func text(_ column: Int) -> String? { value(column).text }

    /// PostgreSQL's `array_agg` of an integer column. SQLite has no arrays: asking there is a
    /// query that took the wrong path, an error rather than an empty answer.
    public func ints(_ column: Int) throws -> [Int64] {
        guard let values = intArray(column) else { throw arrayError(column, "an integer array") }
        return values
    }

    /// PostgreSQL's `array_agg` of a text column (an error on SQLite, as `ints`).
    public func texts(_ column: Int) throws -> [String] {
        guard let values = textArray(column) else { throw arrayError(column, "a text array") }
        return values
    }

    func arrayError(_ column: Int, _ expected: String) -> InventoryError {
        guard case .postgres = storage else {
            return InventoryError.database(location: "column \(column)", reason: "an array was read from SQLite, which has none: a PostgreSQL-only path was taken")
        }
        return InventoryError.database(location: "column \(column)", reason: "expected \(expected)")
    }

    func intArray(_ column: Int) -> [Int64]? {
        guard case .postgres(let row) = storage else { return nil }
        let cell = row[column]
        // array_agg over no rows is NULL: no elements.
        if cell.bytes == nil { return [] }
        if cell.dataType == .int8Array, let values = PostgresBackend.arrayElements(cell, { $0.count == 8 ? Int64(bigEndian: $0.loadUnaligned(as: Int64.self)) : nil }) {
            return values
        }
        return try? cell.decode([Int64].self)
    }

    func textArray(_ column: Int) -> [String]? {
        guard case .postgres(let row) = storage else { return nil }
        let cell = row[column]
        if cell.bytes == nil { return [] }
        if cell.dataType == .textArray || cell.dataType == .varcharArray,
           let values = PostgresBackend.arrayElements(cell, { String(decoding: $0, as: UTF8.self) }) {
            return values
        }
        return try? cell.decode([String].self)
    }
}

extension SQLSession {
    /// Each row in turn (see `cursor`).
    public func forEachRow(_ sql: String, _ arguments: [SQLValue], _ body: (SQLRow) throws -> Void) throws {
        var rows = try cursor(sql, arguments)
        while let row = try rows.next() { try body(row) }
    }

    public func execute(_ sql: String) throws { try execute(sql, []) }
    /// The first column of the first row.
    public func value(_ sql: String, _ arguments: [SQLValue] = []) throws -> SQLValue? { try rows(sql, arguments).first?.first }
}

public enum SQLDialect: Sendable {
    case sqlite, postgres

    /// An ORDER BY list giving the same order in both databases: bytewise text, NULLs first.
    func order(_ columns: [String]) -> String {
        columns.map { self == .postgres ? "\($0) COLLATE \"C\" NULLS FIRST" : "\($0) NULLS FIRST" }.joined(separator: ", ")
    }

    /// An auto-numbered 64-bit primary key column.
    var idColumn: String {
        switch self {
        case .sqlite: return "INTEGER PRIMARY KEY"
        case .postgres: return "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        }
    }
}

/// Where the inventory lives: a transaction runs the body with a session; it commits when the body
/// returns and rolls back when it throws.
public protocol SQLBackend: Sendable {
    var dialect: SQLDialect { get }
    var location: String { get }
    func write<T>(_ body: (any SQLSession) throws -> T) throws -> T
    func read<T>(_ body: (any SQLSession) throws -> T) throws -> T
    /// A write transaction that no other process's `exclusiveWrite` runs beside (migrations).
    func exclusiveWrite<T>(_ body: (any SQLSession) throws -> T) throws -> T
}

/// SQLite through GRDB: a WAL database pool, so readers never wait for the writer and several
/// `cairn audit index` processes take turns (busy timeout).
public final class SQLiteBackend: SQLBackend {
    public let dialect = SQLDialect.sqlite
    public let location: String
    let pool: DatabasePool

    public init(path: String) throws {
        location = path
        var config = Configuration()
        config.busyMode = .timeout(60)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Fleet queries read much of the file: map it rather than copy it page by page.
            try db.execute(sql: "PRAGMA mmap_size = 1073741824")
        }
        do {
            // A bare file name has no directory part to create: resolve it against the working directory first.
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
            try FileManager.default.createDirectory(atPath: (absolute as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            pool = try DatabasePool(path: absolute, configuration: config)
        } catch {
            throw InventoryError.database(location: path, reason: "cannot open: \(error)")
        }
    }

    struct Session: SQLSession {
        let db: Database

        func execute(_ sql: String, _ arguments: [SQLValue]) throws {
            try db.cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
        }

        func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [[SQLValue]] {
            // A cursor: rows are converted as they are stepped, not collected twice.
            let cursor = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: Self.arguments(arguments))
            var out: [[SQLValue]] = []
            while let row = try cursor.next() {
                var values: [SQLValue] = []
                values.reserveCapacity(row.count)
                for value in row.databaseValues {
                    switch value.storage {
                    case .null: values.append(.null)
                    case .int64(let i): values.append(.int(i))
                    case .double(let d): values.append(.real(d))
                    case .string(let s): values.append(.text(s))
                    case .blob(let b): values.append(.text(String(decoding: b, as: UTF8.self)))
                    }
                }
                out.append(values)
            }
            return out
        }

        func cursor(_ sql: String, _ arguments: [SQLValue]) throws -> SQLCursor {
            let statement = try db.cachedStatement(sql: sql)
            return SQLCursor(source: .sqlite(try Row.fetchCursor(statement, arguments: Self.arguments(arguments)), statement.sqliteStatement))
        }

        /// As database values, not boxed `DatabaseValueConvertible`s: an id list of 1,000 made
        /// 1,000 existentials per statement.
        static func arguments(_ values: [SQLValue]) -> StatementArguments {
            StatementArguments(values.map { v -> DatabaseValue in
                switch v {
                case .null: return .null
                case .int(let i): return i.databaseValue
                case .text(let s): return s.databaseValue
                case .real(let d): return d.databaseValue
                }
            })
        }
    }

    public func write<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try pool.write { db in try body(Session(db: db)) }
    }

    public func read<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try pool.read { db in try body(Session(db: db)) }
    }

    /// BEGIN IMMEDIATE: the write lock is taken before the migrations table is read, so a second
    /// process's first run waits (busy timeout) instead of reading a list that is about to change.
    public func exclusiveWrite<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try pool.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(Session(db: db))
                return .commit
            }
            return result!
        }
    }
}

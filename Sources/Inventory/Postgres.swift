import Foundation

/// PostgreSQL for fleets: not built yet. `--database postgres://…` is refused with this error
/// rather than silently using SQLite (issue 16 leaves it open).
enum PostgresBackend {
    static func open(url: String) throws -> any SQLBackend {
        throw InventoryError.database(location: redacted(url), reason: "PostgreSQL is not supported by this build yet; use the SQLite default or --database PATH")
    }

    /// The URL without its password, for messages.
    static func redacted(_ url: String) -> String {
        guard let at = url.firstIndex(of: "@"), let scheme = url.range(of: "://") else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}

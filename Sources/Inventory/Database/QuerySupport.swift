import Foundation

extension Inventory {
    static let findingColumns = "n.location, n.name, i.digest"

    /// `n` SQL placeholders for an IN list: `?, ?, ?`.
    static func marks(_ n: Int) -> String { n <= 0 ? "" : String(repeating: "?, ", count: n - 1) + "?" }

    static func chunks<T>(_ values: [T], size: Int = 1_000) -> [[T]] {
        stride(from: 0, to: values.count, by: size).map { Array(values[$0..<min($0 + size, values.count)]) }
    }
}

/// With CAIRN_QUERY_TRACE set, how long each step of a query took, on standard error.
struct QueryTrace {
    static let enabled = ProcessInfo.processInfo.environment["CAIRN_QUERY_TRACE"].map { !$0.isEmpty } ?? false
    let query: String
    var last = Date()

    init(_ query: String) { self.query = query }

    mutating func lap(_ step: String) {
        guard Self.enabled else { return }
        let now = Date()
        FileHandle.standardError.write(Data(String(format: "%@: %@ %.1f ms\n", query, step, now.timeIntervalSince(last) * 1000).utf8))
        last = now
    }
}

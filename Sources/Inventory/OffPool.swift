import Foundation

extension Inventory {
    /// The inventory's calls are synchronous: SQLite's, and PostgreSQL's, which wait on their
    /// event-loop futures. Async code calls them through here: `body` runs on a Dispatch thread,
    /// so a wait blocks that thread and never one of Swift concurrency's threads (as many as
    /// cores; the command's other tasks, registry transfers among them, need them).
    /// Every caller in async code does (the CLI's commands, the registry indexer, campaigns, the
    /// trust recorder); synchronous code (the store indexer) runs inside such a call.
    public func run<T: Sendable>(_ body: @escaping @Sendable (Inventory) throws -> T) async throws -> T {
        try await Self.offPool { try body(self) }
    }

    /// `open` from async code (connecting to PostgreSQL waits too).
    public static func opened(_ database: String?, defaultPath: String) async throws -> Inventory {
        try await offPool { try open(database, defaultPath: defaultPath) }
    }

    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
            DispatchQueue.global().async { done.resume(with: Result { try body() }) }
        }
    }
}

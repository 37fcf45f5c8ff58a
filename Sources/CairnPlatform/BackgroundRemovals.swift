import Foundation

/// Directories removed on another thread while the command goes on (a build's work directory
/// while the image is signed); `during` waits for them before it returns or throws, so nothing
/// is left behind.
public final class BackgroundRemovals: Sendable {
    let group = DispatchGroup()

    init() {}

    /// Runs `body` with a removal queue, then waits (without blocking a thread) for its removals.
    public static func during<T>(_ body: (BackgroundRemovals) async throws -> T) async throws -> T {
        let removals = BackgroundRemovals()
        do {
            let value = try await body(removals)
            await removals.finished()
            return value
        } catch {
            await removals.finished()
            throw error
        }
    }

    public func remove(_ path: String) {
        DispatchQueue.global().async(group: group) {
            Trace.step("removed in the background: \(path)") { try? FileManager.default.removeItem(atPath: path) }
        }
    }

    func finished() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in group.notify(queue: .global()) { done.resume() } }
    }
}

import FoundationEssentials
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// A one-line byte counter for the layers being written, on a terminal only (stdout is the log):
/// `writing layer 'x': 12 MiB`, or the sum over several layers written at once.
final class LayerProgress: @unchecked Sendable {
    static let onTerminal = isatty(1) == 1
    private let what: String
    private let lock = Lock()
    private var bytes: [Int64]
    private var last = Date.distantPast

    private init(_ what: String, parts: Int) {
        self.what = what
        bytes = Array(repeating: 0, count: parts)
    }

    /// A counter for `parts` layers named together as `what`; nil off a terminal.
    static func make(_ what: String, parts: Int = 1) -> LayerProgress? {
        onTerminal ? LayerProgress(what, parts: parts) : nil
    }

    /// The callback of part `i`, given that layer's bytes so far.
    func part(_ i: Int) -> @Sendable (Int64) -> Void {
        { n in self.update(i, n) }
    }

    private func update(_ i: Int, _ n: Int64) {
        let now = Date()
        lock.lock()
        bytes[i] = n
        guard now.timeIntervalSince(last) > 0.2 else { return lock.unlock() }
        last = now
        let total = bytes.reduce(0, +)
        lock.unlock()
        StandardStream.output.write("\r  writing \(what): \(total >> 20) MiB\u{1b}[K")
    }

    static func clear(_ progress: LayerProgress?) {
        if progress != nil { StandardStream.output.write("\r\u{1b}[K") }
    }
}

import FoundationEssentials
import Synchronization
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// A one-line byte counter for the layers being written, on a terminal only (stdout is the log):
/// `writing layer 'x': 12 MiB`, or the sum over several layers written at once.
final class LayerProgress: Sendable {
    static let onTerminal = isatty(1) == 1
    private let what: String
    /// Each part's bytes so far, and when the line was last drawn.
    private let state: Mutex<(bytes: [Int64], last: Date)>

    private init(_ what: String, parts: Int) {
        self.what = what
        state = Mutex((Array(repeating: 0, count: parts), Date.distantPast))
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
        let due = state.withLock { s -> Int64? in
            s.bytes[i] = n
            guard now.timeIntervalSince(s.last) > 0.2 else { return nil }
            s.last = now
            return s.bytes.reduce(0, +)
        }
        guard let total = due else { return }
        StandardStream.output.write("\r  writing \(what): \(total >> 20) MiB\u{1b}[K")
    }

    static func clear(_ progress: LayerProgress?) {
        if progress != nil { StandardStream.output.write("\r\u{1b}[K") }
    }
}

import Foundation
import Processes
import Testing

/// `concurrentMap`, the exporter's way to write several layers at once.
@Suite struct ConcurrentMapTests {
    /// Counts how many bodies run at the same moment.
    final class Gauge: @unchecked Sendable {
        private let lock = NSLock()
        private var now = 0
        private(set) var peak = 0
        private(set) var calls: [Int] = []
        func enter(_ i: Int) { lock.withLock { now += 1; peak = max(peak, now); calls.append(i) } }
        func leave() { lock.withLock { now -= 1 } }
    }

    @Test func resultsComeInIndexOrderAndEachIndexRunsOnce() {
        let gauge = Gauge()
        let results = concurrentMap(50, width: 4) { i in
            gauge.enter(i)
            usleep(UInt32((50 - i) * 200))  // later indices finish first
            gauge.leave()
            return i * i
        }
        #expect(results == (0..<50).map { $0 * $0 })
        #expect(gauge.calls.sorted() == Array(0..<50))
    }

    /// `count` bodies of `sleep` microseconds each on `width` threads, gauged.
    func gauged(_ count: Int, width: Int, sleep: UInt32) -> Gauge {
        let gauge = Gauge()
        _ = concurrentMap(count, width: width) { i in
            gauge.enter(i)
            usleep(sleep)
            gauge.leave()
            return i
        }
        return gauge
    }

    @Test func runsUpToWidthAtOnceAndNoMore() {
        let gauge = gauged(12, width: 3, sleep: 20_000)
        #expect((2...3).contains(gauge.peak), "peak \(gauge.peak)")  // 3 unless a thread started late on a busy machine
        let serial = gauged(5, width: 1, sleep: 5_000)
        #expect(serial.peak == 1)
        #expect(serial.calls == [0, 1, 2, 3, 4], "one writer takes them in order")
        #expect(concurrentMap(0, width: 4) { $0 }.isEmpty)
    }
}

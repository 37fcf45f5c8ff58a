#if canImport(Glibc)
import Glibc
#endif

// What the lifecycle's modules used Foundation's NSLock, NSCondition, Thread and FileHandle for,
// on pthreads and write(2): these modules link FoundationEssentials only, which keeps the static
// `lifecycle` that goes into every builder small (issue 18).

/// A mutual exclusion lock (pthread mutex).
public final class Lock: @unchecked Sendable {
    fileprivate let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A condition variable with its own lock: `lock()`, test, `wait()`, `unlock()`.
public final class Condition: @unchecked Sendable {
    private let mutex = Lock()
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() { pthread_cond_init(cond, nil) }

    deinit {
        pthread_cond_destroy(cond)
        cond.deallocate()
    }

    public func lock() { mutex.lock() }
    public func unlock() { mutex.unlock() }
    /// Waits for a signal; the lock must be held, and is held again on return.
    public func wait() { pthread_cond_wait(cond, mutex.mutex) }
    public func signal() { pthread_cond_signal(cond) }
    public func broadcast() { pthread_cond_broadcast(cond) }
}

/// Starts a detached thread running `body`.
public func startThread(stackSize: Int = 1 << 20, _ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setstacksize(&attributes, stackSize)
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, &attributes, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, context)
    precondition(rc == 0, "pthread_create failed: \(rc)")
}

/// `body(i)` for every `i` in `0..<count`, on up to `width` threads at once (this one and
/// `width - 1` started ones), each index taken once in order; returns when all are done, with
/// the results in index order.
public func concurrentMap<T: Sendable>(_ count: Int, width: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
    let work = ConcurrentWork<T>(count)
    let take: @Sendable () -> Int? = {
        work.done.lock()
        defer { work.done.unlock() }
        guard work.next < count else { return nil }
        work.next += 1
        return work.next - 1
    }
    let drain: @Sendable () -> Void = {
        while let i = take() {
            let r = body(i)
            work.done.lock()
            work.results[i] = r
            work.done.unlock()
        }
    }
    let helpers = max(0, min(width, count) - 1)
    work.running = helpers
    for _ in 0..<helpers {
        startThread(stackSize: 8 << 20) {
            drain()
            work.done.lock()
            work.running -= 1
            work.done.broadcast()
            work.done.unlock()
        }
    }
    drain()
    work.done.lock()
    while work.running > 0 { work.done.wait() }
    let results = work.results.map { $0! }
    work.done.unlock()
    return results
}

/// The shared state of `concurrentMap`, behind `done`'s lock.
private final class ConcurrentWork<T>: @unchecked Sendable {
    let done = Condition()
    var next = 0
    var running = 0
    var results: [T?]
    init(_ count: Int) { results = Array(repeating: nil, count: count) }
}

/// The standard streams, written whole with write(2) (retrying short writes and EINTR).
public enum StandardStream: Int32 {
    case output = 1, error = 2

    public func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(rawValue, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            offset += n
        }
    }
}

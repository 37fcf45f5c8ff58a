import FoundationEssentials
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Reads a byte range of a file as ByteBuffers, lazily (pull-based: memory stays at one buffer
/// per request however large the blob). `onBytes` sees each buffer's size as it is sent.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let offset: Int64
    let length: Int64
    let bufferSize: Int
    let onBytes: (@Sendable (Int) -> Void)?

    final class Descriptor: @unchecked Sendable {
        let fd: Int32
        init(path: String) throws {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw OCIError.io(operation: "open", path: path, errno: errno) }
        }
        deinit { close(fd) }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let file: Descriptor?
        let error: (any Error)?
        var position: Int64
        var remaining: Int64
        let bufferSize: Int
        let onBytes: (@Sendable (Int) -> Void)?
        let path: String

        mutating func next() async throws -> ByteBuffer? {
            if let error { throw error }
            guard remaining > 0, let file else { return nil }
            let want = Int(Swift.min(Int64(bufferSize), remaining))
            var buffer = ByteBufferAllocator().buffer(capacity: want)
            let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { raw in
                pread(file.fd, raw.baseAddress!, want, off_t(position))
            }
            if n <= 0 { throw OCIError.io(operation: "read", path: path, errno: n < 0 ? errno : EIO) }
            position += Int64(n)
            remaining -= Int64(n)
            onBytes?(n)
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        do {
            return AsyncIterator(file: try Descriptor(path: path), error: nil, position: offset, remaining: length,
                                 bufferSize: bufferSize, onBytes: onBytes, path: path)
        } catch {
            return AsyncIterator(file: nil, error: error, position: 0, remaining: 0, bufferSize: 0, onBytes: nil, path: path)
        }
    }
}

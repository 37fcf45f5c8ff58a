import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// What `verify` found.
public struct StoreReport: Sendable, Codable {
    /// Names in index.json.
    public var images = 0
    /// Blobs reached from the names and checked (existence, size, digest, parse).
    public var blobsChecked = 0
    /// What is wrong with what the names reach: each names the blob and the problem.
    public var problems: [String] = []
    /// Blobs no name reaches: garbage, or (without `repair`, which waits for them) the blobs of
    /// an operation in another process that has not named its image yet.
    public var orphans: [String] = []
    /// Partial files in the store's temp directory.
    public var tempFiles: [String] = []
    /// What `repair` removed (orphans and temp files).
    public var removed = 0

    public var isHealthy: Bool { problems.isEmpty }
}

extension ImageStore {
    /// Checks the store: every index entry resolves, every blob reached exists with the size and
    /// digest its descriptor gives, manifests, indexes and configs parse. With `repair`, removes
    /// only what is provably garbage — blobs nothing reaches and temp files — while holding the
    /// store's lock exclusively, so no write in progress (here or in another process) loses a blob.
    public func verify(repair: Bool) throws -> StoreReport {
        try gcLock.withLock(exclusive: repair) {
            var report = StoreReport()
            let entries = try index().manifests
            report.images = entries.count
            var reached = Set<Digest>()
            var queue = entries.map { ($0, "index.json entry \($0.annotations?[Annotation.refName] ?? $0.digest.description)") }
            while let (d, from) = queue.popLast() {
                guard reached.insert(d.digest).inserted else { continue }
                report.blobsChecked += 1
                if let problem = check(d) {
                    report.problems.append("\(from): \(problem)")
                    continue
                }
                queue += children(of: d, report: &report).map { ($0, "\(d.mediaType) \(d.digest)") }
            }
            let blobsRoot = root + "/blobs"
            var orphanPaths: [String] = []
            for algorithm in try FS.listDirectory(blobsRoot).sorted() {
                for encoded in try FS.listDirectory(blobsRoot + "/" + algorithm).sorted() {
                    let d = Digest("\(algorithm):\(encoded)")
                    if let d, reached.contains(d) { continue }
                    report.orphans.append(d?.description ?? "blobs/\(algorithm)/\(encoded)")
                    orphanPaths.append("\(blobsRoot)/\(algorithm)/\(encoded)")
                }
            }
            report.tempFiles = try FS.listDirectory(tempDirectory).sorted()
            if repair {
                for path in orphanPaths where unlink(path) == 0 { report.removed += 1 }
                for name in report.tempFiles where unlink(tempDirectory + "/" + name) == 0 { report.removed += 1 }
            }
            return report
        }
    }

    /// nil when the blob exists with the descriptor's size and digest; else what is wrong.
    func check(_ d: Descriptor) -> String? {
        let path = blobPath(d.digest)
        var st = stat()
        guard stat(path, &st) == 0 else { return "blob \(d.digest) is missing" }
        guard Int64(st.st_size) == d.size else { return "blob \(d.digest) has \(st.st_size) bytes, its descriptor says \(d.size)" }
        guard d.digest.algorithm == "sha256" else { return nil }
        guard let actual = try? Digest.sha256(file: path) else { return "blob \(d.digest) cannot be read" }
        return actual == d.digest ? nil : "blob \(d.digest) holds content whose digest is \(actual)"
    }

    /// The descriptors a manifest or index names (a manifest's config is parsed too).
    func children(of d: Descriptor, report: inout StoreReport) -> [Descriptor] {
        do {
            if MediaType.indexes.contains(d.mediaType) {
                return try CanonicalJSON.decode(ImageIndex.self, from: readBlob(d.digest), what: "index \(d.digest)").manifests
            }
            if MediaType.manifests.contains(d.mediaType) {
                let m = try CanonicalJSON.decode(Manifest.self, from: readBlob(d.digest), what: "manifest \(d.digest)")
                if check(m.config) == nil {
                    _ = try CanonicalJSON.decode(ImageConfig.self, from: readBlob(m.config.digest), what: "config \(m.config.digest)")
                }
                return [m.config] + m.layers + (m.subject.map { [$0] } ?? [])
            }
        } catch {
            report.problems.append("\(d.mediaType) \(d.digest) does not parse: \(error)")
        }
        return []
    }
}

extension Digest {
    /// The sha256 digest of a file's content, read in 1 MiB chunks.
    public static func sha256(file path: String) throws -> Digest {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw OCIError.io(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        var hasher = SHA256Hasher()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw OCIError.io(operation: "read", path: path, errno: errno) }
            if n == 0 { break }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
        }
        return Digest(sha256Bytes: hasher.finalize())
    }
}

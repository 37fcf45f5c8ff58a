import Foundation
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// Unpacked root filesystems of images, one per manifest digest, under `$CAIRN_HOME/rootfs`.
/// An image is unpacked once (into a temp directory, renamed into place when complete) and then
/// only read: builds mount it read-only, runs through a copy-on-write overlay.
public struct RootfsCache: Sendable {
    public let root: String

    public init(home: String) { root = home + "/rootfs" }

    /// The unpacked root of `image`, unpacking it first if needed. `mountPoints` are created in
    /// it (empty directories the sandbox binds over).
    public func rootfs(of image: StoredImage, in store: ImageStore, mountPoints: [String] = [],
                       log: (String) -> Void) throws -> String {
        let final = root + "/" + image.digest.encoded
        if FileManager.default.fileExists(atPath: final + "/.cairn-complete") {
            // Unpacked earlier, perhaps for a use with other mount points.
            for point in mountPoints where !FS.isDirectory(final + point) {
                try FileManager.default.createDirectory(atPath: final + point, withIntermediateDirectories: true)
            }
            return final
        }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        // One unpacker per image; others wait and then find it complete.
        let lock = try FileLock(path: root + "/.lock-" + image.digest.encoded)
        return try lock.withLock(exclusive: true) {
            if FileManager.default.fileExists(atPath: final + "/.cairn-complete") { return final }
            return try unpack(image, in: store, to: final, mountPoints: mountPoints, log: log)
        }
    }

    private func unpack(_ image: StoredImage, in store: ImageStore, to final: String, mountPoints: [String],
                        log: (String) -> Void) throws -> String {
        let temp = root + "/.tmp-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: temp) }
        let tree = temp + "/tree"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        log("Unpacking \(image.name ?? image.digest.description) (\(image.manifest.layers.count) layers)")
        for (i, layer) in image.manifest.layers.enumerated() {
            _ = try LayerExtractor.apply(blobPath: store.blobPath(layer.digest), to: tree, layerName: "layer \(i + 1) \(layer.digest.short)")
        }
        for point in mountPoints {
            try FileManager.default.createDirectory(atPath: tree + point, withIntermediateDirectories: true)
        }
        FileManager.default.createFile(atPath: tree + "/.cairn-complete", contents: Data(image.digest.description.utf8))
        try? FileManager.default.removeItem(atPath: final)
        guard rename(tree, final) == 0 else {
            throw PlatformError.io(operation: "move an unpacked image into", path: final, reason: String(cString: strerror(errno)))
        }
        return final
    }
}

/// `$CAIRN_HOME`, defaulting to `~/.local/share/cairn` (as the store's default).
public func cairnHome(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
    ImageStore.defaultHome(environment: environment)
}

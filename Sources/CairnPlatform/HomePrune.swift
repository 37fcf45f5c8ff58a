import Foundation
import OCI

/// What `cairn prune` removes beside the store's unreachable blobs, under `$CAIRN_HOME`:
/// unpacked roots (`rootfs/<digest>`) of images no name reaches any more, build caches
/// (`cache/<image>`) and kept workspaces (`workspaces/<image>`) of images no longer in the store
/// (all of them with `allCaches`), and work
/// directories killed builds left (`builds/`, `extend/`; `run/` entries not mounted). It runs
/// under the store's exclusive lock, so no build is using any of them.
public struct HomePrune: Sendable {
    public struct Result: Sendable {
        public var roots = 0, caches = 0, workspaces = 0, workDirectories = 0
        public var freedBytes: Int64 = 0
        public init() {}
    }

    public let home: String
    public var allCaches = false

    public init(home: String, allCaches: Bool = false) {
        self.home = home
        self.allCaches = allCaches
    }

    /// The build cache directory of an image name as `cairn build` was given it.
    public static func cacheName(_ image: String) -> String {
        image.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }.map(String.init).joined()
    }

    /// What $CAIRN_HOME keeps beside the store, by kind.
    public enum Kind: String, CaseIterable, Sendable {
        case roots = "unpacked roots", caches = "build caches", workspaces = "kept workspaces", workDirectories = "work directories"
        /// Where entries of this kind live under the home.
        public var directories: [String] {
            switch self {
            case .roots: ["rootfs"]
            case .caches: ["cache"]
            case .workspaces: ["workspaces"]
            case .workDirectories: ["builds", "extend", "run"]
            }
        }
    }

    /// Whether another process holds the flock on `path` (a kept workspace's lock).
    static func isLocked(_ path: String) -> Bool {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_EX | LOCK_NB) != 0
    }

    /// Every entry of each kind under the home, and whether prune would remove it (`stale`).
    public func entries(reachable: Set<Digest>, names: [String]) -> [(kind: Kind, path: String, stale: Bool)] {
        let mounted = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        var found: [(kind: Kind, path: String, stale: Bool)] = []
        let rootfs = home + "/rootfs"
        for entry in (try? FS.listDirectory(rootfs)) ?? [] where !entry.hasPrefix(".lock-") {
            // `.tmp-*`: an unpack that was killed (an unpack in progress holds the store lock).
            let keep = !entry.hasPrefix(".tmp-") && (reachable.contains { $0.encoded == entry } || mounted.contains(rootfs + "/" + entry))
            found.append((.roots, rootfs + "/" + entry, !keep))
        }
        // Build caches are named as the build was asked: `app` or `app:latest` for one image.
        var wanted = Set<String>()
        for name in names {
            wanted.insert(Self.cacheName(name))
            if name.hasSuffix(":latest") { wanted.insert(Self.cacheName(String(name.dropLast(7)))) }
        }
        for entry in (try? FS.listDirectory(home + "/cache")) ?? [] {
            found.append((.caches, home + "/cache/" + entry, allCaches || !wanted.contains(entry)))
        }
        // A kept workspace a build holds (its lock) stays.
        for entry in (try? FS.listDirectory(home + "/workspaces")) ?? [] {
            let path = home + "/workspaces/" + entry
            found.append((.workspaces, path, (allCaches || !wanted.contains(entry)) && !Self.isLocked(path + "/lock")))
        }
        // What `audit index` and campaigns read from registries (configs, SBOM layers): only
        // re-read for images the inventory does not know yet, so it goes with --all-caches.
        if FS.isDirectory(home + "/audit-cache") { found.append((.caches, home + "/audit-cache", allCaches)) }
        for dir in Kind.workDirectories.directories {
            for entry in (try? FS.listDirectory(home + "/" + dir)) ?? [] {
                found.append((.workDirectories, home + "/" + dir + "/" + entry, !mounted.contains(home + "/" + dir + "/" + entry)))
            }
        }
        return found
    }

    public func prune(reachable: Set<Digest>, names: [String]) throws -> Result {
        var result = Result()
        for (kind, path, stale) in entries(reachable: reachable, names: names) where stale {
            switch kind {
            case .roots: try remove(path, counting: &result.roots, &result.freedBytes)
            case .caches: try remove(path, counting: &result.caches, &result.freedBytes)
            case .workspaces: try remove(path, counting: &result.workspaces, &result.freedBytes)
            case .workDirectories: try remove(path, counting: &result.workDirectories, &result.freedBytes)
            }
        }
        return result
    }

    private func remove(_ path: String, counting count: inout Int, _ freed: inout Int64) throws {
        freed += Self.size(of: path)
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw PlatformError.io(operation: "remove", path: path, reason: "\(error)")
        }
        count += 1
    }

    public static func size(of path: String) -> Int64 {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return 0 }
        if attributes[.type] as? FileAttributeType == .typeRegular { return (attributes[.size] as? NSNumber)?.int64Value ?? 0 }
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total: Int64 = 0
        while let next = walker.nextObject() as? String {
            if let attributes = walker.fileAttributes, attributes[.type] as? FileAttributeType == .typeRegular {
                total += (attributes[.size] as? NSNumber)?.int64Value ?? 0
            }
            _ = next
        }
        return total
    }
}

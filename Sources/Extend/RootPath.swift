import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// Paths inside an image's root filesystem, resolved the way the image would see them: symbolic
/// links are followed relative to the root, and `..` never leaves it.
struct RootPath {
    let root: String

    /// The host path of `path` (absolute in the image), its parents' symlinks resolved inside the
    /// root; the last component is not followed when `followLast` is false.
    func resolve(_ path: String, followLast: Bool = true) -> String {
        var resolved: [String] = []
        var pending = path.split(separator: "/").map(String.init)
        var hops = 0
        while !pending.isEmpty {
            let c = pending.removeFirst()
            if c == "." || c.isEmpty { continue }
            if c == ".." { _ = resolved.popLast(); continue }
            let candidate = root + "/" + (resolved + [c]).joined(separator: "/")
            if (followLast || !pending.isEmpty), hops < 40,
               let target = try? FileManager.default.destinationOfSymbolicLink(atPath: candidate) {
                hops += 1
                if target.hasPrefix("/") { resolved = [] }
                pending = target.split(separator: "/").map(String.init) + pending
                continue
            }
            resolved.append(c)
        }
        return root + "/" + resolved.joined(separator: "/")
    }

    /// A user (`name` or number) and optional group (`name` or number) as numbers, from the
    /// image's `/etc/passwd` and `/etc/group`. A user without a group gets its primary group.
    func ids(user spec: String) throws(ExtendError) -> (uid: Int, gid: Int) {
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        guard let user = parts.first, !user.isEmpty else { throw .syntax("empty user") }
        let passwd = entries("/etc/passwd")
        var uid = Int(user)
        var primary: Int?
        if let entry = passwd.first(where: { $0[0] == user || (uid != nil && $0.count > 2 && Int($0[2]) == uid) }), entry.count > 3 {
            uid = Int(entry[2])
            primary = Int(entry[3])
        }
        guard let uid else { throw .syntax("user \"\(user)\" is not in the image's /etc/passwd") }
        if parts.count == 2 {
            if let g = Int(parts[1]) { return (uid, g) }
            guard let entry = entries("/etc/group").first(where: { $0[0] == parts[1] }), entry.count > 2, let g = Int(entry[2]) else {
                throw .syntax("group \"\(parts[1])\" is not in the image's /etc/group")
            }
            return (uid, g)
        }
        return (uid, primary ?? 0)
    }

    private func entries(_ file: String) -> [[String]] {
        guard let text = try? String(contentsOfFile: resolve(file), encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
    }
}

import Foundation
import Synchronization
import OCI

/// What a run image rebase does to the packages dpkg records in the run image layers: a rebase
/// that removes a package the app may use is refused unless forced (`cairn rebase`).
public struct PackageDiff: Codable, Hashable, Sendable {
    public struct Change: Codable, Hashable, Sendable {
        public var name: String
        public var from: String?
        public var to: String?
    }

    public var added: [Change] = []
    public var removed: [Change] = []
    public var changed: [Change] = []

    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty }

    /// One line per package: `+ name version`, `- name version`, `~ name old -> new`.
    public var lines: [String] {
        added.map { "+ \($0.name) \($0.to ?? "")" } + removed.map { "- \($0.name) \($0.from ?? "")" }
            + changed.map { "~ \($0.name) \($0.from ?? "?") -> \($0.to ?? "?")" }
    }

    /// The packages of the old and the new run image layers compared; nil when either has no
    /// package list (no dpkg status) or a layer is not in the store (a metadata-only pull).
    public static func runImages(store: ImageStore, old: [Descriptor], new: [Descriptor], lists: PackageLists = PackageLists()) throws -> PackageDiff? {
        guard old.map(\.digest) != new.map(\.digest) else { return PackageDiff() }
        guard (old + new).allSatisfy({ store.hasBlob($0.digest) }) else { return nil }
        let before = try lists.packages(in: old, store: store), after = try lists.packages(in: new, store: store)
        guard !before.isEmpty, !after.isEmpty else { return nil }
        let was = Dictionary(before.map { ($0.name, $0.version) }, uniquingKeysWith: { first, _ in first })
        let now = Dictionary(after.map { ($0.name, $0.version) }, uniquingKeysWith: { first, _ in first })
        var diff = PackageDiff()
        for name in now.keys.sorted() {
            guard let old = was[name] else {
                diff.added.append(Change(name: name, from: nil, to: now[name] ?? nil))
                continue
            }
            if old != now[name] ?? nil { diff.changed.append(Change(name: name, from: old, to: now[name] ?? nil)) }
        }
        for name in was.keys.sorted() where now[name] == nil {
            diff.removed.append(Change(name: name, from: was[name] ?? nil, to: nil))
        }
        return diff
    }
}

/// The package lists of run image layer stacks already read, shared by the rebases of one
/// command: a fleet on one run image reads its layers once.
public final class PackageLists: Sendable {
    private let known = Mutex<[[Digest]: [SBOMDocument.Component]]>([:])

    public init() {}

    func packages(in layers: [Descriptor], store: ImageStore) throws -> [SBOMDocument.Component] {
        let key = layers.map(\.digest)
        if let found = known.withLock({ $0[key] }) { return found }
        var reader = DpkgStatusReader(store: store)
        let packages = try reader.packages(in: layers)
        known.withLock { $0[key] = packages }
        return packages
    }
}

import CairnBasics
import FoundationEssentials

extension ImageStore {
    /// `$CAIRN_HOME`, defaulting to `~/.local/share/cairn`: the store and Cairn's caches live there.
    public static func defaultHome(environment: [String: String]) -> String {
        if let home = environment["CAIRN_HOME"], !home.isEmpty { return home }
        return (environment["HOME"] ?? "/root") + "/.local/share/cairn"
    }

    /// The default store: `$CAIRN_HOME/store`.
    public static func defaultRoot(environment: [String: String]) -> String {
        defaultHome(environment: environment) + "/store"
    }

    /// Records several names in one update of the index, like `tag`, and in the same update
    /// removes the artifact names of each manifest a name moved away from, when nothing else in
    /// the index reaches that manifest any more: the names `prune` would remove first (see
    /// `prune`'s `subjectOf`). `artifactSubject` says which names are artifacts about another
    /// manifest (cosign's `sha256-<hex>.sig`: that digest).
    ///
    /// Without it, an image rebuilt and signed again and again leaves two stale names per build
    /// in index.json until the next `prune`, and every later index update (of any command)
    /// reads and rewrites them. The blobs stay until `prune`, as after `remove`.
    func tag(_ entries: [(descriptor: Descriptor, reference: String)], retiring artifactSubject: (String) -> Digest?) throws {
        let made = try entries.map { try Self.indexEntry($0.descriptor, as: $0.reference) }
        let name = { (d: Descriptor) in d.annotations?[Annotation.refName] ?? "" }
        let names = Set(made.map(name))
        try updateIndex { index in
            let left = Set(index.manifests.filter { names.contains(name($0)) && artifactSubject(name($0)) == nil }.map(\.digest))
            index.manifests.removeAll { names.contains(name($0)) }
            index.manifests += made
            let holders = index.manifests.filter { artifactSubject(name($0)) == nil }
            var orphans = left.subtracting(holders.map(\.digest))
            orphans.formIntersection(index.manifests.compactMap { artifactSubject(name($0)) })
            guard !orphans.isEmpty else { return }
            orphans.subtract(try reached(orphans, from: holders))
            index.manifests.removeAll { artifactSubject(name($0)).map(orphans.contains) ?? false }
        }
    }

    /// Which of `digests` the entries reach as `reachableDigests` counts it (an index's
    /// manifests, a manifest's subject). Only indexes and manifests whose bytes name one of the
    /// digests are decoded: a store of plain images is a file read per name, not a decode.
    private func reached(_ digests: Set<Digest>, from entries: [Descriptor]) throws -> Set<Digest> {
        let needles = digests.map { Array($0.encoded.utf8) }
        let candidates = try entries.filter { entry in
            if MediaType.indexes.contains(entry.mediaType) { return true }
            guard MediaType.manifests.contains(entry.mediaType), hasBlob(entry.digest) else { return false }
            let data = try readBlob(entry.digest)
            return data.withUnsafeBytes { bytes in
                needles.contains { CairnBasics.bytes(bytes, contain: $0) }
            }
        }
        return candidates.isEmpty ? [] : try reachableDigests(from: candidates).intersection(digests)
    }
}

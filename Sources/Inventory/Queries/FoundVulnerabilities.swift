import Foundation

/// Findings by image id before their names are known: hits of an image, an affected package
/// version and a source, each an index. Sorted once, by integer ranks of the distinct texts
/// (bytewise, absent first) packed into one word, rather than by comparing strings per pair.
struct FoundVulnerabilities {
    struct Hit {
        var image: Int64
        var affected: Int32
        var source: Int32
    }

    var affected: [Inventory.Affected] = []
    var sourceTable = SourceTable()
    var hits: [Hit] = []

    var sources: [Finding.Source] { sourceTable.sources }

    mutating func add(_ a: Inventory.Affected) -> Int32 {
        affected.append(a)
        return Int32(affected.count - 1)
    }

    /// Entries for advisories of a distribution release on run images whose release is not
    /// known, by advisory, package and version: one `unknown` entry each, made once.
    var releaseUnknownOf: [String: Int32] = [:]

    /// `a` as unknown: its advisory names a distribution release and the run image's is not known.
    mutating func releaseUnknown(_ a: Int32) -> Int32 {
        let m = affected[Int(a)].matter
        let key = [m.advisory, m.ecosystem, m.package, m.version].map { $0 ?? "" }.joined(separator: "\u{0}")
        if let known = releaseUnknownOf[key] { return known }
        let why = "the run image's distribution release is not known (no io.buildpacks.base.distro.version label, no os-release): "
            + "whether this \(m.ecosystem ?? "") advisory for release \(affected[Int(a)].release) applies cannot be told"
        let made = add(Inventory.Affected(matter: Finding.Matter(advisory: m.advisory, severity: m.severity, ecosystem: m.ecosystem,
                                                                  package: m.package, version: m.version, fixed: "", unknown: why,
                                                                  kev: m.kev, epss: m.epss), release: ""))
        releaseUnknownOf[key] = made
        return made
    }

    /// The index of a buildpack layer's or a run image's source, made once.
    mutating func source(buildpack: String? = nil, layer: String? = nil, runImage: String? = nil) -> Int32 {
        sourceTable.number(buildpack: buildpack, layer: layer, runImage: runImage)
    }

    /// The findings in order. Each is keyed by its image name's rank and the ranks of what it
    /// shows (advisory and package, source, affected version), packed into 64 bits and radix
    /// sorted: the findings of a fleet are hundreds of thousands, and the comparison sort and the
    /// counting sort before this one spent most of their time on cache misses. `packedBits` below
    /// what the ranks need takes the comparison path (tests; and fleets whose ranks need more).
    func findings(names: RankedNames, packedBits: Int = 64) -> [Finding] {
        let sources = self.sources
        // Ranks of the distinct values, each made once: (advisory, package) pairs, sources
        // (buildpack, layer, run image; run images first), affected package versions (the rest of
        // what is shown, so that equal keys are equal findings).
        let affectedRank = Self.ranks(of: affected) { a, b in
            let x = a.matter, y = b.matter
            return Self.bytewise(x.advisory ?? "", y.advisory ?? "") ?? Self.bytewise(x.package ?? "", y.package ?? "")
                ?? Self.bytewise(x.ecosystem ?? "", y.ecosystem ?? "") ?? Self.bytewise(x.version ?? "", y.version ?? "")
                ?? Self.bytewise(x.fixed ?? "", y.fixed ?? "") ?? Self.bytewise(x.severity ?? "", y.severity ?? "") ?? false
        }
        let pairRank = Self.ranks(of: affected) { a, b in
            Self.bytewise(a.matter.advisory ?? "", b.matter.advisory ?? "") ?? Self.bytewise(a.matter.package ?? "", b.matter.package ?? "") ?? false
        }
        let sourceRank = Self.ranks(of: sources) { a, b in
            Self.bytewise(a.buildpack, b.buildpack) ?? Self.bytewise(a.layer, b.layer) ?? Self.bytewise(a.runImage, b.runImage) ?? false
        }
        // Per affected version and source, the low part of the key, made once.
        let widths = (name: Self.bitWidth(names.subjects.count), pair: Self.bitWidth(affected.count),
                      source: Self.bitWidth(sources.count), affected: Self.bitWidth(affected.count))
        let packed = widths.name + widths.pair + widths.source + widths.affected <= packedBits
        let affectedKey = affected.indices.map { UInt64(pairRank[$0]) << (widths.source + widths.affected) | UInt64(affectedRank[$0]) }
        func key(rank: Int32, _ h: Hit) -> UInt64 {
            UInt64(rank) << (widths.pair + widths.source + widths.affected)
                | affectedKey[Int(h.affected)] | UInt64(sourceRank[Int(h.source)]) << widths.affected
        }

        var keyed: [(key: UInt64, hit: UInt32)] = []
        keyed.reserveCapacity(hits.count)
        var rankOf: [(key: UInt64, hit: UInt32)] = []
        for (i, h) in hits.enumerated() {
            names.forEachRank(of: h.image) { rank in
                keyed.append((packed ? key(rank: rank, h) : 0, UInt32(i)))
                if !packed { rankOf.append((UInt64(rank), UInt32(i))) }
            }
        }
        if packed {
            Self.radixSort(&keyed, bits: widths.name + widths.pair + widths.source + widths.affected)
        } else {
            func fields(_ e: (key: UInt64, hit: UInt32)) -> (UInt64, Int, Int, Int) {
                let h = hits[Int(e.hit)], a = Int(h.affected)
                return (e.key, pairRank[a], sourceRank[Int(h.source)], affectedRank[a])
            }
            keyed = rankOf.sorted { fields($0) < fields($1) }
            return keyed.map { e in
                let h = hits[Int(e.hit)]
                return Finding(names.subjects[Int(e.key)], affected[Int(h.affected)].matter, sources[Int(h.source)])
            }
        }
        let shift = widths.pair + widths.source + widths.affected
        return keyed.map { e in
            let h = hits[Int(e.hit)]
            return Finding(names.subjects[Int(e.key >> shift)], affected[Int(h.affected)].matter, sources[Int(h.source)])
        }
    }

    /// Sorts by the low `bits` bits of the key, least significant 11-bit digit first (stable).
    static func radixSort(_ items: inout [(key: UInt64, hit: UInt32)], bits: Int) {
        let digit = 11, buckets = 1 << 11
        var other = items
        var shift = 0
        while shift < bits {
            var count = [Int](repeating: 0, count: buckets + 1)
            for e in items { count[Int((e.key >> UInt64(shift)) & UInt64(buckets - 1)) + 1] += 1 }
            for b in 0..<buckets { count[b + 1] += count[b] }
            for e in items {
                let b = Int((e.key >> UInt64(shift)) & UInt64(buckets - 1))
                other[count[b]] = e
                count[b] += 1
            }
            swap(&items, &other)
            shift += digit
        }
    }

    /// Bits for values 0...n.
    static func bitWidth(_ n: Int) -> Int { max(1, Int.bitWidth - n.leadingZeroBitCount) }

    /// nil when equal, else whether `a` sorts first (bytewise; nil first).
    static func bytewise(_ a: String?, _ b: String?) -> Bool? {
        switch (a, b) {
        case (nil, nil): return nil
        case (nil, _): return true
        case (_, nil): return false
        case (var a?, var b?):
            // memcmp over the UTF-8 bytes in place: the generic `lexicographicallyPrecedes` of
            // the UTF-8 views walked index by index and made sorting 10,000 image names most of a
            // 10,000-finding query.
            let order = a.withUTF8 { x in
                b.withUTF8 { y -> Int in
                    let common = min(x.count, y.count)
                    let c = common == 0 ? 0 : Int(memcmp(x.baseAddress!, y.baseAddress!, common))
                    return c != 0 ? c : x.count - y.count
                }
            }
            return order == 0 ? nil : order < 0
        }
    }

    /// Each element's rank in the order `less` gives; equal elements share a rank.
    static func ranks<T>(of values: [T], by less: (T, T) -> Bool) -> [Int] {
        let order = values.indices.sorted { less(values[$0], values[$1]) }
        var rank = [Int](repeating: 0, count: values.count)
        var current = 0
        for (position, i) in order.enumerated() {
            if position > 0 && less(values[order[position - 1]], values[i]) { current += 1 }
            rank[i] = current
        }
        return rank
    }
}

/// Sources made once per buildpack layer or run image, shared by the findings they brought, and
/// numbered in the order they were first asked for.
struct SourceTable {
    struct Key: Hashable {
        var buildpack, layer, runImage: String?
    }

    private(set) var sources: [Finding.Source] = []
    private var index: [Key: Int32] = [:]
    private var last: (key: Key, index: Int32)?

    /// The number of a buildpack layer's or a run image's source.
    mutating func number(buildpack: String? = nil, layer: String? = nil, runImage: String? = nil) -> Int32 {
        let key = Key(buildpack: buildpack, layer: layer, runImage: runImage)
        // Rows of one package mostly come from one layer: the last source is checked before hashing.
        if let last, last.key == key { return last.index }
        let i = index[key] ?? {
            sources.append(Finding.Source(buildpack: buildpack, layer: layer, runImage: runImage))
            index[key] = Int32(sources.count - 1)
            return Int32(sources.count - 1)
        }()
        last = (key, i)
        return i
    }
}

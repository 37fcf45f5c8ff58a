import ArgumentParser
import CairnPlatform
import Foundation
import OCI

struct SystemCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system", abstract: "Where Cairn's disk space goes.", subcommands: [DiskUsage.self])
}

/// `cairn system df`: the store's blobs, and what $CAIRN_HOME keeps beside it, with what
/// `cairn prune` would free (as `docker system df`).
struct DiskUsage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "df",
        abstract: "Show the space the store, unpacked roots, build caches, kept workspaces and work directories take, and what `cairn prune` would free.",
        discussion: "Examples:\n  cairn system df\n  cairn system df --format json")

    @Option(help: "table or json (an array of rows: type, count, bytes, reclaimableBytes).") var format: OutputFormat = .table
    @OptionGroup var storeOptions: StoreOptions

    struct Row {
        var type: String
        var count: Int
        var bytes: Int64
        var reclaimable: Int64?
    }

    func run() async throws {
        try await reportingErrors {
            let store = try storeOptions.open()
            let home = cairnHome()
            // Under the store's shared lock: a prune does not remove what is being counted.
            let rows = try store.writing { _ in try usage(store: store, home: home) }
            if format == .json {
                return try printJSON(rows.map { r -> [String: Any] in
                    var row: [String: Any] = ["type": r.type, "count": r.count, "bytes": r.bytes]
                    if let reclaimable = r.reclaimable { row["reclaimableBytes"] = reclaimable }
                    return row
                })
            }
            print("TYPE".padding(toLength: 20, withPad: " ", startingAt: 0) + "COUNT".padding(toLength: 8, withPad: " ", startingAt: 0)
                  + "SIZE".padding(toLength: 12, withPad: " ", startingAt: 0) + "RECLAIMABLE")
            for r in rows {
                print(r.type.padding(toLength: 20, withPad: " ", startingAt: 0) + String(r.count).padding(toLength: 8, withPad: " ", startingAt: 0)
                      + formatBytes(r.bytes).padding(toLength: 12, withPad: " ", startingAt: 0) + (r.reclaimable.map(formatBytes) ?? "-"))
            }
        }
    }

    func usage(store: ImageStore, home: String) throws -> [Row] {
        let reachable = try store.reachableDigests()
        // Images: the names; their size and what prune frees are the store's blobs.
        var blobs = Row(type: "images (store)", count: 0, bytes: 0, reclaimable: 0)
        let blobsRoot = store.root + "/blobs"
        for algorithm in (try? FS.listDirectory(blobsRoot)) ?? [] {
            for encoded in (try? FS.listDirectory(blobsRoot + "/" + algorithm)) ?? [] {
                let size = HomePrune.size(of: "\(blobsRoot)/\(algorithm)/\(encoded)")
                blobs.bytes += size
                if let d = Digest("\(algorithm):\(encoded)"), !reachable.contains(d) { blobs.reclaimable! += size }
            }
        }
        let names = try store.images().map(\.name)
        blobs.count = names.count
        var rows = [blobs]
        let entries = HomePrune(home: home).entries(reachable: reachable, names: names)
        for kind in HomePrune.Kind.allCases {
            var row = Row(type: kind.rawValue, count: 0, bytes: 0, reclaimable: 0)
            for entry in entries where entry.kind == kind {
                let size = HomePrune.size(of: entry.path)
                row.count += 1
                row.bytes += size
                if entry.stale { row.reclaimable! += size }
            }
            rows.append(row)
        }
        // The rest of the home: the audit inventory, campaign journals, keys, the config.
        let counted = Set(HomePrune.Kind.allCases.flatMap(\.directories) + ["audit-cache"])
        var other = Row(type: "other", count: 0, bytes: 0, reclaimable: nil)
        for entry in (try? FS.listDirectory(home)) ?? [] where !counted.contains(entry) && home + "/" + entry != store.root {
            other.count += 1
            other.bytes += HomePrune.size(of: home + "/" + entry)
        }
        rows.append(other)
        return rows
    }
}

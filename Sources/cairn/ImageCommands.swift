import ArgumentParser
import Foundation
import OCI
import Trust
import CairnPlatform

struct Images: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "images", abstract: "List the images in the store.")

    @Option(help: "Output format: table or json.")
    var format: OutputFormat = .table

    @Flag(help: "Also list signature and attestation artifacts (the sha256-<hex>.sig and .att tags).") var all = false

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let store = try storeOptions.open()
            var rows: [(name: String, image: StoredImage)] = []
            for (name, descriptor) in try store.images() where all || !Cosign.isArtifactName(name) {
                rows.append((name, try store.load(descriptor, name: name)))
            }
            switch format {
            case .json:
                try printJSON(rows.map { row -> [String: Any] in
                    [
                        "name": row.name,
                        "digest": row.image.digest.description,
                        "size": row.image.totalSize,
                        "created": row.image.config.created ?? "",
                        "platform": row.image.config.platform.description,
                        "layers": row.image.manifest.layers.count,
                    ]
                })
            case .table:
                var lines = [["NAME", "DIGEST", "CREATED", "PLATFORM", "LAYERS", "SIZE"]]
                for row in rows {
                    lines.append([row.name, row.image.digest.short, row.image.config.created ?? "-",
                                  row.image.config.platform.description, String(row.image.manifest.layers.count),
                                  formatBytes(row.image.totalSize)])
                }
                let widths = (0..<lines[0].count).map { c in lines.map { $0[c].count }.max() ?? 0 }
                for line in lines {
                    print(zip(line, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
                        .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
                }
            }
        }
    }
}

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show an image's manifest, config, layers and labels.",
        discussion: "Examples:\n  cairn inspect myapp\n  cairn inspect myapp@sha256:… --format json\n  cairn inspect --remote registry.example.com/team/app:1.2")

    @Argument(help: "Image name, name@digest, or manifest digest.")
    var reference: String
    @Flag(help: "Read the image from its registry (manifest and config only) instead of the store.") var remote = false
    @OptionGroup var registry: RegistryOptions

    @Option(help: "Output format: table or json.")
    var format: OutputFormat = .table

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            if remote { return try await withRemoteImage(reference, registry: registry) { image, _ in try show(image) } }
            try show(try storeOptions.open().resolve(reference))
        }
    }

    func show(_ image: StoredImage) throws {
        switch format {
        case .json:
            var object: [String: Any] = [
                "name": image.name ?? NSNull(),
                "digest": image.digest.description,
                "mediaType": image.descriptor.mediaType,
                "size": image.totalSize,
                "manifest": try JSONSerialization.jsonObject(with: image.manifestData),
                "config": try JSONSerialization.jsonObject(with: image.configData),
            ]
            // The summary the table shows, for scripts: what a buildpacks image is made of.
            if let app = AppImageSummary(image) {
                object["buildpacksImage"] = [
                    "runImage": app.runImage ?? NSNull(), "runImageReference": app.runImageReference ?? NSNull(),
                    "rebasable": app.rebasable.map { $0 == "true" } ?? NSNull(),
                    "buildpacks": app.buildpacks.map { ["id": $0.id, "version": $0.version] },
                    "processes": app.processes.map { ["type": $0.type, "command": $0.command, "default": $0.isDefault] as [String: Any] },
                    "layers": image.config.rootfs.diffIDs.map { ["diffID": $0.description, "role": app.layerRoles[$0] ?? "other"] },
                ] as [String: Any]
            }
            try printJSON(object)
        case .table:
            printHuman(image)
        }
    }

    func printHuman(_ image: StoredImage) {
        let c = image.config
        let e = c.config ?? ExecutionConfig()
        func field(_ k: String, _ v: String?) { if let v, !v.isEmpty { print("\(k.padding(toLength: 12, withPad: " ", startingAt: 0))\(v)") } }
        field("Name:", image.name)
        field("Digest:", image.digest.description)
        field("Media type:", image.descriptor.mediaType)
        field("Platform:", c.platform.description)
        field("Created:", c.created)
        field("Size:", formatBytes(image.totalSize))
        field("User:", e.user)
        field("WorkingDir:", e.workingDir)
        field("Entrypoint:", e.entrypoint.map { $0.description })
        field("Cmd:", e.cmd.map { $0.description })
        field("Ports:", e.exposedPorts.map { $0.keys.sorted().joined(separator: ", ") })
        if let env = e.env, !env.isEmpty {
            print("Env:")
            for v in env { print("  \(v)") }
        }
        if let labels = e.labels, !labels.isEmpty {
            print("Labels:")
            for (k, v) in labels.sorted(by: { $0.key < $1.key }) {
                let shown = v.count > 100 ? String(v.prefix(97)) + "..." : v
                print("  \(k)=\(shown)")
            }
        }
        let app = AppImageSummary(image)
        if let app {
            print("Buildpacks app image:")
            func sub(_ k: String, _ v: String?) { if let v, !v.isEmpty { print("  " + k.padding(toLength: 12, withPad: " ", startingAt: 0) + v) } }
            sub("Run image:", app.runImage.map { $0 + (app.runImageReference.map { " (\($0))" } ?? "") })
            sub("Rebasable:", app.rebasable)
            sub("Buildpacks:", app.buildpacks.map { "\($0.id)@\($0.version)" }.joined(separator: ", "))
            for p in app.processes { print("  Process \(p.type)\(p.isDefault ? " (default)" : ""): \(p.command)") }
        }
        print("Layers (\(image.manifest.layers.count)):")
        for (i, layer) in image.manifest.layers.enumerated() {
            let diffID = i < c.rootfs.diffIDs.count ? c.rootfs.diffIDs[i] : nil
            let kind = MediaType.layerCompression(layer.mediaType)?.rawValue ?? layer.mediaType
            let role = diffID.flatMap { app?.layerRoles[$0] }.map { "  " + $0 } ?? ""
            print("  \(String(i + 1).padding(toLength: 3, withPad: " ", startingAt: 0)) \(layer.digest.short)  diff \(diffID?.short ?? "?")  \(formatBytes(layer.size).padding(toLength: 10, withPad: " ", startingAt: 0)) \(kind)\(role)")
        }
    }
}

struct Rmi: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rmi", abstract: "Remove image names from the store (blobs go with `cairn prune`).")

    @Argument(help: "Image names to remove.")
    var references: [String]

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let store = try storeOptions.open()
            for reference in references {
                let removed = try store.remove(reference)
                print("Untagged \(try ImageStore.storedName(reference)) (\(removed.digest))")
            }
        }
    }
}

struct Prune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove blobs no image in the store uses, and what $CAIRN_HOME keeps for images that are gone: unpacked roots, build caches, kept workspaces, work directories of killed builds.",
        discussion: "Examples:\n  cairn system df   (what prune would free)\n  cairn prune\n  cairn prune --all-caches")

    @Flag(name: .customLong("all-caches"), help: "Also remove the build caches and kept workspaces of images still in the store (the next build of each starts cold) and the registry blobs `audit index` keeps.")
    var allCaches = false
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let store = try storeOptions.open()
            var home = HomePrune.Result()
            // A manifest a fleet campaign moved a name from is kept while its journal is there.
            let blobs = try store.prune(subjectOf: Cosign.subject(ofStoredName:), holds: { FileManager.default.fileExists(atPath: $0 + "/" + CampaignJournal.journalFile) }) { reachable in
                // Names read under the lock: an image a build just finished keeps its cache.
                let names = try store.images().map(\.name)
                home = try HomePrune(home: cairnHome(), allCaches: allCaches).prune(reachable: reachable, names: names)
            }
            print("Removed \(blobs.removedBlobs) blobs, freed \(formatBytes(blobs.freedBytes))")
            if blobs.removedNames > 0 { print("Removed \(blobs.removedNames) signature and attestation names of images no name reaches any more") }
            print("Removed \(home.roots) unpacked roots, \(home.caches) build caches, \(home.workspaces) kept workspaces, \(home.workDirectories) work directories, freed \(formatBytes(home.freedBytes))")
        }
    }
}

struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "store", abstract: "Check the image store.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Check that every name resolves and every blob it reaches is there, intact and parseable.",
            discussion: """
                Reports problems (missing or corrupt blobs, unparseable manifests and configs), orphan \
                blobs and partial temp files; exits 1 when there is a problem. --repair removes only \
                orphans and temp files, holding the store's lock so no write in progress loses a blob; \
                it never touches what a name reaches.
                """)

        @Flag(help: "Remove orphan blobs and temp files.") var repair = false
        @Option(help: "Output: table or json.") var format: OutputFormat = .table
        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await reportingErrors {
                let report = try storeOptions.open().verify(repair: repair)
                if format == .json {
                    try printEncoded(report)
                } else {
                    for problem in report.problems { print("problem: \(problem)") }
                    print("store: \(report.images) names, \(report.blobsChecked) blobs checked, \(report.problems.count) problems, "
                          + "\(report.orphans.count) orphan blobs, \(report.tempFiles.count) temp files"
                          + (repair ? ", \(report.removed) removed" : ""))
                }
                if !report.isHealthy { throw CLIError("the store has \(report.problems.count) problem(s)") }
            }
        }
    }
}

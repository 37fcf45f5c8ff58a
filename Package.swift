// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Cairn",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cairn", targets: ["cairn"]),
        .executable(name: "lifecycle", targets: ["lifecycle"]),
        .executable(name: "launcher", targets: ["launcher"]),
        .library(name: "OCI", targets: ["OCI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // ECDSA P-256 and PEM keys for signatures (already in the graph through postgres-nio).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        // Already in the graph (swift-crypto's CryptoExtras, swift-certificates); Trust reads
        // and writes PKCS#8 EncryptedPrivateKeyInfo with it.
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        // C shims over zlib and libzstd: their init macros and flush constants are not
        // importable into Swift directly.
        .target(
            name: "CCairn",
            linkerSettings: [.linkedLibrary("z"), .linkedLibrary("zstd")]
        ),
        // The one way to run a process: fork/exec with privilege drop, close-on-exec pipes, both
        // outputs read at once, timeouts, and signal forwarding installed by the executables.
        .target(
            name: "Processes",
            dependencies: ["CCairn", "CairnBasics"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "OCI",
            dependencies: [
                "CCairn", "CairnBasics", "Processes",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        // What the lifecycle and the launcher share, without Foundation: spec constants, API
        // versions and feature gates, the env-file rules, the TOML 1.0 reader.
        .target(
            name: "CNBCore",
            dependencies: ["CairnBasics"],
            swiftSettings: strictSettings
        ),
        // Foundation-free helpers every module may use: trimming, hex, paths, a seeded PRNG.
        .target(
            name: "CairnBasics",
            swiftSettings: strictSettings
        ),
        // The CNB data model: every TOML file of the specs (re-exports CNBCore).
        .target(
            name: "Buildpacks",
            dependencies: ["CNBCore"],
            swiftSettings: strictSettings
        ),
        // The lifecycle phases as library code, driven by option values (the `lifecycle`
        // executable is their command line; the build phase's type is BuildPhase).
        .target(
            name: "Phases",
            dependencies: ["Buildpacks", "OCI", "Processes"],
            swiftSettings: strictSettings
        ),
        // Running processes in root filesystems: bubblewrap for builds, runc for `cairn run`.
        .target(
            name: "Sandbox",
            dependencies: ["Processes", "CairnBasics"],
            swiftSettings: strictSettings
        ),
        // Image extensions applied: extension Dockerfiles over overlay layers of an unpacked
        // image, RUN in runc, deterministic layers (DESIGN.md, Extend/).
        .target(
            name: "Extend",
            dependencies: ["Buildpacks", "OCI", "Sandbox", "CCairn", "CairnBasics"],
            swiftSettings: strictSettings
        ),
        // The audit inventory: its database (SQLite through GRDB, or PostgreSQL through
        // postgres-nio), ecosystem version orderings, OSV advisories, fleet queries and fix plans.
        // Knows rows, not images.
        .target(
            name: "Inventory",
            dependencies: [
                "CairnBasics",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's column functions, for stepping whole-fleet answers in place.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Chain of custody: keys, cosign-format signatures in the store and on registries.
        .target(
            name: "Trust",
            dependencies: [
                "OCI", "CairnBasics", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"), .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),
        // What `cairn` adds around the lifecycle (the CNB platform): stacks, builder images,
        // builds, running images, audit. Not OCI.Platform (an image's os/architecture).
        .target(
            name: "CairnPlatform",
            dependencies: ["OCI", "Buildpacks", "Phases", "Sandbox", "Extend", "Processes", "Inventory", "Trust", "CairnBasics"],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "lifecycle",
            dependencies: [
                "Phases", "Buildpacks", "OCI", "Extend", "Processes",
            ],
            swiftSettings: strictSettings
        ),
        // The launcher in every app image: Glibc only, no Foundation, linked statically.
        // scripts/build-static builds the shipped one as Embedded Swift from the same sources
        // (Embedded/: its C library module and runtime stub; main.swift left out).
        .executableTarget(
            name: "launcher",
            dependencies: ["CNBCore", "CairnBasics"],
            exclude: ["Embedded"],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "cairn",
            dependencies: [
                "OCI", "Buildpacks", "Phases", "CairnPlatform", "Extend", "Processes", "Inventory", "Trust",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        // Benchmarks that need Cairn's own code (the synthetic fleet of bench/inventory.sh);
        // not shipped in the user-facing CLI.
        .executableTarget(
            name: "cairn-bench",
            dependencies: ["CNBCore", "Inventory", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        // Helpers shared by the test targets: temp dirs, running tools, locating fixtures.
        .target(
            name: "TestSupport",
            dependencies: ["OCI"],
            path: "Tests/TestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OCITests",
            dependencies: ["OCI", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BuildpacksTests",
            dependencies: ["Buildpacks", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PhasesTests",
            dependencies: ["Buildpacks", "Phases", "OCI", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ExtendTests",
            dependencies: ["Buildpacks", "Extend", "OCI", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ProcessesTests",
            dependencies: ["Processes"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "InventoryTests",
            dependencies: ["Inventory", "OCI", "TestSupport",
                           .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        // Cairn's lifecycle and launcher against the reference lifecycle (../shared/reference),
        // same inputs through both, outputs compared (Tests/Fixtures/differential).
        .testTarget(
            name: "DifferentialTests",
            dependencies: ["CNBCore", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CairnTests",
            dependencies: ["OCI", "CairnPlatform", "TestSupport"],
            swiftSettings: strictSettings
        ),
    ]
)

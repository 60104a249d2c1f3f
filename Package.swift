// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "ShipLog",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ShipLog", targets: ["ShipLog"]),
        .executable(name: "shiplog-bench", targets: ["ShipLogBench"]),
        .executable(name: "shiplog", targets: ["ShipLogTool"]),
        .executable(name: "shiplog-simulate", targets: ["ShipLogSimulate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // System libraries, found through pkg-config (see scripts/install-deps).
        .systemLibrary(
            name: "CLZ4", pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"]), .brew(["lz4"])]),
        .systemLibrary(
            name: "CISAL", pkgConfig: "libisal",
            providers: [.apt(["libisal-dev"]), .brew(["isa-l"])]),
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),
        // vmsplice(2) and splice(2), which Swift's Glibc module leaves out; a header only.
        .systemLibrary(name: "CLinuxPipe"),
        // sync_file_range(2), which Swift's Glibc module leaves out; a header only.
        .systemLibrary(name: "CLinuxFile"),
        .systemLibrary(
            name: "CLevelDB",
            providers: [.apt(["libleveldb-dev"]), .brew(["leveldb"])]),

        // The append-only segment log: no networking here.
        .target(
            name: "ShipLogStorage",
            dependencies: [
                "CLZ4", "CISAL", "CLinuxFile",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Replication and failover decisions: pure state machines and the wire frames (format.md §11).
        // No networking, no clocks, no file access.
        .target(
            name: "ShipLogProtocol",
            dependencies: [
                "ShipLogStorage",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // The SwiftNIO shell around the replication state machines, and the embeddable `Node`.
        .target(
            name: "ShipLogNode",
            dependencies: [
                "ShipLogProtocol", "ShipLogStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // The deterministic cluster simulator (issue 10): NodeMachines, a simulated network,
        // clock and disks, crashes, all from one seed; and the command that runs many seeds.
        .target(name: "ShipLogSimulation", dependencies: ["ShipLogProtocol", "ShipLogStorage"]),
        .executableTarget(name: "ShipLogSimulate", dependencies: ["ShipLogSimulation"]),
        // The facade applications link.
        .target(name: "ShipLog", dependencies: ["ShipLogStorage", "ShipLogNode"]),

        // Child process for the crash-consistency test: appends with fsync and is SIGKILLed.
        .executableTarget(
            name: "ShipLogCrashWriter",
            dependencies: ["ShipLogStorage"]),

        // Records as JSON lines, in C for speed (SSSE3 escaping), for the tool.
        .target(name: "CJSONLines"),

        // The recovery tool: verify, dump, stats, repair, replay.
        .executableTarget(
            name: "ShipLogTool",
            dependencies: [
                "ShipLogStorage", "CLinuxPipe", "CJSONLines",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                "ShipLogNode", "ShipLogProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // The minimal C loop that `append-os-8` is measured against (its floor).
        .target(name: "CAppendFloor", dependencies: ["CLZ4", "CISAL"], path: "Benchmarks/CAppendFloor"),
        .executableTarget(
            name: "ShipLogBench",
            dependencies: [
                "ShipLogStorage", "CLZ4", "CSQLite", "CLevelDB", "CAppendFloor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                // The replication workloads (issue 9) embed the primary as a `Node`.
                "ShipLogNode", "ShipLogProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/ShipLogBench"),

        .testTarget(
            name: "ShipLogProtocolTests",
            dependencies: [
                "ShipLogProtocol", "ShipLogStorage", "ShipLogSimulation",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]),
        .testTarget(
            name: "ShipLogStorageTests",
            dependencies: [
                "ShipLog", "ShipLogStorage", "ShipLogCrashWriter", "ShipLogTool", "CJSONLines", "CLinuxPipe",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]),
        .testTarget(
            name: "ShipLogNodeTests",
            dependencies: [
                "ShipLogNode", "ShipLogProtocol", "ShipLogStorage", "ShipLogTool",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
    ]
)

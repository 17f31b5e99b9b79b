// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "sluice",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
        .library(name: "SluiceCore", targets: ["SluiceCore"]),
        // For the fuzzing package (Fuzz/), which reaches the parsers through these.
        .library(name: "SluiceFormats", targets: ["SluiceFormats"]),
        .library(name: "SluicePostgres", targets: ["SluicePostgres"]),
        .library(name: "SluiceNATS", targets: ["SluiceNATS"]),
        .library(name: "SluiceJetStream", targets: ["SluiceJetStream"]),
        .library(name: "SluiceMySQLProtocol", targets: ["SluiceMySQLProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CMalloc"),
        .systemLibrary(name: "CLinux"),
        .systemLibrary(name: "CByteCount"),
        .systemLibrary(name: "CPostgres", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CSnappy", pkgConfig: "snappy", providers: [.apt(["libsnappy-dev"])]),
        .target(
            name: "SluiceCore",
            dependencies: [
                "CLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceFormats",
            dependencies: ["SluiceCore", "CZlib", "CZstd", "CSnappy"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceStateSQLite",
            // GRDBSQLite: SQLite's C API for what GRDB does not wrap (incremental blob writes).
            dependencies: ["SluiceCore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceObjectStore",
            dependencies: [
                "SluiceCore", .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceFiles",
            dependencies: ["SluiceCore", "SluiceFormats", "SluiceObjectStore", "CLinux", "CByteCount"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceServer",
            dependencies: [
                "SluiceCore", "SluiceFormats",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceDatabase",
            dependencies: ["SluiceCore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceNATS",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceJetStream",
            dependencies: [
                "SluiceCore", "SluiceFormats", "SluiceNATS", .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluicePostgres",
            dependencies: ["SluiceCore", "CPostgres", .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceMySQLProtocol",
            dependencies: [
                "CZlib", "CZstd", .product(name: "Crypto", package: "swift-crypto"), .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceMySQL",
            dependencies: [
                "SluiceCore", "SluiceMySQLProtocol", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceHTTPAPI",
            dependencies: [
                "SluiceCore", "SluiceFormats", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceConnectors",
            dependencies: [
                "SluiceCore", "SluiceFiles", "SluiceStateSQLite", "SluiceServer", "SluiceDatabase", "SluicePostgres", "SluiceJetStream", "SluiceHTTPAPI",
                "SluiceMySQL",
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SluiceTesting",
            dependencies: ["SluiceCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "sluice",
            dependencies: [
                "SluiceCore", "SluiceConnectors", "SluiceServer", "SluiceStateSQLite", "SluicePostgres", "SluiceDatabase", "SluiceFormats", "SluiceNATS",
                "SluiceJetStream", "SluiceObjectStore", "CMalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["BuildInfo"]
        ),
        .plugin(name: "BuildInfo", capability: .buildTool()),
        .testTarget(name: "SluiceCoreTests", dependencies: ["SluiceCore", "SluiceTesting"], swiftSettings: swiftSettings),
        .testTarget(name: "SluiceFormatsTests", dependencies: ["SluiceFormats", "SluiceTesting"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SluicePostgresTests", dependencies: ["SluicePostgres", "SluiceConnectors", "SluiceStateSQLite", "SluiceTesting"],
            swiftSettings: swiftSettings),
        .testTarget(name: "SluiceStateSQLiteTests", dependencies: ["SluiceStateSQLite", "SluiceTesting"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SluiceDatabaseTests", dependencies: ["SluiceDatabase", "SluiceTesting", "SluiceConnectors", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings),
        .testTarget(name: "SluiceNATSTests", dependencies: ["SluiceNATS", "SluiceTesting"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SluiceJetStreamTests",
            dependencies: [
                "SluiceJetStream", "SluiceConnectors", "SluiceCore", "SluiceNATS", "SluiceTesting", .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: swiftSettings),
        .testTarget(
            name: "SluiceObjectStoreTests", dependencies: ["SluiceObjectStore", "SluiceTesting"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SluiceHTTPAPITests", dependencies: ["SluiceHTTPAPI", "SluiceConnectors", "SluiceStateSQLite", "SluiceTesting"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "SluiceMySQLTests", dependencies: ["SluiceMySQL", "SluiceMySQLProtocol", "SluiceStateSQLite", "SluiceTesting", "CZstd"],
            swiftSettings: swiftSettings),
        .testTarget(name: "SluiceConnectorsTests", dependencies: ["SluiceConnectors", "SluiceCore", "SluiceTesting"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SluiceFilesTests", dependencies: ["SluiceFiles", "SluiceStateSQLite", "SluiceConnectors", "SluiceTesting"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SluiceServerTests",
            dependencies: [
                "SluiceServer", "SluiceStateSQLite", "SluiceConnectors", "SluiceTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "SluiceCore", "SluiceTesting", "SluiceNATS", "SluiceStateSQLite", .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

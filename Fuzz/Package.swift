// swift-tools-version:5.4
// Tools version 5.4 on purpose: from 5.5 SwiftPM renames an executable's `main` to `<Target>_main`
// (for testable executables), which these harnesses do not have: libFuzzer brings `main`.
// libFuzzer harnesses for Sluice's parsers of outside bytes (see docs/guides/fuzzing.md).
// A package of its own so the main build stays as it is; build and run with scripts/fuzz.sh:
//   swift build -c release -Xswiftc -sanitize=fuzzer,address --scratch-path .build-fuzz
import PackageDescription

/// Every harness defines `LLVMFuzzerTestOneInput` and no `main` (libFuzzer brings it).
let harness: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "SluiceFuzz",
    dependencies: [
        .package(name: "sluice", path: "..")
    ],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "SluiceFormats", package: "sluice")]),
        .executableTarget(
            name: "FuzzCSV",
            dependencies: ["FuzzSupport", .product(name: "SluiceFormats", package: "sluice"), .product(name: "SluiceCore", package: "sluice")],
            swiftSettings: harness),
        .executableTarget(
            name: "FuzzNDJSON",
            dependencies: ["FuzzSupport", .product(name: "SluiceFormats", package: "sluice"), .product(name: "SluiceCore", package: "sluice")],
            swiftSettings: harness),
        .executableTarget(
            name: "FuzzPushSplitter",
            dependencies: [.product(name: "SluiceFormats", package: "sluice"), .product(name: "SluiceCore", package: "sluice")],
            swiftSettings: harness),
        .executableTarget(
            name: "FuzzParquet", dependencies: [.product(name: "SluiceFormats", package: "sluice"), .product(name: "SluiceCore", package: "sluice")],
            swiftSettings: harness),
        .executableTarget(name: "FuzzPgOutput", dependencies: [.product(name: "SluicePostgres", package: "sluice")], swiftSettings: harness),
        .executableTarget(name: "FuzzNATS", dependencies: [.product(name: "SluiceNATS", package: "sluice")], swiftSettings: harness),
        .executableTarget(name: "FuzzMySQL", dependencies: [.product(name: "SluiceMySQLProtocol", package: "sluice")], swiftSettings: harness),
        .executableTarget(
            name: "FuzzYAML",
            dependencies: [
                .product(name: "SluiceCore", package: "sluice"), .product(name: "SluicePostgres", package: "sluice"),
                .product(name: "SluiceJetStream", package: "sluice"),
            ],
            swiftSettings: harness),
    ]
)

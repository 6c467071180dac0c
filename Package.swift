// swift-tools-version: 6.2
// The whole of MirageSwift in one manifest, so other projects can depend on
// this repository by URL and pick the modules they need, and so one
// `swift test` here builds once and runs every test.
//
// Each package under Packages/ also has a manifest of its own (tested alone
// with `swift test --package-path Packages/X`); Scripts/check-manifests
// verifies that both name the same sources.
import PackageDescription

let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]
// Cores with checked views over spans (`~Escapable` types) need Lifetimes.
// Test targets stay on `strict`: the feature breaks Swift Testing's macros.
let core: [SwiftSetting] = strict + [.enableExperimentalFeature("Lifetimes")]

let package = Package(
    name: "MirageSwift",
    products: [
        .library(name: "MirageDevices", targets: ["MirageDevices"]),
        .library(name: "MiragePlatform", targets: ["MiragePlatform"]),
        .library(name: "MirageTCPIP", targets: ["MirageTCPIP"]),
        .library(name: "MirageHTTP", targets: ["MirageHTTP"]),
        .library(name: "MirageCommandLine", targets: ["MirageCommandLine"]),
        .library(name: "MirageEcho", targets: ["MirageEcho"]),
        .executable(name: "mirage-echo", targets: ["mirage-echo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Devices: the abstract device protocols and embedded-ready helpers.
        .target(
            name: "MirageDevices",
            path: "Packages/Devices/Sources/MirageDevices",
            swiftSettings: strict
        ),
        .testTarget(
            name: "MirageDevicesTests",
            dependencies: ["MirageDevices"],
            path: "Packages/Devices/Tests/MirageDevicesTests",
            swiftSettings: strict
        ),

        // TCPIP: Ethernet, ARP, IPv4, ICMP, UDP, DHCP (TCP in part 2).
        .target(
            name: "MirageTCPIP",
            dependencies: ["MirageDevices"],
            path: "Packages/TCPIP/Sources/MirageTCPIP",
            swiftSettings: core
        ),
        .testTarget(
            name: "MirageTCPIPTests",
            dependencies: ["MirageTCPIP", "MirageDevices"],
            path: "Packages/TCPIP/Tests/MirageTCPIPTests",
            exclude: ["Corpus"],
            swiftSettings: strict
        ),

        // HTTP: HTTP/1.1 parser, serializer, server connection and file handler.
        .target(
            name: "MirageHTTP",
            dependencies: ["MirageDevices"],
            path: "Packages/HTTP/Sources/MirageHTTP",
            swiftSettings: core
        ),
        .testTarget(
            name: "MirageHTTPTests",
            dependencies: ["MirageHTTP", "MirageDevices"],
            path: "Packages/HTTP/Tests/MirageHTTPTests",
            exclude: ["Corpus"],
            swiftSettings: strict
        ),

        // Platform: the Linux backends. The only package that touches the OS.
        .target(
            name: "CMiragePlatform",
            path: "Packages/Platform/Sources/CMiragePlatform"
        ),
        .target(
            name: "MiragePlatform",
            dependencies: ["MirageDevices", "CMiragePlatform"],
            path: "Packages/Platform/Sources/MiragePlatform",
            swiftSettings: strict
        ),
        .target(
            name: "MirageCommandLine",
            dependencies: [
                "MiragePlatform", "MirageDevices", "MirageTCPIP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Packages/Platform/Sources/MirageCommandLine",
            swiftSettings: strict
        ),
        .testTarget(
            name: "MiragePlatformTests",
            dependencies: ["MiragePlatform"],
            path: "Packages/Platform/Tests/MiragePlatformTests",
            swiftSettings: strict
        ),

        // Examples: portable logic as a library, a Linux main beside it.
        .target(
            name: "MirageEcho",
            dependencies: ["MirageDevices"],
            path: "Examples/echo/Sources/MirageEcho",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "mirage-echo",
            dependencies: [
                "MirageEcho", "MiragePlatform", "MirageCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/echo/Sources/mirage-echo",
            swiftSettings: strict
        ),

        // Cross-package and interop tests, and the namespace harness.
        .target(
            name: "MirageTestNetwork",
            path: "Tests/TestNetwork",
            swiftSettings: strict
        ),
        .testTarget(
            name: "MirageInteropTests",
            dependencies: ["MirageTestNetwork", "MirageDevices", "MiragePlatform", "MirageEcho", "MirageTCPIP"],
            path: "Tests/InteropTests",
            swiftSettings: strict
        ),
    ]
)

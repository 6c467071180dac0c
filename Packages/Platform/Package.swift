// swift-tools-version: 6.2
// Standalone manifest: `swift test --package-path Packages/Platform`.
// Keep in step with the root Package.swift (Scripts/check-manifests): same
// target names, dependencies and settings.
import PackageDescription

let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "MiragePlatform",
    products: [
        .library(name: "MiragePlatform", targets: ["MiragePlatform"]),
        .library(name: "MirageCommandLine", targets: ["MirageCommandLine"]),
    ],
    dependencies: [
        .package(path: "../Devices"),
        // Only MirageCommandLine uses it, for `--net tap`.
        .package(path: "../TCPIP"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C shims for what Swift cannot call directly (variadic ioctl) or
        // imports awkwardly (the packed epoll_event).
        .target(name: "CMiragePlatform"),
        .target(
            name: "MiragePlatform",
            dependencies: [
                .product(name: "MirageDevices", package: "Devices"),
                "CMiragePlatform",
            ],
            swiftSettings: strict
        ),
        .target(
            name: "MirageCommandLine",
            dependencies: [
                "MiragePlatform",
                .product(name: "MirageDevices", package: "Devices"),
                .product(name: "MirageTCPIP", package: "TCPIP"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MiragePlatformTests",
            dependencies: ["MiragePlatform"],
            swiftSettings: strict
        ),
    ]
)

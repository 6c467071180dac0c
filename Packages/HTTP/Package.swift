// swift-tools-version: 6.2
// Standalone manifest: `swift test --package-path Packages/HTTP`.
// Keep in step with the root Package.swift (Scripts/check-manifests).
import PackageDescription

let settings: [SwiftSetting] = [.treatAllWarnings(as: .error), .enableExperimentalFeature("Lifetimes")]

let package = Package(
    name: "MirageHTTP",
    products: [
        .library(name: "MirageHTTP", targets: ["MirageHTTP"]),
        .library(name: "MirageHTTPAsync", targets: ["MirageHTTPAsync"]),
    ],
    dependencies: [
        .package(path: "../Devices"),
        // Only the async front (Linux) uses it, for the event loop.
        .package(path: "../Platform"),
    ],
    targets: [
        .target(
            name: "MirageHTTP",
            dependencies: [.product(name: "MirageDevices", package: "Devices")],
            swiftSettings: settings
        ),
        .target(
            name: "MirageHTTPAsync",
            dependencies: [
                "MirageHTTP",
                .product(name: "MirageDevices", package: "Devices"),
                .product(name: "MiragePlatform", package: "Platform"),
            ],
            swiftSettings: [.treatAllWarnings(as: .error)]
        ),
        .testTarget(
            name: "MirageHTTPTests",
            dependencies: ["MirageHTTP", .product(name: "MirageDevices", package: "Devices")],
            exclude: ["Corpus"],
            swiftSettings: [.treatAllWarnings(as: .error)]
        ),
    ]
)

// swift-tools-version: 6.2
// Standalone manifest: `swift test --package-path Packages/DNS`.
// Keep in step with the root Package.swift (Scripts/check-manifests).
import PackageDescription

let settings: [SwiftSetting] = [.treatAllWarnings(as: .error), .enableExperimentalFeature("Lifetimes")]

let package = Package(
    name: "MirageDNS",
    products: [
        .library(name: "MirageDNS", targets: ["MirageDNS"]),
    ],
    dependencies: [
        .package(path: "../Devices"),
    ],
    targets: [
        .target(
            name: "MirageDNS",
            dependencies: [.product(name: "MirageDevices", package: "Devices")],
            swiftSettings: settings
        ),
        .testTarget(
            name: "MirageDNSTests",
            dependencies: ["MirageDNS", .product(name: "MirageDevices", package: "Devices")],
            exclude: ["Corpus"],
            swiftSettings: [.treatAllWarnings(as: .error)]
        ),
    ]
)

// swift-tools-version: 6.2
// Standalone manifest: `swift test --package-path Packages/Devices`.
// Keep in step with the root Package.swift (Scripts/check-manifests).
import PackageDescription

let package = Package(
    name: "MirageDevices",
    products: [
        .library(name: "MirageDevices", targets: ["MirageDevices"]),
    ],
    targets: [
        .target(name: "MirageDevices"),
        .testTarget(name: "MirageDevicesTests", dependencies: ["MirageDevices"]),
    ]
)

// swift-tools-version: 6.2
// Standalone manifest: `swift test --package-path Packages/TCPIP`.
// Keep in step with the root Package.swift (Scripts/check-manifests).
import PackageDescription

let settings: [SwiftSetting] = [.treatAllWarnings(as: .error), .enableExperimentalFeature("Lifetimes")]

let package = Package(
    name: "MirageTCPIP",
    products: [
        .library(name: "MirageTCPIP", targets: ["MirageTCPIP"]),
    ],
    dependencies: [
        .package(path: "../Devices"),
    ],
    targets: [
        .target(
            name: "MirageTCPIP",
            dependencies: [.product(name: "MirageDevices", package: "Devices")],
            swiftSettings: settings
        ),
        .testTarget(
            name: "MirageTCPIPTests",
            dependencies: ["MirageTCPIP", .product(name: "MirageDevices", package: "Devices")],
            exclude: ["Corpus"],
            // Not `settings`: the Lifetimes feature breaks Swift Testing's
            // macro expansion (@section needs compile-time constants), and
            // tests only use the views, which needs no feature flag.
            swiftSettings: [.treatAllWarnings(as: .error)]
        ),
    ]
)

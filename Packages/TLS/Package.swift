// swift-tools-version: 6.2
// Standalone manifest: `swift test --package-path Packages/TLS`.
// Keep in step with the root Package.swift (Scripts/check-manifests).
import PackageDescription

let settings: [SwiftSetting] = [.treatAllWarnings(as: .error), .enableExperimentalFeature("Lifetimes")]

let package = Package(
    name: "MirageTLS",
    products: [
        .library(name: "MirageTLS", targets: ["MirageTLS"]),
        .library(name: "MirageTLSCrypto", targets: ["MirageTLSCrypto"]),
    ],
    dependencies: [
        .package(path: "../Devices"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        // The sans-I/O engine: stdlib and MirageDevices only.
        .target(
            name: "MirageTLS",
            dependencies: [.product(name: "MirageDevices", package: "Devices")],
            swiftSettings: settings
        ),
        // The Linux provider: swift-crypto primitives, swift-certificates validation, PEM.
        .target(
            name: "MirageTLSCrypto",
            dependencies: [
                "MirageTLS",
                .product(name: "MirageDevices", package: "Devices"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: [.treatAllWarnings(as: .error)]
        ),
        .testTarget(
            name: "MirageTLSTests",
            dependencies: [
                "MirageTLS", "MirageTLSCrypto",
                .product(name: "MirageDevices", package: "Devices"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            exclude: ["Corpus"],
            swiftSettings: [.treatAllWarnings(as: .error)]
        ),
    ]
)

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
        .library(name: "MirageCommandLine", targets: ["MirageCommandLine"]),
        .library(name: "MirageHTTP", targets: ["MirageHTTP"]),
        .library(name: "MirageHTTPAsync", targets: ["MirageHTTPAsync"]),
        .library(name: "MirageDNS", targets: ["MirageDNS"]),
        .library(name: "MirageTLS", targets: ["MirageTLS"]),
        .library(name: "MirageTLSCrypto", targets: ["MirageTLSCrypto"]),
        .library(name: "MirageEcho", targets: ["MirageEcho"]),
        .executable(name: "mirage-echo", targets: ["mirage-echo"]),
        .executable(name: "mirage-crunch", targets: ["mirage-crunch"]),
        .plugin(name: "MirageCrunchPlugin", targets: ["MirageCrunchPlugin"]),
        .library(name: "MirageWWWSite", targets: ["MirageWWWSite"]),
        .library(name: "MirageWWW", targets: ["MirageWWW"]),
        .executable(name: "mirage-www", targets: ["mirage-www"]),
        .executable(name: "mirage-dns", targets: ["mirage-dns"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // MirageTLSCrypto only: the primitives and X.509 behind MirageTLS's provider protocols.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
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

        // HTTP: HTTP/1.1 server and client over the stack contract.
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

        // DNS: wire format, zone files, an authoritative server and a stub
        // resolver over the stack contract.
        .target(
            name: "MirageDNS",
            dependencies: ["MirageDevices"],
            path: "Packages/DNS/Sources/MirageDNS",
            swiftSettings: core
        ),
        .testTarget(
            name: "MirageDNSTests",
            dependencies: ["MirageDNS", "MirageDevices"],
            path: "Packages/DNS/Tests/MirageDNSTests",
            exclude: ["Corpus"],
            swiftSettings: strict
        ),

        // TLS: a sans-I/O TLS 1.3 engine (stdlib + MirageDevices) and its
        // Linux provider (swift-crypto, swift-certificates).
        .target(
            name: "MirageTLS",
            dependencies: ["MirageDevices"],
            path: "Packages/TLS/Sources/MirageTLS",
            swiftSettings: core
        ),
        .target(
            name: "MirageTLSCrypto",
            dependencies: [
                "MirageTLS", "MirageDevices",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            path: "Packages/TLS/Sources/MirageTLSCrypto",
            swiftSettings: strict
        ),
        .testTarget(
            name: "MirageTLSTests",
            dependencies: [
                "MirageTLS", "MirageTLSCrypto", "MirageDevices",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            path: "Packages/TLS/Tests/MirageTLSTests",
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

        // Crunch: a folder compiled into the program as a key-value store
        // (a host tool and its build plugin; the generated code is a core's).
        .executableTarget(
            name: "mirage-crunch",
            path: "Packages/Crunch/Sources/mirage-crunch",
            swiftSettings: strict
        ),
        .plugin(
            name: "MirageCrunchPlugin",
            capability: .buildTool(),
            dependencies: ["mirage-crunch"],
            path: "Packages/Crunch/Plugins/MirageCrunchPlugin"
        ),
        .testTarget(
            name: "MirageCrunchTests",
            dependencies: ["mirage-crunch"],
            path: "Packages/Crunch/Tests/MirageCrunchTests",
            exclude: ["Fixture"],
            swiftSettings: strict
        ),
        // The async/await front of MirageHTTP's server (Linux: the loop is the executor).
        .target(
            name: "MirageHTTPAsync",
            dependencies: ["MirageHTTP", "MirageDevices", "MiragePlatform"],
            path: "Packages/HTTP/Sources/MirageHTTPAsync",
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

        // The slide deck mirage-www serves, compiled in by MirageCrunchPlugin
        // from its Site folder.
        .target(
            name: "MirageWWWSite",
            dependencies: ["MirageDevices"],
            path: "Examples/www/Sources/MirageWWWSite",
            exclude: ["Site"],
            swiftSettings: strict,
            plugins: ["MirageCrunchPlugin"]
        ),
        .testTarget(
            name: "MirageWWWSiteTests",
            dependencies: ["MirageWWWSite", "MirageDevices"],
            path: "Examples/www/Tests/MirageWWWSiteTests",
            swiftSettings: strict
        ),
        .target(
            name: "MirageWWW",
            dependencies: ["MirageDevices", "MirageHTTP"],
            path: "Examples/www/Sources/MirageWWW",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "mirage-www",
            dependencies: [
                "MirageWWW", "MirageWWWSite", "MirageHTTP", "MiragePlatform", "MirageCommandLine",
                "MirageTLS", "MirageTLSCrypto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/www/Sources/mirage-www",
            swiftSettings: strict
        ),

        // mirage-dns: an authoritative server for zone files (MirageDNS's DNSServer).
        .executableTarget(
            name: "mirage-dns",
            dependencies: [
                "MirageDNS", "MirageDevices", "MiragePlatform", "MirageCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/dns-server/Sources/mirage-dns",
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
            dependencies: ["MirageTestNetwork", "MirageDevices", "MiragePlatform", "MirageEcho", "MirageTCPIP", "MirageHTTP", "MirageHTTPAsync", "MirageWWW", "MirageDNS", "MirageTLS", "MirageTLSCrypto"],
            path: "Tests/InteropTests",
            // The DNS differential driver and NSD launcher (Python) and the zone files the DNS tests use.
            exclude: ["DNS", "DNSZones"],
            swiftSettings: strict
        ),
    ]
)

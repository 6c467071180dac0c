// swift-tools-version: 6.2
// mirage-tls-bench: the server side of Scripts/bench-tls (issue #10's
// performance section), MirageTLS's TLSStack over SocketStack on one
// EventLoop thread, the way mirage-www --tls serves. A package of its own
// (not named by the root manifest, not under Packages/), so the test suite
// and consumers never build it. Build it with:
//
//   swift build -c release --package-path Benchmarks/TLSBench \
//       --scratch-path .build-bench-tls --product mirage-tls-bench
//
// TLS 1.3 session tickets (issue #10's resumption) are compiled in only
// when MIRAGE_TLS_TICKETS=1 is in the environment of the build (the
// script sets it when the engine has `SessionTicketKeys`): the benchmark
// builds against engines with and without them.
import PackageDescription

var settings: [SwiftSetting] = [.treatAllWarnings(as: .error)]
if Context.environment["MIRAGE_TLS_TICKETS"] == "1" {
    settings.append(.define("MIRAGE_TLS_TICKETS"))
}

let package = Package(
    name: "TLSBench",
    products: [
        .executable(name: "mirage-tls-bench", targets: ["mirage-tls-bench"]),
    ],
    dependencies: [
        // The repository's root manifest, by path.
        .package(name: "MirageSwift", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "mirage-tls-bench",
            dependencies: [
                .product(name: "MirageDevices", package: "MirageSwift"),
                .product(name: "MiragePlatform", package: "MirageSwift"),
                .product(name: "MirageTLS", package: "MirageSwift"),
                .product(name: "MirageTLSCrypto", package: "MirageSwift"),
            ],
            swiftSettings: settings
        ),
    ]
)

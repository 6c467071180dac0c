// swift-tools-version: 6.2
// The Hummingbird 2 peer for Scripts/bench-http: a server that returns one
// file's bytes at `/`, to compare mirage-www with. A package of its own (not
// named by the root manifest, not under Packages/), so neither the test suite
// nor consumers ever resolve or build Hummingbird. Build it with:
//
//   swift build -c release --package-path Benchmarks/HTTPPeer \
//       --scratch-path .build-httppeer --product hummingbird-peer
//
// Hummingbird's default traits (ConfigurationSupport, FullFoundation) are
// left off: neither touches the request path, and without them the build
// does not compile swift-configuration.
import PackageDescription

let package = Package(
    name: "HTTPPeer",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "hummingbird-peer", targets: ["HummingbirdPeer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0", traits: []),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
    ],
    targets: [
        .executableTarget(
            name: "HummingbirdPeer",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ]
)

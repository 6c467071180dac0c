// swift-tools-version: 6.2
// Micro-benchmarks for MirageSwift (ordo-one/benchmark), kept in a package of
// their own so that consumers of the repository and its CI never resolve or
// build the benchmark dependency. Run them with Scripts/bench-tcpip, or:
//
//   swift package --package-path Benchmarks --scratch-path .build-bench \
//       benchmark --target TCPIPBenchmarks
//
// The benchmark package needs its "MallocInterposer" trait named explicitly
// (which also leaves its Linux 6.3 runtime interposer, a package this
// machine does not have, disabled) and swift-tools-version 6.1 or later.
import PackageDescription

let package = Package(
    name: "MirageBenchmarks",
    dependencies: [
        // The repository's root manifest, by path, named so the product
        // references below do not depend on the checkout's directory name.
        .package(name: "MirageSwift", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "TCPIPBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MirageDevices", package: "MirageSwift"),
                .product(name: "MirageTCPIP", package: "MirageSwift"),
            ],
            path: "Benchmarks/TCPIPBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)

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
//
// mirage-tcp-bench is not one of those: it is the pair of endpoints
// Scripts/bench-tcp runs (bulk TCP, kernel ↔ MirageTCPIP over a tap device
// against kernel ↔ kernel over veth). It does not link the Benchmark
// product; it counts allocations itself (CAllocationCounter interposes
// malloc and its relatives in the executable). It lives in TCPBench/, not
// Benchmarks/: the benchmark plugin takes every executable target in a
// folder named Benchmarks for one of its own.
import PackageDescription

let package = Package(
    name: "MirageBenchmarks",
    dependencies: [
        // The repository's root manifest, by path, named so the product
        // references below do not depend on the checkout's directory name.
        .package(name: "MirageSwift", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
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
        // Scripts/bench-tcp's kernel and MirageTCPIP endpoints.
        .executableTarget(
            name: "mirage-tcp-bench",
            dependencies: [
                "CAllocationCounter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "MirageDevices", package: "MirageSwift"),
                .product(name: "MiragePlatform", package: "MirageSwift"),
                .product(name: "MirageTCPIP", package: "MirageSwift"),
            ],
            path: "TCPBench/mirage-tcp-bench",
            swiftSettings: [.treatAllWarnings(as: .error)]
        ),
        // malloc, calloc, realloc, posix_memalign, aligned_alloc and memalign,
        // counted and forwarded to glibc (__libc_malloc & co.).
        .target(
            name: "CAllocationCounter",
            path: "TCPBench/CAllocationCounter"
        ),
    ]
)

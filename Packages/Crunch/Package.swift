// swift-tools-version: 6.2
// Standalone manifest: `swift test --package-path Packages/Crunch`.
// Keep in step with the root Package.swift (Scripts/check-manifests).
//
// A host tool, not a core: mirage-crunch and its plugin run at build time
// on the developer's machine and may use Foundation. What they generate
// uses only MirageDevices' CompiledKeyValueStore, and is Embedded-ready.
import PackageDescription

let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "MirageCrunch",
    products: [
        .executable(name: "mirage-crunch", targets: ["mirage-crunch"]),
        .plugin(name: "MirageCrunchPlugin", targets: ["MirageCrunchPlugin"]),
    ],
    targets: [
        .executableTarget(name: "mirage-crunch", swiftSettings: strict),
        .plugin(
            name: "MirageCrunchPlugin",
            capability: .buildTool(),
            dependencies: ["mirage-crunch"]
        ),
        .testTarget(
            name: "MirageCrunchTests",
            dependencies: ["mirage-crunch"],
            exclude: ["Fixture"],
            swiftSettings: strict
        ),
    ]
)

// swift-tools-version:6.1
import PackageDescription

// C kernels are always compiled with optimisation, even in debug builds, so that the
// test suite (debug) runs the same fast paths the CLI (release) does.
let kernelCFlags: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno"])]

let package = Package(
    name: "rollspec",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "rollspec", targets: ["rollspec"]),
        .library(name: "RollspecModel", targets: ["RollspecModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CZeroMQ", pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]),
        .target(name: "CRollspecKernels", cSettings: kernelCFlags),
        .target(name: "CRollspecDigest", cSettings: kernelCFlags),
        .target(name: "RollspecKernels", dependencies: ["CBLAS", "CRollspecKernels"]),
        .target(name: "RollspecModel", dependencies: ["RollspecKernels"]),
        .target(name: "RollspecSpeculation", dependencies: ["RollspecModel", "RollspecKernels"]),
        .target(name: "RollspecBus", dependencies: ["CZeroMQ", "CRollspecDigest"]),
        .target(name: "RollspecTesting", dependencies: ["RollspecModel"]),
        .target(name: "RollspecTraining", dependencies: ["RollspecModel"]),
        .target(
            name: "RollspecRuntime",
            dependencies: [
                "RollspecBus", "RollspecSpeculation", "RollspecTraining", "RollspecModel", "RollspecKernels",
                .product(name: "Yams", package: "Yams"),
            ]),
        .executableTarget(
            name: "rollspec",
            dependencies: [
                "RollspecKernels", "RollspecModel", "RollspecSpeculation", "RollspecTraining", "RollspecBus",
                "RollspecRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "RollspecKernelsTests", dependencies: ["RollspecKernels"]),
        .testTarget(name: "RollspecRuntimeTests", dependencies: ["RollspecRuntime", "RollspecKernels", "RollspecModel", "RollspecTesting"]),
        .testTarget(name: "RollspecTrainingTests", dependencies: ["RollspecTraining", "RollspecTesting"]),
        .testTarget(
            name: "RollspecBusTests", dependencies: ["RollspecBus"],
            resources: [.copy("Resources")]),
        .testTarget(
            name: "RollspecSpeculationTests",
            dependencies: ["RollspecSpeculation", "RollspecTesting"]),
        .testTarget(
            name: "RollspecModelTests",
            dependencies: ["RollspecModel", "RollspecTesting"],
            resources: [.copy("Resources")]),
    ],
    swiftLanguageModes: [.v5]
)

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
        .library(name: "RollspecClient", targets: ["RollspecClient"]),
        .library(name: "RollspecModel", targets: ["RollspecModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
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
        .target(name: "RollspecTraining", dependencies: ["RollspecModel", "RollspecKernels"]),
        // The checkpoint digests (SHA-256 and the bus's piecewise SHA-256) for whoever hashes weights.
        .target(name: "RollspecDigest", dependencies: ["CRollspecDigest"]),
        .target(name: "RollspecBus", dependencies: ["CZeroMQ", "CRollspecDigest", "RollspecDigest"]),
        // How the processes log: the line handler (text or JSON), event names, reading events back.
        .target(name: "RollspecLogging", dependencies: [.product(name: "Logging", package: "swift-log")]),
        // For RL-loop authors: the job config, the rollout client, metrics queries.
        .target(
            name: "RollspecClient",
            dependencies: [
                "RollspecBus", "RollspecModel", "RollspecSpeculation", "RollspecLogging",
                .product(name: "Yams", package: "Yams"), .product(name: "Logging", package: "swift-log"),
            ]),
        // The processes of a job: broker, worker, speculator trainer, driver, reference learner.
        .target(
            name: "RollspecRoles",
            dependencies: [
                "RollspecClient", "RollspecBus", "RollspecDigest", "RollspecSpeculation", "RollspecTraining", "RollspecModel",
                "RollspecKernels", "RollspecLogging", .product(name: "Logging", package: "swift-log"),
            ]),
        // For operators: the launcher and supervisor, cluster emitters, the run report.
        .target(
            name: "RollspecOperations",
            dependencies: ["RollspecClient", "RollspecRoles", "RollspecLogging", .product(name: "Yams", package: "Yams"),
                           .product(name: "Logging", package: "swift-log")]),
        // `rollspec distill` as a library: the target's answers, the draft's training, its outputs.
        .target(
            name: "RollspecDistillation",
            dependencies: ["RollspecModel", "RollspecSpeculation", "RollspecTraining", "RollspecKernels", "RollspecDigest"]),
        .target(name: "RollspecTesting", dependencies: ["RollspecModel", "RollspecKernels", "RollspecLogging"]),
        // The timed comparisons behind `rollspec bench` (kernels against BLAS, training against
        // sgemm, the wire path against raw libzmq), each with its baseline in the same run.
        .target(
            name: "RollspecBenchmarks",
            dependencies: ["RollspecKernels", "CRollspecKernels", "CBLAS", "RollspecModel", "RollspecTraining", "RollspecBus",
                           "RollspecDigest", "CZeroMQ"]),
        .executableTarget(
            name: "rollspec",
            dependencies: [
                "RollspecKernels", "RollspecModel", "RollspecSpeculation", "RollspecTraining", "RollspecBus",
                "RollspecClient", "RollspecRoles", "RollspecOperations", "RollspecDistillation", "RollspecBenchmarks",
                "RollspecLogging", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(name: "RollspecKernelsTests", dependencies: ["RollspecKernels", "RollspecModel", "RollspecTesting"]),
        .testTarget(name: "RollspecDigestTests", dependencies: ["RollspecDigest", "RollspecModel"]),
        .testTarget(name: "RollspecLoggingTests", dependencies: ["RollspecLogging", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "RollspecClientTests", dependencies: ["RollspecClient", "RollspecBus", "RollspecModel", "RollspecTesting"]),
        .testTarget(
            name: "RollspecRolesTests",
            dependencies: ["RollspecRoles", "RollspecClient", "RollspecBus", "RollspecModel", "RollspecTraining",
                           "RollspecSpeculation", "RollspecKernels", "RollspecTesting", "RollspecLogging"]),
        .testTarget(
            name: "RollspecOperationsTests",
            dependencies: ["RollspecOperations", "RollspecRoles", "RollspecClient", "RollspecModel", "RollspecKernels",
                           "RollspecTesting", "RollspecLogging", .product(name: "Yams", package: "Yams")]),
        .testTarget(
            name: "RollspecTrainingTests",
            dependencies: ["RollspecTraining", "RollspecModel", "RollspecKernels", "RollspecTesting", "RollspecBenchmarks"]),
        .testTarget(
            name: "RollspecBusTests", dependencies: ["RollspecBus", "RollspecDigest", "RollspecModel", "RollspecTesting", "RollspecBenchmarks"],
            resources: [.copy("Resources")]),
        .testTarget(
            name: "RollspecSpeculationTests",
            dependencies: ["RollspecSpeculation", "RollspecModel", "RollspecKernels", "RollspecTesting"]),
        .testTarget(
            name: "RollspecDistillationTests",
            dependencies: ["RollspecDistillation", "RollspecModel", "RollspecSpeculation", "RollspecKernels", "RollspecTesting"]),
        .testTarget(
            name: "RollspecModelTests",
            dependencies: ["RollspecModel", "RollspecKernels", "RollspecTesting"],
            resources: [.copy("Resources")]),
    ],
    swiftLanguageModes: [.v5]
)

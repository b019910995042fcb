// swift-tools-version:6.1
import PackageDescription

// An RL loop's side of rollspec, as another package sees it: it depends on the RollspecClient
// library product by path, as yours would by URL and version.
let package = Package(
    name: "rollout-client",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "rollspec", path: "../..")],
    targets: [
        .executableTarget(
            name: "rollout-client",
            dependencies: [
                .product(name: "RollspecClient", package: "rollspec"),
                .product(name: "RollspecModel", package: "rollspec"),
            ]),
    ],
    swiftLanguageModes: [.v5]
)

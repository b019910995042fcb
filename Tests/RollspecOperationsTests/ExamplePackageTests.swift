import Foundation
import RollspecClient
import RollspecRoles
import RollspecTesting
import Testing

/// `Examples/rollout-client`, a package of its own that depends on the `RollspecClient` library
/// product by path, as an RL loop's package would: it must build, and against a launched job
/// publish a checkpoint, get its policy confirmed and print every sample it asked for.
@Suite(.serialized) struct ExamplePackageTests {
    static let package = RollspecExecutable.repositoryRoot.appendingPathComponent("Examples/rollout-client")

    /// Runs `arguments` (found on PATH) to the end; its status and what it printed.
    static func run(_ arguments: [String], seconds: Double) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("example-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let handle = try FileHandle(forWritingTo: out)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }

    @Test func theExamplePackageBuildsAndServesItselfFromALaunchedJob() throws {
        let build = try Self.run(["swift", "build", "--package-path", Self.package.path], seconds: 900)
        try #require(build.status == 0, "the example package did not build:\n\(build.output.suffix(3000))")

        let run = try LaunchProcessTests.Run { dir in
            """
            name: example
            runDirectory: \(dir.path)
            workers: 1
            trainers: 0
            learner: {kind: external}
            """
        }
        let checkpoint = run.dir.appendingPathComponent("policy")
        try BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 11).save(to: checkpoint)
        try run.process.run()
        defer { kill(run.process.processIdentifier, SIGTERM); _ = run.finish(seconds: 20) }
        let config = try JobConfig.load(path: run.config.path)
        let binary = Self.package.appendingPathComponent(".build/debug/rollout-client").path
        let example = try Self.run([binary, config.endpoint, checkpoint.path, "104", "105"], seconds: 180)
        #expect(example.status == 0, "\(example.output)\n\(run.text("launch.err"))")
        let lines = example.output.split(separator: "\n").filter { $0.contains(" sample ") && $0.contains("policy v1") }
        #expect(lines.count == 4, "\(example.output)")
    }
}

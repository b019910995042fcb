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

    @Test func theExamplePackageBuildsAndServesItselfFromALaunchedJob() throws {
        let build = try Command.run(["swift", "build", "--package-path", Self.package.path], seconds: 900)
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
        let example = try Command.run([binary, config.endpoint, checkpoint.path, "104", "105"], seconds: 180)
        #expect(example.status == 0, "\(example.output)\n\(run.text("launch.err"))")
        let lines = example.output.split(separator: "\n").filter { $0.contains(" sample ") && $0.contains("policy v1") }
        #expect(lines.count == 4, "\(example.output)")
    }
}

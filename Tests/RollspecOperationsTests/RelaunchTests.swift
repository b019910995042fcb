import Foundation
import RollspecClient
import RollspecRoles
import RollspecTesting
import Testing

/// A job stopped and launched again at once, on the same tcp ports: the bus and metrics
/// connections of the first run leave their ports in TIME_WAIT, and the second launch's
/// preflight and binds must still succeed (issue #15: "port is already in use" with nothing
/// listening).
@Suite(.serialized) struct RelaunchTests {
    typealias Run = LaunchProcessTests.Run

    /// Publishes, collects and scrapes through `config`'s endpoints until it works; true once
    /// trajectories and a scrape both came back.
    static func serve(_ config: JobConfig, seed: UInt64) throws -> Bool {
        let client = try RolloutClient(endpoint: config.endpoint, name: "relaunch-\(seed)")
        defer { client.close() }
        try client.publishPolicy(BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: seed), version: 1)
        guard client.waitForPolicyConfirmation(1, timeout: 30) else { return false }
        client.submit(prompt: [104, 105], n: 2, sampling: config.sampling, seed: seed)
        guard client.collect(count: 2, timeout: 60).count == 2 else { return false }
        let url = try MetricsQuery.url(for: config)
        for _ in 0..<3 { _ = try MetricsQuery.scrape(url: url, by: .policyVersion) }
        return true
    }

    @Test func aJobLaunchedAgainRightAfterStoppingStartsOnTheSamePorts() throws {
        let bus = Int.random(in: 20_000...30_000), metrics = Int.random(in: 30_001...40_000)
        let run = try Run { dir in
            """
            name: relaunch
            runDirectory: \(dir.path)
            endpoint: tcp://127.0.0.1:\(bus)
            workers: 1
            trainers: 0
            learner: {kind: external}
            metrics: {port: \(metrics)}
            sampling: {maxTokens: 8}
            """
        }
        let config = try JobConfig.load(path: run.config.path)
        try run.process.run()
        #expect(try Self.serve(config, seed: 1), "the first run did not serve: \(run.text("launch.err"))")
        kill(run.process.processIdentifier, SIGINT)
        _ = run.finish(seconds: 30)

        // The same config, launched again with no pause.
        let again = Process()
        again.executableURL = try RollspecExecutable.url()
        again.arguments = ["launch", run.config.path]
        let err = run.dir.appendingPathComponent("again.err")
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        again.standardError = try FileHandle(forWritingTo: err)
        again.standardOutput = FileHandle.nullDevice
        try again.run()
        defer {
            kill(again.processIdentifier, SIGTERM)
            again.waitUntilExit()
        }
        let served = try Self.serve(config, seed: 2)
        let said = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        #expect(served && again.isRunning, "the relaunch did not serve: \(said)")
        #expect(!said.contains("already in use"), "\(said)")
    }
}

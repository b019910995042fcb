import Foundation
import RollspecClient
import RollspecLogging
import RollspecTesting
import Testing

/// Whether `python3` can import what the Python client needs; `.ci/run` installs it.
let pythonClientReady = Python.canImport(["zmq", "numpy", "safetensors"])

/// The Python client (`python/`, issue #15) as an RL loop uses it, from source (PYTHONPATH, no
/// install): its own offline checks, peers that never answer or refuse, and a whole launched
/// job with `learner.kind: external` that it drives from publish to acks.
@Suite(.serialized, .enabled(if: pythonClientReady,
                             "needs python3 with pyzmq, numpy and safetensors: pip install pyzmq numpy safetensors google-crc32c"))
struct PythonClientTests {
    static let python = RollspecExecutable.repositoryRoot.appendingPathComponent("python")

    /// Runs `python3 arguments…` with the package on PYTHONPATH; kills it after `seconds`.
    /// - Returns: its exit status and everything it printed.
    static func runPython(_ arguments: [String], seconds: Double) throws -> (status: Int32, output: String) {
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = python.path + (environment["PYTHONPATH"].map { ":" + $0 } ?? "")
        environment["PYTHONUNBUFFERED"] = "1"
        // The real broker some of the scripts start (`rollspec role broker`).
        if let binary = try? RollspecExecutable.url() { environment["ROLLSPEC_BIN"] = binary.path }
        return try Command.run(["python3"] + arguments, environment: environment, seconds: seconds)
    }

    /// The Swift-written wire vectors decode and re-encode to the same bytes in Python; the
    /// numpy CRC-32C fallback equals the native one; the piecewise digest gives the wire
    /// protocol's check values; a checkpoint artifact reads back with the safetensors package.
    @Test func wireVectorsAndCheckpointArtifacts() throws {
        let run = try Self.runPython([Self.python.appendingPathComponent("tests/test_wire.py").path], seconds: 120)
        #expect(run.status == 0 && run.output.contains("6 passed, 0 failed"), "\(run.output)")
    }

    /// An unreachable endpoint (ipc and tcp) and a broker that never answers give a timeout
    /// error naming the endpoint within seconds; an `error` reply is raised naming its reason
    /// and the request; resent trajectories are yielded once and every copy acked, and one
    /// without a request id is left out of the acks; a real
    /// broker's refusals of a request before any policy (`no_policy`) and of an id seen before
    /// are raised as `BrokerError`; a real broker confirms a published policy and refuses an
    /// older one; refusals that two broker restarts in a row made moot keep the request open.
    @Test func unreachableSilentAndRefusingPeers() throws {
        let run = try Self.runPython([Self.python.appendingPathComponent("tests/test_client_peers.py").path], seconds: 90)
        #expect(run.status == 0 && run.output.contains("11 passed, 0 failed"), "\(run.output)")
        #expect(run.output.contains("no broker answered at ipc://"), "\(run.output)")
    }

    /// A real job (broker and two workers on the built-in tiny policy, no learner): the Python
    /// client publishes an HF folder, waits until both workers hold it, receives every
    /// (request, sample) once with finite logprobs and in-vocabulary tokens, publishes a
    /// bfloat16 policy, keeps every sample exactly once across a worker killed mid-request, and
    /// its acks leave the broker nothing to resend.
    @Test func aPythonLoopDrivesAnExternalLearnerJob() throws {
        let port = Int.random(in: 20_000...40_000)
        let run = try LaunchProcessTests.Run { dir in
            """
            name: python-client
            runDirectory: \(dir.path)
            workers: 2
            trainers: 0
            workerBatchSize: 2
            heartbeatIntervalSeconds: 0.2
            heartbeatTimeoutSeconds: 1
            resendTimeoutSeconds: 2
            learner: {kind: external}
            metrics: {port: \(port)}
            """
        }
        try run.process.run()
        defer { kill(run.process.processIdentifier, SIGTERM); _ = run.finish(seconds: 20) }
        let config = try JobConfig.load(path: run.config.path)
        #expect(run.wait(seconds: 30) { run.events("broker").contains(.metricsListening) }, "\(run.text("launch.err"))")
        let script = Self.python.appendingPathComponent("tests/job_check.py").path
        let result = try Self.runPython([script, "--endpoint", config.endpoint,
                                         "--metrics-url", "http://127.0.0.1:\(port)/metrics",
                                         "--processes", run.dir.appendingPathComponent("run/processes.json").path],
                                        seconds: 300)
        print(result.output)
        #expect(result.status == 0 && result.output.contains("5 passed, 0 failed"),
                "\(result.output)\n--- launch.err\n\(run.text("launch.err"))")
    }

    /// On a CURVE job the client connects with a key pair on the broker's allowlist, and a
    /// stranger's key is refused with an error rather than left waiting.
    @Test func curveKeysConnectAndAStrangerIsRefused() throws {
        // Three Z85 key pairs (broker, worker, Python client) from pyzmq.
        let keygen = try Self.runPython(["-c", """
            import json, zmq
            print(json.dumps([[k.decode() for k in zmq.curve_keypair()] for _ in range(3)]))
            """], seconds: 30)
        let lastLine = keygen.output.split(separator: "\n").last.map(String.init) ?? ""
        let keys = try #require(try? JSONDecoder().decode([[String]].self, from: Data(lastLine.utf8)), "\(keygen.output)")
        let (broker, worker, client) = (keys[0], keys[1], keys[2])
        let run = try LaunchProcessTests.Run { dir in
            """
            name: python-curve
            runDirectory: \(dir.path)
            workers: 1
            trainers: 0
            learner: {kind: external}
            metrics: {port: 0}
            security:
              curve: true
              brokerPublicKey: "\(broker[0])"
              brokerSecretKey: "\(broker[1])"
              allowedClientKeys: ["\(worker[0])", "\(client[0])"]
              clientPublicKey: "\(worker[0])"
              clientSecretKey: "\(worker[1])"
            """
        }
        try run.process.run()
        defer { kill(run.process.processIdentifier, SIGTERM); _ = run.finish(seconds: 20) }
        let config = try JobConfig.load(path: run.config.path)
        #expect(run.wait(seconds: 30) { run.events("broker").contains(.brokerListening) }, "\(run.text("launch.err"))")
        let result = try Self.runPython([Self.python.appendingPathComponent("tests/curve_check.py").path,
                                         // KEY=VALUE: a Z85 key may start with "-", which argparse
                                         // would take for an option.
                                         "--endpoint=\(config.endpoint)", "--broker-key=\(broker[0])",
                                         "--public=\(client[0])", "--secret=\(client[1])"], seconds: 180)
        print(result.output)
        #expect(result.status == 0 && result.output.contains("2 passed, 0 failed"),
                "\(result.output)\n--- launch.err\n\(run.text("launch.err"))")
    }
}

import Foundation
import RollspecBus
import RollspecClient
import RollspecLogging
import RollspecModel
import RollspecRoles
import RollspecTesting
import Testing

/// Real processes on a real socket: broker, two workers and the driver, each a `rollspec role`.
/// The tests follow the roles through the events they log (JSON lines), not their wording.
@Suite(.serialized) struct RoleProcessTests {
    /// One job's processes, their logs in a temporary directory; everything is killed on `stop`.
    final class Job {
        let dir: URL
        let configPath: String
        let binary: URL
        var processes: [String: Process] = [:]

        /// - Parameter file: the config's file name; `.yaml` makes the roles parse it as YAML
        ///   (the JSON text is valid YAML).
        init(_ json: (String) -> String, file: String = "job.json") throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            configPath = dir.appendingPathComponent(file).path
            try Data(json("ipc://\(dir.path)/broker.sock").utf8).write(to: URL(fileURLWithPath: configPath))
            binary = try RollspecExecutable.url()
        }

        @discardableResult
        func start(_ name: String, role: String, index: Int = 0) throws -> Process {
            let p = Process()
            p.executableURL = binary
            p.arguments = ["role", role, "--config", configPath, "--index", "\(index)"]
            p.environment = RoleLog.jsonEnvironment
            _ = FileManager.default.createFile(atPath: log(name).path, contents: nil)
            _ = FileManager.default.createFile(atPath: out(name).path, contents: nil)
            p.standardError = try FileHandle(forWritingTo: log(name))
            p.standardOutput = try FileHandle(forWritingTo: out(name))
            try p.run()
            processes[name] = p
            return p
        }

        /// The broker, two workers and the driver: the usual job.
        func startAll() throws {
            try start("broker", role: "broker")
            try start("worker-0", role: "worker", index: 0)
            try start("worker-1", role: "worker", index: 1)
            try start("driver", role: "driver")
        }

        func log(_ name: String) -> URL { dir.appendingPathComponent("\(name).log") }
        /// The events `name` logged so far.
        func events(_ name: String) -> RoleLog { RoleLog(log(name)) }
        func out(_ name: String) -> URL { dir.appendingPathComponent("\(name).out") }
        func text(_ url: URL) -> String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }

        func kill9(_ name: String) {
            guard let p = processes[name] else { return }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }

        /// Waits until `condition` holds or `seconds` pass.
        func wait(seconds: Double, until condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition() { return true }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return condition()
        }

        /// Waits for the driver and decodes its summary line.
        func driverSummary(timeout: Double) throws -> (Driver.Summary, Int32) {
            let driver = try #require(processes["driver"])
            let exited = wait(seconds: timeout) { !driver.isRunning }
            #expect(exited, "driver still running after \(timeout) s; log:\n\(text(log("driver")).suffix(2000))")
            if !exited { kill9("driver") }
            let line = try #require(text(out("driver")).split(separator: "\n").last, "driver printed nothing:\n\(text(log("driver")).suffix(2000))")
            return (try JSONDecoder().decode(Driver.Summary.self, from: Data(line.utf8)), driver.terminationStatus)
        }

        func stop() {
            for p in processes.values where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
            try? FileManager.default.removeItem(at: dir)
        }
    }

    /// Requests the broker's log says it redelivered after a worker died.
    static func redelivered(_ broker: RoleLog) -> Int {
        broker.events(.peerDead).compactMap { $0["redelivered"].flatMap { Int($0) } }.reduce(0, +)
    }

    static func config(requests: Int, samples: Int, maxTokens: Int, draftMidRun: Bool = false,
                       heartbeatTimeout: Double = 3, precision: WeightPrecision = .float32) -> (String) -> String {
        { endpoint in
            """
            {"endpoint": "\(endpoint)", "workers": 2, "workerBatchSize": 2, "models": {"precision": "\(precision.rawValue)"},
             "heartbeatIntervalSeconds": 0.1, "heartbeatTimeoutSeconds": \(heartbeatTimeout), "resendTimeoutSeconds": 10,
             "speculation": {"mode": "auto", "lookahead": 4},
             "sampling": {"temperature": 1, "maxTokens": \(maxTokens)},
             "driver": {"requests": \(requests), "samples": \(samples), "timeoutSeconds": 40,
                        "publishDraft": true, "draftMidRun": \(draftMidRun)}}
            """
        }
    }

    /// With bfloat16 workers too, to which the driver sends the policy as BF16.
    @Test(arguments: [WeightPrecision.float32, .bfloat16])
    func everySampleArrivesExactlyOnce(precision: WeightPrecision) throws {
        let job = try Job(Self.config(requests: 8, samples: 3, maxTokens: 32, precision: precision), file: "job.yaml")
        defer { job.stop() }
        try job.startAll()
        let (summary, status) = try job.driverSummary(timeout: 45)
        #expect(status == 0)
        #expect(summary.ok && summary.received == 24 && summary.missing == 0 && summary.duplicates == 0)
        #expect(summary.policyVersions == ["1": 24])
        #expect(summary.draftVersions == ["1": 24])
        // The policy's bytes at the broker: the built-in policy (driver seed 1) as F32, or as
        // BF16 (half) for bfloat16 workers.
        let dtype: SafeTensorsFile.DType = precision == .bfloat16 ? .bf16 : .f32
        let expected = try CheckpointCodec.encode(BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 1), dtype: dtype).count
        let received = job.events("broker").events(.policyReceived).compactMap { $0["bytes"].flatMap(Int.init) }
        #expect(received == [expected], "\(received), expected \(expected) bytes")
    }

    @Test func killedWorkerRequestsAreRedeliveredAndRestartGetsLatestWeights() throws {
        let job = try Job(Self.config(requests: 100, samples: 2, maxTokens: 128))
        defer { job.stop() }
        try job.startAll()
        // worker-0 has finished a request while the queue is still long: it holds others in flight.
        let started = job.wait(seconds: 30) { job.events("worker-0").contains(.requestDone) }
        #expect(started, "no trajectories arrived:\n\(job.text(job.log("broker")))")
        job.kill9("worker-0")
        try job.start("worker-0b", role: "worker", index: 0)
        let (summary, status) = try job.driverSummary(timeout: 45)
        #expect(status == 0)
        #expect(summary.ok && summary.received == 200 && summary.missing == 0 && summary.duplicates == 0,
                "\(summary)\n\(job.text(job.log("broker")))")
        // Whatever the restarted worker produced was made with the latest policy and draft.
        #expect(summary.policyVersions == ["1": 200])
        #expect(summary.draftVersions == ["1": 200])
        let broker = job.events("broker")
        #expect(Self.redelivered(broker) >= 1, "\(broker.text)")
        let restarted = job.events("worker-0b")
        #expect(restarted.contains(.policyApplied, ["version": "1"]) && restarted.contains(.draftApplied, ["version": "1"]),
                "\(restarted.text)")
    }

    @Test func silentWorkerTimesOutAndTheOtherFinishesItsRequests() throws {
        let job = try Job(Self.config(requests: 100, samples: 2, maxTokens: 128, heartbeatTimeout: 1))
        defer { job.stop() }
        try job.startAll()
        // worker-0 has finished a request while the queue is still long: it holds others in flight.
        let started = job.wait(seconds: 30) { job.events("worker-0").contains(.requestDone) }
        #expect(started, "no trajectories arrived:\n\(job.text(job.log("broker")))")
        job.kill9("worker-0")
        let (summary, status) = try job.driverSummary(timeout: 45)
        #expect(status == 0)
        #expect(summary.ok && summary.received == 200 && summary.duplicates == 0, "\(summary)")
        let broker = job.events("broker")
        #expect(broker.contains(.peerDead, ["peer": "worker-0", "cause": "heartbeat_timeout"]), "\(broker.text)")
        #expect(Self.redelivered(broker) >= 1, "\(broker.text)")
    }

    /// No draft is published by the driver, so the trainer starts from the policy's first layer
    /// and its first candidate beats "no draft" (expected acceptance 0): publication is certain.
    @Test func trainerPublishesABetterDraftAndResumesAfterKill() throws {
        let stateDir = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-trainer-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: stateDir) }
        let job = try Job({ endpoint in
            """
            endpoint: \(endpoint)
            workerBatchSize: 2
            heartbeatIntervalSeconds: 0.1
            sampling: {maxTokens: 64}
            driver: {requests: 60, samples: 2, timeoutSeconds: 40, publishDraft: false}
            trainer: {stateDirectory: \(stateDir.path), minTrajectories: 16, stepsPerRound: 8, batchSize: 8,
                      learningRate: 0.01, minImprovement: 0}
            """
        }, file: "job.yaml")
        defer { job.stop() }
        try job.start("broker", role: "broker")
        try job.start("trainer", role: "trainer")
        try job.start("worker-0", role: "worker", index: 0)
        try job.start("worker-1", role: "worker", index: 1)
        #expect(job.wait(seconds: 10) { job.events("broker").contains(.peerJoined, ["peer": "trainer-0", "peer_role": "trainer"]) })
        try job.start("driver", role: "driver")
        let (summary, status) = try job.driverSummary(timeout: 45)
        #expect(status == 0 && summary.ok, "\(summary)")
        let published = job.wait(seconds: 20) { job.events("broker").contains(.draftReceived, ["version": "1"]) }
        #expect(published, "trainer:\n\(job.text(job.log("trainer")))")
        // The trainer logs after it has sent every chunk and saved its state: it may lag the broker.
        #expect(job.wait(seconds: 10) { job.events("trainer").contains(.draftPublished, ["version": "1"]) })
        // Every worker swaps the trainer's draft in.
        #expect(job.wait(seconds: 10) {
            let reports = job.events("broker").events(.peerVersions, ["peer_policy_version": "1"])
            // The trainer may have published again since: any trainer version counts.
            return (0..<2).allSatisfy { i in reports.contains { $0["peer"] == "worker-\(i)" && $0["peer_draft_version"] != "0" } }
        })
        // A killed trainer comes back from its last publication, not from scratch.
        job.kill9("trainer")
        let last = try #require(job.events("trainer").events(.draftPublished).last?["version"])
        try job.start("trainer-again", role: "trainer")
        #expect(job.wait(seconds: 15) { job.events("trainer-again").contains(.trainerResumed, ["version": last]) },
                "\(job.text(job.log("trainer-again"))) (last published v\(last))")
        #expect(!job.events("trainer-again").contains(.draftAdopted))
    }

    /// Draft v1 is random; draft v2, published mid-run, is a copy of the policy — the best
    /// draft there is. The metrics endpoint, by draft version, shows acceptance going up. (A
    /// fixed controller: a draft as large as the policy never pays, and an adaptive one would
    /// rightly stop drafting with it.)
    @Test func acceptanceGoesUpWhenABetterDraftArrives() throws {
        let port = Int.random(in: 20_000...40_000)
        let job = try Job({ endpoint in
            """
            {"endpoint": "\(endpoint)", "workerBatchSize": 2, "speculation": {"mode": "draft", "lookahead": 4, "controller": "fixed"},
             "sampling": {"maxTokens": 48, "temperature": 0.3}, "metrics": {"port": \(port)},
             "driver": {"requests": 40, "samples": 2, "timeoutSeconds": 60, "draftMidRun": true, "midRunDraft": "policy"}}
            """
        })
        defer { job.stop() }
        try job.startAll()
        let (summary, status) = try job.driverSummary(timeout: 60)
        #expect(status == 0 && summary.ok, "\(summary)")
        #expect((summary.draftVersions["2"] ?? 0) > 0, "\(summary)")
        var rows: [String: AcceptanceRow] = [:]
        let url = URL(string: "http://127.0.0.1:\(port)/metrics")!
        // The workers' last counters ride on their next heartbeats.
        #expect(job.wait(seconds: 10) {
            rows = Dictionary(uniqueKeysWithValues: ((try? MetricsQuery.scrape(url: url, by: .draftVersion).rows) ?? []).map { ($0.key, $0) })
            let generated = rows.values.compactMap(\.generatedTokens).reduce(0, +)
            return generated == summary.tokens
        }, "\(rows)")
        let v1 = try #require(rows["1"]?.stats), v2 = try #require(rows["2"]?.stats)
        #expect(v1.draftTokens > 0 && v2.draftTokens > 0)
        #expect(v2.acceptanceRate > v1.acceptanceRate + 0.2, "draft v1 \(v1.acceptanceRate), v2 \(v2.acceptanceRate)")
        #expect(v2.acceptanceRate > 0.9, "a copy of the policy should be accepted almost always: \(v2.acceptanceRate)")
    }

    @Test func draftPublishedMidRunReachesEveryWorker() throws {
        let job = try Job(Self.config(requests: 24, samples: 2, maxTokens: 64, draftMidRun: true))
        defer { job.stop() }
        try job.startAll()
        let (summary, status) = try job.driverSummary(timeout: 45)
        #expect(status == 0)
        #expect(summary.ok && summary.received == 48 && summary.duplicates == 0)
        #expect((summary.draftVersions["2"] ?? 0) > 0, "\(summary)")
        #expect(summary.draftVersions.keys.allSatisfy { $0 == "1" || $0 == "2" })
        for i in 0..<2 {
            #expect(job.events("worker-\(i)").contains(.draftApplied, ["version": "2"]))
            // The worker reports draft v2 on its next heartbeat, which may come after the driver's
            // last sample.
            #expect(job.wait(seconds: 10) {
                job.events("broker").contains(.peerVersions, ["peer": "worker-\(i)", "peer_policy_version": "1",
                                                              "peer_draft_version": "2"])
            })
        }
    }
}

extension RoleProcessTests {
    /// With CURVE on, a peer whose key is not on the broker's allowlist gets nothing through —
    /// it can neither publish a policy nor submit requests — while allowed peers work.
    @Test func curveAdmitsOnlyAllowListedKeys() throws {
        let broker = try CurveKeyPair.generate(), client = try CurveKeyPair.generate()
        let intruder = try CurveKeyPair.generate()
        func config(_ me: CurveKeyPair, timeout: Double) -> (String) -> String {
            { endpoint in
                """
                {"endpoint": "\(endpoint)", "workers": 1, "workerBatchSize": 2,
                 "heartbeatIntervalSeconds": 0.1, "heartbeatTimeoutSeconds": 3, "resendTimeoutSeconds": 10,
                 "sampling": {"temperature": 1, "maxTokens": 16},
                 "driver": {"requests": 4, "samples": 2, "timeoutSeconds": \(timeout), "publishDraft": false},
                 "security": {"curve": true, "brokerPublicKey": "\(broker.publicKey)", "brokerSecretKey": "\(broker.secretKey)",
                              "allowedClientKeys": ["\(client.publicKey)"],
                              "clientPublicKey": "\(me.publicKey)", "clientSecretKey": "\(me.secretKey)"}}
                """
            }
        }
        let job = try Job(config(client, timeout: 40))
        defer { job.stop() }
        // The intruder's config differs only in its own key pair.
        let intruderConfig = job.dir.appendingPathComponent("intruder.json")
        try Data(config(intruder, timeout: 4)("ipc://\(job.dir.path)/broker.sock").utf8).write(to: intruderConfig)

        try job.start("broker", role: "broker")
        try job.start("worker-0", role: "worker", index: 0)
        // The intruder runs first: its policy and requests must never get through.
        let p = Process()
        p.executableURL = job.binary
        p.arguments = ["role", "driver", "--config", intruderConfig.path, "--index", "7"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let line = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n").last.map(String.init) ?? ""
        let refused = try JSONDecoder().decode(Driver.Summary.self, from: Data(line.utf8))
        #expect(p.terminationStatus != 0)
        #expect(!refused.ok && refused.received == 0)
        #expect(job.events("broker").contains(.connectionRefused))
        #expect(!job.events("worker-0").events.contains { $0.name == .policyApplied || $0.name == .policyRejected },
                "the intruder's policy reached a worker")

        // The allowed driver then runs the job normally.
        try job.start("driver", role: "driver")
        let (summary, status) = try job.driverSummary(timeout: 45)
        #expect(status == 0)
        #expect(summary.ok && summary.received == 8 && summary.duplicates == 0)
    }
}

extension RoleProcessTests {
    /// Real broker and worker processes; the test publishes a feature draft, then drafts forged
    /// to misfit the policy. Each is refused and counted by reason on the metrics endpoint, the
    /// worker keeps serving the first draft, and requests still flow (a refused draft is settled).
    @Test func forgedDraftsAreRefusedCountedAndTheOldDraftKept() throws {
        let port = Int.random(in: 20_000...40_000)
        let job = try Job({ endpoint in
            """
            {"endpoint": "\(endpoint)", "workers": 1, "trainers": 0, "workerBatchSize": 2, "heartbeatIntervalSeconds": 0.1,
             "speculation": {"mode": "draft", "lookahead": 3}, "metrics": {"port": \(port)}}
            """
        })
        defer { job.stop() }
        try job.start("broker", role: "broker")
        try job.start("worker-0", role: "worker", index: 0)
        let config = try JobConfig.load(path: job.configPath)
        let client = try RolloutClient(endpoint: config.endpoint, name: "learner-0", role: .learner, heartbeatIntervalSeconds: 0.1)
        defer { client.close() }
        let policy = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 5)
        var wide = policy.config
        wide.hiddenSize = 48
        wide.headDim = 12
        var bigger = policy.config
        bigger.vocabSize = 300
        try client.publishPolicy(policy, version: 1)
        try client.publishDraft(.eagle(TinyModels.randomFeatureDraft(target: policy, seed: 1).ownTensors), version: 1, policyVersion: 1)
        #expect(job.wait(seconds: 10) { job.events("worker-0").contains(.draftApplied, ["version": "1", "kind": "eagle"]) },
                "\(job.text(job.log("worker-0")))")
        let forged: [(DraftArtifact, RejectionReason)] = [
            (.eagle(TinyModels.randomFeatureDraft(target: TinyModels.randomWeights(config: wide)).ownTensors), .draftWidthMismatch),
            (.eagle(TinyModels.randomFeatureDraft(target: TinyModels.randomWeights(config: bigger)).ownTensors), .draftVocabMismatch),
            (.tokens(TinyModels.randomWeights(config: bigger)), .draftVocabMismatch),
        ]
        for (i, (draft, why)) in forged.enumerated() {
            let version = UInt64(i + 2)
            try client.publishDraft(draft, version: version, policyVersion: 1)
            // Refused for its mismatch, while the worker keeps draft v1.
            #expect(job.wait(seconds: 10) {
                job.events("worker-0").contains(.draftRejected, ["version": "\(version)", "reason": why.rawValue, "draft_version": "1"])
            }, "\(job.text(job.log("worker-0")))")
        }
        // Requests still flow, served with draft v1, which drafts.
        client.submit(prompt: [1, 2, 3], n: 2, sampling: config.sampling, seed: 1)
        let got = client.collect(count: 2, timeout: 20)
        #expect(got.count == 2)
        #expect(got.allSatisfy { $0.draftVersion == 1 && $0.acceptance.draftedTokens > 0 }, "\(got.map(\.acceptance))")
        let url = URL(string: "http://127.0.0.1:\(port)/metrics")!
        var text = ""
        #expect(job.wait(seconds: 10) {
            text = (try? MetricsQuery.fetch(url: url)) ?? ""
            return text.contains(#"rollspec_bus_rejected_messages_total{worker="worker-0",reason="draft_width_mismatch"} 1"#)
                && text.contains(#"rollspec_bus_rejected_messages_total{worker="worker-0",reason="draft_vocab_mismatch"} 2"#)
        }, "\(text)")
    }
}

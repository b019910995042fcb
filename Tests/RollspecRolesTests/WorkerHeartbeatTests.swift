import Foundation
import RollspecBus
import RollspecClient
import RollspecKernels
import RollspecLogging
import RollspecModel
import RollspecRoles
import RollspecTesting
import Testing

/// A real `rollspec role worker` process keeps heartbeating while it receives, reassembles and
/// decodes a large checkpoint: the test plays the broker and timestamps every heartbeat.
@Suite(.serialized) struct WorkerHeartbeatTests {
    /// ~70 MB of F32 weights (contents do not matter here).
    static func largeCheckpoint() throws -> Data {
        let config = LlamaConfig(vocabSize: 16384, hiddenSize: 512, intermediateSize: 1024, numHiddenLayers: 4,
                                 numAttentionHeads: 8, numKeyValueHeads: 4, rmsNormEps: 1e-5, ropeTheta: 10000,
                                 tieWordEmbeddings: true, maxPositionEmbeddings: 512)
        var tensors: [String: FloatBuffer] = [:]
        for (name, shape) in LlamaWeights.expectedTensors(for: config) {
            let buffer = FloatBuffer(count: shape.reduce(1, *))
            for i in stride(from: 0, to: buffer.count, by: 97) { buffer[i] = Float(i % 13) * 0.01 }
            tensors[name] = buffer
        }
        return try CheckpointCodec.encode(LlamaWeights(config: config, tensors: tensors))
    }

    @Test func heartbeatsContinueWhileACheckpointIsReceivedAndDecoded() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-hb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let endpoint = "ipc://\(dir.path)/broker.sock"
        let interval = 0.1
        let configPath = dir.appendingPathComponent("job.json")
        try Data("""
            {"endpoint": "\(endpoint)", "workers": 1, "workerBatchSize": 2,
             "heartbeatIntervalSeconds": \(interval), "heartbeatTimeoutSeconds": 3, "sampling": {"maxTokens": 8}}
            """.utf8).write(to: configPath)

        let context = try ZMQContext()
        let broker = try ZMQSocket(context: context, type: .router)
        try broker.setOption(.sendHighWaterMark(0))
        try broker.setOption(.receiveHighWaterMark(0))
        try broker.bind(endpoint)
        defer { broker.close() }

        let worker = Process()
        worker.executableURL = try RollspecExecutable.url()
        worker.arguments = ["role", "worker", "--config", configPath.path, "--index", "0"]
        worker.environment = RoleLog.jsonEnvironment
        let logURL = dir.appendingPathComponent("worker.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        worker.standardError = try FileHandle(forWritingTo: logURL)
        try worker.run()
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL); worker.waitUntilExit() } }

        let artifact = try Self.largeCheckpoint()
        var poller = ZMQPoller()
        _ = poller.add(broker)
        /// Heartbeats received so far: (time received, policy version reported, the worker's
        /// uptime when it sent it).
        var heartbeats: [(time: Double, policy: UInt64, sentAt: Double)] = []
        var identity: Data?
        func drain(wait milliseconds: Int) throws {
            guard try poller.poll(timeoutMilliseconds: milliseconds)[0].contains(.readable) else { return }
            while let frames = try broker.receive(dontWait: true) {
                guard frames.count == 2, case .heartbeat(let hb) = try Envelope(decoding: frames[1]).body else { continue }
                identity = frames[0]
                heartbeats.append((Self.seconds(), hb.policyVersion, hb.stats.uptimeSeconds))
            }
        }
        let joinBy = Self.seconds() + 30
        while identity == nil, Self.seconds() < joinBy { try drain(wait: 100) }
        let peer = try #require(identity, "the worker never heartbeated")

        // The broker's side of a transfer: 4 MiB chunks, numbered as one sender. Encoded first:
        // heartbeats are timed when this thread reads them, so it must not be busy meanwhile.
        let frames = WeightsChunk.split(artifact).enumerated().map { i, chunk in
            PolicyCheckpointChunk(version: 1, chunk: chunk).encode(sender: "broker#t", sequence: UInt64(i + 1))
        }
        try drain(wait: 0)
        let sent = Self.seconds()
        for frame in frames { _ = try broker.send([peer, frame]) }
        let deadline = Self.seconds() + 120
        while heartbeats.last?.policy != 1, Self.seconds() < deadline { try drain(wait: 20) }
        let log = RoleLog(logURL).text
        let applied = RoleLog(logURL).events(.policyApplied, ["version": "1"]).first
        #expect(heartbeats.last?.policy == 1, "the worker never applied the policy:\n\(log)")
        #expect(applied != nil, "\(log)")

        // Gaps are measured on the worker's own clock (each heartbeat carries its uptime), from
        // the last heartbeat before the transfer: this thread's reading them late on a loaded
        // machine is not the worker's pump stopping.
        let before = heartbeats.lastIndex { $0.time < sent } ?? 0
        let during = heartbeats[before...].map(\.sentAt)
        let gaps = zip(during, during.dropFirst()).map { $1 - $0 }
        let worst = gaps.max() ?? .infinity
        // Interval 0.1 s; a pump blocked by draining the chunks or by decoding shows as a gap of
        // at least the whole receive or decode time. On a loaded machine (CI runs suites side by
        // side on 2 cores) a pump that runs can still wait ~1 s for a core, and the decode
        // stretches as much: the bound is the decode's own time, and 0.75 s at least.
        let decodeMilliseconds = applied?["decode_ms"].flatMap { Double($0) } ?? 0
        let bound = max(0.75, decodeMilliseconds / 1000)
        #expect(worst < bound, "longest heartbeat gap \(worst) s (bound \(bound) s) over \(during.count) heartbeats\n\(log)")
        print("worker heartbeat gaps while receiving \(artifact.count) bytes: max \(String(format: "%.3f", worst)) s, "
              + "\(during.count) heartbeats in \(String(format: "%.2f", (during.last ?? 0) - (during.first ?? 0))) s; "
              + (applied?.message ?? ""))
    }

    static func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

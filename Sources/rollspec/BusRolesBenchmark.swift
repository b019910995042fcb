import Foundation
import RollspecBus
import RollspecClient
import RollspecModel
import RollspecOperations
import RollspecRoles

/// The harness behind `rollspec bench bus-roles`: starts processes, reads their logs with
/// timestamps, and plays the learner / client / fake worker itself.
final class BusRolesBenchmark {
    let chunkBytes: Int
    let layers: Int
    let dir: URL
    private var processes: [LoggedProcess] = []
    private let start = monotonicSeconds()

    init(chunkBytes: Int, layers: Int) {
        self.chunkBytes = chunkBytes
        self.layers = layers
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-bus-roles-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    func stage(_ text: String) {
        print(String(format: "[%7.2f s] ", monotonicSeconds() - start) + text)
        fflush(stdout)
    }

    func stopAll() {
        for p in processes where p.process.isRunning { p.process.terminate(); p.process.waitUntilExit() }
        processes.removeAll()
    }

    /// SmolLM2-135M: vocab 49152, hidden 576, intermediate 1536, 30 layers, 9 heads, 3 kv heads, tied.
    func buildCheckpoint() throws -> Data {
        stage("building a random F32 checkpoint of SmolLM2-135M's shape (\(layers) layers)")
        let config = LlamaConfig(vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: layers,
                                 numAttentionHeads: 9, numKeyValueHeads: 3, rmsNormEps: 1e-5, ropeTheta: 100000,
                                 tieWordEmbeddings: true, maxPositionEmbeddings: 8192)
        let bytes = try CheckpointCodec.encode(BuiltinModels.randomWeights(config: config, seed: 1))
        stage(String(format: "checkpoint: %d bytes (%.1f MB)", bytes.count, Double(bytes.count) / 1e6))
        return bytes
    }

    // MARK: - processes

    func spawn(_ name: String, _ arguments: [String]) throws -> LoggedProcess {
        let p = try LoggedProcess(name: name, executable: Self.executable, arguments: arguments, logDirectory: dir)
        processes.append(p)
        return p
    }

    static var executable: URL {
        URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
    }

    static func freeEndpoint() throws -> String {
        let context = try ZMQContext()
        let probe = try ZMQSocket(context: context, type: .router)
        try probe.bind("tcp://127.0.0.1:*")
        let endpoint = try probe.lastEndpoint
        probe.close()
        return endpoint
    }

    func writeConfig(endpoint: String, workers: Int) throws -> String {
        let path = dir.appendingPathComponent("job-\(UUID().uuidString.prefix(8)).json").path
        // Long heartbeat timeout: decoding 540 MB blocks a worker's heartbeats for seconds.
        let json = """
            {"name": "bus-roles", "runDirectory": "\(dir.path)", "endpoint": "\(endpoint)", "workers": \(workers), "trainers": 0,
             "workerBatchSize": 1, "heartbeatIntervalSeconds": 0.2, "heartbeatTimeoutSeconds": 600, "resendTimeoutSeconds": 600,
             "speculation": {"mode": "suffix"}, "sampling": {"temperature": 1, "maxTokens": 8}}
            """
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func dealer(_ endpoint: String) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setOption(.sendHighWaterMark(0))
        try socket.setOption(.receiveHighWaterMark(0))
        try socket.connect(endpoint)
        return socket
    }

    private lazy var context: ZMQContext = try! ZMQContext()

    func checkpointFrames(_ whole: Data, version: UInt64, sender: String, firstSequence: UInt64) -> [Data] {
        WeightsChunk.split(whole, chunkSize: chunkBytes).enumerated().map { i, chunk in
            PolicyCheckpointChunk(version: version, chunk: chunk).encode(sender: sender, sequence: firstSequence + UInt64(i))
        }
    }

    // MARK: - (a) checkpoint fan-out

    struct FanOut: CustomStringConvertible {
        /// One policy version through the roles, seconds from its first chunk sent.
        struct Round {
            var version: UInt64
            var brokerCompleteSeconds: Double
            var assembledSeconds: Double
            var appliedSeconds: Double
            var decodeMs: [Double]
            var applyMs: [Double]
        }
        var bytes: Int
        var rawSeconds: Double
        var rounds: [Round]
        func gbps(_ s: Double) -> Double { Double(bytes) / s / 1e9 }
        var description: String {
            var text = String(format: """
                (a) checkpoint %.1f MB to 2 workers over tcp loopback, %d versions one after another
                    raw libzmq (publisher → relay process → 2 receiver processes): %.3f s, %.3f GB/s
                """, Double(bytes) / 1e6, rounds.count, rawSeconds, gbps(rawSeconds))
            for r in rounds {
                let note = r.version == 1 ? " (first: fresh pages everywhere)"
                    : r.version == rounds.last?.version ? " (steady state: a policy per RL step)" : ""
                text += String(format: """

                        rollspec v%d%@ (learner → broker → 2 workers)
                          reassembled + digest checked on both: %.3f s, %.3f GB/s = %.2f × raw; broker had the whole after %.3f s
                          decoded and applied on both: %.3f s, %.3f GB/s = %.2f × raw (worker decode ms %@, apply ms %@)
                    """, r.version, note as NSString, r.assembledSeconds, gbps(r.assembledSeconds),
                    rawSeconds / r.assembledSeconds, r.brokerCompleteSeconds, r.appliedSeconds, gbps(r.appliedSeconds),
                    rawSeconds / r.appliedSeconds, r.decodeMs.map { String(format: "%.0f", $0) }.joined(separator: "/") as NSString,
                    r.applyMs.map { String(format: "%.1f", $0) }.joined(separator: "/") as NSString)
            }
            return text
        }
    }

    /// Policy `version` of the run: `whole` with its last byte changed for every version after
    /// the first, so that each has its own digest and the same size.
    static func policy(_ whole: Data, version: UInt64) -> Data {
        guard version > 1 else { return whole }
        var bytes = whole
        bytes[bytes.count - 1] ^= UInt8(truncatingIfNeeded: version &* 0x5B)
        return bytes
    }

    /// Workers of the job (a) starts; (c) reuses them.
    var broker: LoggedProcess?
    var workers: [LoggedProcess] = []
    var learner: ZMQSocket?
    var learnerSequence: UInt64 = 0

    /// Policy versions sent by (a); (c) publishes the next.
    var publishedVersions: UInt64 = 0

    func checkpointFanOut(_ whole: Data, versions: Int) throws -> FanOut {
        // Raw baseline.
        let rawEndpoint = try Self.freeEndpoint()
        stage("(a) raw: starting relay and 2 receivers on \(rawEndpoint)")
        let relay = try spawn("relay-a", ["bench", "bus-helper", "relay", "--endpoint", rawEndpoint, "--receivers", "2"])
        let receivers = try (0..<2).map {
            try spawn("receiver-\($0)", ["bench", "bus-helper", "receive", "--endpoint", rawEndpoint, "--bytes", "\(whole.count)"])
        }
        guard relay.waitForLine(containing: "ready", timeout: 30) != nil else { throw BenchError.timeout("relay ready") }
        let pieces = stride(from: 0, to: whole.count, by: chunkBytes).map { whole.subdata(in: $0..<min($0 + chunkBytes, whole.count)) }
        let publisher = try dealer(rawEndpoint)
        Thread.sleep(forTimeInterval: 0.2)  // let the connection complete before the clock starts
        stage("(a) raw: sending \(pieces.count) frames")
        let rawStart = monotonicSeconds()
        for piece in pieces { _ = try publisher.send(piece) }
        var rawEnd = 0.0
        for r in receivers {
            guard let line = r.waitForLine(containing: "received", timeout: 120) else { throw BenchError.timeout("raw receiver") }
            rawEnd = max(rawEnd, try Self.value(after: "at t=", in: line.text))
        }
        stage(String(format: "(a) raw: both receivers done after %.3f s", rawEnd - rawStart))
        publisher.close()
        for p in [relay] + receivers { p.process.terminate() }

        // Through the roles.
        let endpoint = try Self.freeEndpoint()
        let config = try writeConfig(endpoint: endpoint, workers: 2)
        stage("(a) rollspec: starting broker and 2 workers on \(endpoint)")
        let broker = try spawn("broker", ["role", "broker", "--config", config])
        self.broker = broker
        guard broker.waitForLine(containing: "listening", timeout: 30) != nil else { throw BenchError.timeout("broker") }
        workers = try (0..<2).map { try spawn("worker-\($0)", ["role", "worker", "--config", config, "--index", "\($0)"]) }
        for i in 0..<2 {
            guard broker.waitForLine(containing: "worker-\(i) joined", timeout: 30) != nil else { throw BenchError.timeout("worker-\(i) join") }
        }
        let learner = try dealer(endpoint)
        self.learner = learner
        try sendLearner(Heartbeat(role: .learner, index: 0, status: .ready, credit: 0, policyVersion: 1, draftVersion: 0))
        var rounds: [FanOut.Round] = []
        for version in 1...UInt64(versions) {
            stage("(a) rollspec: encoding chunk frames of policy v\(version) (not timed)")
            let frames = checkpointFrames(Self.policy(whole, version: version), version: version, sender: "learner",
                                          firstSequence: learnerSequence + 1)
            learnerSequence += UInt64(frames.count)
            Thread.sleep(forTimeInterval: 0.2)
            stage("(a) rollspec: sending \(frames.count) chunks of policy v\(version)")
            let t0 = monotonicSeconds()
            for f in frames { _ = try learner.send(f) }
            guard let complete = broker.waitForLine(containing: "policy v\(version) complete", timeout: 300) else {
                throw BenchError.timeout("broker reassembly of v\(version)")
            }
            stage(String(format: "(a) rollspec: broker has policy v%d after %.3f s, forwarding", version, complete.time - t0))
            var round = FanOut.Round(version: version, brokerCompleteSeconds: complete.time - t0, assembledSeconds: 0,
                                     appliedSeconds: 0, decodeMs: [], applyMs: [])
            for w in workers {
                guard let line = w.waitForLine(containing: "applied policy v\(version) (", timeout: 600) else {
                    throw BenchError.timeout("\(w.name) apply of v\(version)")
                }
                round.assembledSeconds = max(round.assembledSeconds, try Self.value(after: "assembled at t=", in: line.text) - t0)
                round.appliedSeconds = max(round.appliedSeconds, try Self.value(after: "applied at t=", in: line.text) - t0)
                round.decodeMs.append(try Self.value(after: "decode ", in: line.text))
                round.applyMs.append(try Self.value(after: "apply ", in: line.text))
                stage("(a) rollspec: \(w.name) " + line.text.drop(while: { $0 != ":" }).dropFirst(2))
            }
            rounds.append(round)
            publishedVersions = version
        }
        return FanOut(bytes: whole.count, rawSeconds: rawEnd - rawStart, rounds: rounds)
    }

    func sendLearner<M: WireMessage>(_ message: M) throws {
        learnerSequence += 1
        _ = try learner!.send(message.encode(sender: "learner", sequence: learnerSequence))
    }

    static func value(after marker: String, in line: String) throws -> Double {
        guard let r = line.range(of: marker) else { throw BenchError.parse(line) }
        let tail = line[r.upperBound...].prefix { $0.isNumber || $0 == "." }
        guard let v = Double(tail) else { throw BenchError.parse(line) }
        return v
    }
}

enum BenchError: Error, CustomStringConvertible {
    case timeout(String), parse(String)
    var description: String {
        switch self {
        case .timeout(let what): "timed out waiting for \(what)"
        case .parse(let line): "could not parse: \(line)"
        }
    }
}

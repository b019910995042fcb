import Foundation
import RollspecBus
import RollspecRuntime
import Testing

/// The broker in-process, driven by hand-made DEALER peers, so that the races the real roles
/// only hit by chance (a trajectory finished twice, a lost ack, a worker that goes silent)
/// happen every time.
@Suite struct BrokerTests {
    /// Runs a broker on its own thread until `stop` (idempotent).
    final class BrokerLoop: @unchecked Sendable {
        private let lock = NSLock()
        private var running = true
        private var stopped = false
        private let done = DispatchSemaphore(value: 0)

        init(_ broker: Broker) {
            Thread.detachNewThread { [self] in
                try? broker.run(while: { self.lock.withLock { self.running } })
                self.done.signal()
            }
        }

        func stop() {
            lock.withLock { running = false }
            if !stopped { stopped = true; done.wait() }
        }
    }

    final class Peer {
        let socket: ZMQSocket
        let name: String
        var sequence: UInt64 = 0
        init(_ context: ZMQContext, _ endpoint: String, _ name: String) throws {
            socket = try ZMQSocket(context: context, type: .dealer)
            try socket.connect(endpoint)
            self.name = name
        }
        func send<M: WireMessage>(_ m: M) throws {
            sequence += 1
            _ = try socket.send(m.encode(sender: name, sequence: sequence))
        }
        /// Everything that arrives within `seconds`.
        func drain(_ seconds: Double) throws -> [WireMessageBody] {
            var out: [WireMessageBody] = []
            let end = Date().addingTimeInterval(seconds)
            var poller = ZMQPoller()
            poller.add(socket)
            while Date() < end {
                if try poller.poll(timeoutMilliseconds: 20)[0].contains(.readable),
                   let frames = try socket.receive(dontWait: true) {
                    out.append(try Envelope(decoding: frames.last!).body)
                }
            }
            return out
        }
        func heartbeat(policy: UInt64, draft: UInt64 = 0, credit: UInt32 = 1) throws {
            try send(Heartbeat(role: .worker, index: 0, status: .ready, credit: credit, policyVersion: policy, draftVersion: draft))
        }
    }

    static func trajectory(_ id: String, _ sample: UInt32) -> Trajectory {
        Trajectory(requestID: id, groupID: "g", sampleIndex: sample, promptTokens: [1], responseTokens: [2, 3],
                   logprobs: [-0.5, -0.25], finishReason: .length, policyVersion: 1, draftVersion: 0)
    }

    static func trajectories(_ bodies: [WireMessageBody]) -> [String] {
        bodies.compactMap { if case .trajectory(let t) = $0 { "\(t.requestID)#\(t.sampleIndex)" } else { nil } }.sorted()
    }

    @Test func creditPolicyFirstDedupResendAndRedelivery() throws {
        var config = JobConfig()
        let socketPath = "\(FileManager.default.temporaryDirectory.path)/rollspec-test-\(UUID().uuidString).sock"
        defer { try? FileManager.default.removeItem(atPath: socketPath) }
        config.endpoint = "ipc://\(socketPath)"
        config.heartbeatIntervalSeconds = 0.1
        config.heartbeatTimeoutSeconds = 1
        config.resendTimeoutSeconds = 1
        let broker = try Broker(config: config)
        let loop = BrokerLoop(broker)
        defer { loop.stop() }

        let context = try ZMQContext()
        let worker = try Peer(context, config.endpoint, "worker-0")
        let client = try Peer(context, config.endpoint, "driver-0")
        try worker.heartbeat(policy: 0)
        let artifact = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        for c in WeightsChunk.split(artifact, chunkSize: 30_000) { try client.send(PolicyCheckpointChunk(version: 1, chunk: c)) }
        // A version-2 transfer whose bytes do not match its digest, and a message that is not one.
        var tampered = WeightsChunk.split(artifact, chunkSize: 30_000)
        tampered[1].bytes[0] ^= 0xFF
        for c in tampered { try client.send(PolicyCheckpointChunk(version: 2, chunk: c)) }
        _ = try client.socket.send(Data("not a message".utf8))
        try client.send(RolloutRequest(requestID: "r0", groupID: "g", promptTokens: [1], n: 2, maxTokens: 2))

        // The worker gets the policy (v1, whole and digest-true; never the tampered v2) and no
        // request until it reports v1.
        let first = try worker.drain(0.5)
        let chunks = first.compactMap { if case .policyCheckpointChunk(let c) = $0 { c } else { nil } }
        #expect(!chunks.isEmpty && chunks.allSatisfy { $0.version == 1 })
        var assembler = ChunkReassembler()
        #expect(try chunks.compactMap { try assembler.add($0.chunk, version: $0.version) } == [artifact])
        #expect(!first.contains { if case .rolloutRequest = $0 { true } else { false } })

        try worker.heartbeat(policy: 1)
        let second = try worker.drain(0.3)
        #expect(second.contains { if case .rolloutRequest(let r) = $0 { r.requestID == "r0" } else { false } })

        // Sample 0 finished twice: the client sees it once. Only sample 0 is acked.
        try worker.send(Self.trajectory("r0", 0))
        try worker.send(Self.trajectory("r0", 0))
        try worker.send(Self.trajectory("r0", 1))
        #expect(Self.trajectories(try client.drain(0.4)) == ["r0#0", "r0#1"])
        try client.send(Ack(sequence: 0, requestID: "r0#0"))
        // After the resend timeout the unacked sample 1 comes again, sample 0 does not.
        let again = Self.trajectories(try client.drain(1.2))
        #expect(again.contains("r0#1") && !again.contains("r0#0"), "\(again)")
        try client.send(Ack(sequence: 0, requestID: "r0#1"))

        // r1 goes to worker-0, which then falls silent; worker-1 gets it after the timeout.
        try worker.heartbeat(policy: 1)
        try client.send(RolloutRequest(requestID: "r1", groupID: "g", promptTokens: [1], n: 1, maxTokens: 2))
        #expect(try worker.drain(0.3).contains { if case .rolloutRequest(let r) = $0 { r.requestID == "r1" } else { false } })
        let other = try Peer(context, config.endpoint, "worker-1")
        var gotR1 = false
        let deadline = Date().addingTimeInterval(4)
        while !gotR1, Date() < deadline {
            try other.heartbeat(policy: 1)
            gotR1 = try other.drain(0.1).contains { if case .rolloutRequest(let r) = $0 { r.requestID == "r1" } else { false } }
        }
        #expect(gotR1)
        // Both finish it: the client still gets it once.
        try worker.send(Self.trajectory("r1", 0))
        try other.send(Self.trajectory("r1", 0))
        #expect(Self.trajectories(try client.drain(0.4)) == ["r1#0"])
        try client.send(Ack(sequence: 0, requestID: "r1#0"))

        loop.stop()
        #expect(broker.rejections["duplicate_trajectory"] == 2)
        #expect(broker.rejections["chunk_digest_mismatch"] == 1)
        #expect(broker.rejections["bad_magic"] + broker.rejections["truncated"] == 1, "\(broker.rejections.counts)")
        #expect(broker.redelivered == 1)
        #expect(broker.resent >= 1)
        worker.socket.close(); other.socket.close(); client.socket.close()
    }
}

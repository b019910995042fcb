import Foundation
import RollspecBus
import RollspecClient
import RollspecRoles
import RollspecTesting
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

    /// A policy checkpoint a worker could load (the broker checks that before it adopts one):
    /// the built-in tiny policy, its bytes varied by `seed`.
    static func policyArtifact(seed: UInt64) -> Data {
        try! CheckpointCodec.encode(BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: seed))
    }

    static func trajectory(_ id: String, _ sample: UInt32) -> Trajectory {
        Trajectory(requestID: id, groupID: "g", sampleIndex: sample, promptTokens: [1], responseTokens: [2, 3],
                   logprobs: [-0.5, -0.25], finishReason: .length, policyVersion: 1, draftVersion: 0)
    }

    static func trajectories(_ bodies: [WireMessageBody]) -> [String] {
        bodies.compactMap { if case .trajectory(let t) = $0 { "\(t.requestID)#\(t.sampleIndex)" } else { nil } }.sorted()
    }

    /// A trainer that reports no progress gets at most `trainer.bufferSize` copies beyond what
    /// it reported taking in; the client still gets every trajectory.
    @Test func aTrainerThatFallsBehindGetsASampleOfTheCopies() throws {
        var config = JobConfig()
        let socketPath = "\(FileManager.default.temporaryDirectory.path)/rollspec-test-\(UUID().uuidString).sock"
        defer { try? FileManager.default.removeItem(atPath: socketPath) }
        config.endpoint = "ipc://\(socketPath)"
        config.trainer.bufferSize = 10
        let broker = try Broker(config: config)
        let loop = BrokerLoop(broker)
        defer { loop.stop() }
        let context = try ZMQContext()
        let worker = try Peer(context, config.endpoint, "worker-0")
        let client = try Peer(context, config.endpoint, "driver-0")
        let trainer = try Peer(context, config.endpoint, "trainer-0")
        func trainerHeartbeat(taken: UInt64) throws {
            try trainer.send(Heartbeat(role: .trainer, index: 0, status: .ready, credit: 0, policyVersion: 1, draftVersion: 0,
                                       stats: .init(requestsCompleted: taken)))
        }
        try trainerHeartbeat(taken: 0)
        try client.send(Heartbeat(role: .learner, index: 0, status: .ready, credit: 0, policyVersion: 0, draftVersion: 0))
        for c in WeightsChunk.split(Self.policyArtifact(seed: 7)) { try client.send(PolicyCheckpointChunk(version: 1, chunk: c)) }
        try worker.heartbeat(policy: 0, credit: 2)
        _ = try worker.drain(0.3)
        try worker.heartbeat(policy: 1, credit: 2)
        for r in ["a", "b"] {
            try client.send(RolloutRequest(requestID: r, groupID: "g", promptTokens: [1], n: 30, maxTokens: 2))
        }
        _ = try worker.drain(0.3)
        for i in 0..<30 { try worker.send(Self.trajectory("a", UInt32(i))) }
        let firstCopies = Self.trajectories(try trainer.drain(0.5))
        #expect(firstCopies.count == 10, "\(firstCopies.count)")
        // The trainer took in those 10: it may be sent 10 more beyond them, no more.
        try trainerHeartbeat(taken: 10)
        _ = try trainer.drain(0.2)
        for i in 0..<30 { try worker.send(Self.trajectory("b", UInt32(i))) }
        #expect(Self.trajectories(try trainer.drain(0.5)).count == 10)
        #expect(Self.trajectories(try client.drain(0.5)).count == 60)
        loop.stop()
        #expect(broker.trainerCopiesSkipped == 40)
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
        // Only a peer that said it is the learner (or a client) may publish the policy.
        try client.send(Heartbeat(role: .learner, index: 0, status: .ready, credit: 0, policyVersion: 0, draftVersion: 0))
        let artifact = Self.policyArtifact(seed: 31)
        for c in WeightsChunk.split(artifact, chunkSize: 30_000) { try client.send(PolicyCheckpointChunk(version: 1, chunk: c)) }
        // A version-2 transfer whose bytes do not match its digest, and a message that is not one.
        var tampered = WeightsChunk.split(artifact, chunkSize: 30_000)
        tampered[1].bytes[tampered[1].bytes.startIndex] ^= 0xFF
        for c in tampered { try client.send(PolicyCheckpointChunk(version: 2, chunk: c)) }
        _ = try client.socket.send(Data("not a message".utf8))
        try client.send(RolloutRequest(requestID: "r0", groupID: "g", promptTokens: [1], n: 2, maxTokens: 2))

        // The worker gets the policy (v1, whole and digest-true) and no request until it reports
        // v1. The tampered v2 reaches it chunk by chunk as it came (cut-through), and its own
        // reassembly refuses it as the broker's did: v1 is the only whole it ever gets.
        let first = try worker.drain(0.5)
        let chunks = first.compactMap { if case .policyCheckpointChunk(let c) = $0 { c } else { nil } }
        #expect(!chunks.isEmpty && chunks.allSatisfy { $0.version == 1 || $0.version == 2 })
        var assembler = ChunkReassembler()
        var wholes: [Data] = [], refusals: [ChunkError] = []
        for c in chunks {
            do { if let whole = try assembler.add(c.chunk, version: c.version) { wholes.append(whole) } } catch let e as ChunkError {
                refusals.append(e)
            }
        }
        #expect(wholes == [artifact])
        #expect(refusals == [.digestMismatch])
        #expect(!first.contains { if case .rolloutRequest = $0 { true } else { false } })

        try worker.heartbeat(policy: 1)
        let second = try worker.drain(0.3)
        #expect(second.contains { if case .rolloutRequest(let r) = $0 { r.requestID == "r0" } else { false } })

        // Sample 0 finished twice: the client sees it once. Only sample 0 is acked.
        try worker.send(Self.trajectory("r0", 0))
        try worker.send(Self.trajectory("r0", 0))
        try worker.send(Self.trajectory("r0", 1))
        #expect(Self.trajectories(try client.drain(0.4)) == ["r0#0", "r0#1"])
        try client.send(Ack(sequence: 0, requestID: "r0", sampleIndex: 0))
        // After the resend timeout the unacked sample 1 comes again, sample 0 does not.
        let again = Self.trajectories(try client.drain(1.2))
        #expect(again.contains("r0#1") && !again.contains("r0#0"), "\(again)")
        try client.send(Ack(sequence: 0, requestID: "r0", sampleIndex: 1))

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
        try client.send(Ack(sequence: 0, requestID: "r1", sampleIndex: 0))

        loop.stop()
        #expect(broker.rejections[.duplicateTrajectory] == 2)
        #expect(broker.rejections[.chunkDigestMismatch] == 1)
        #expect(broker.rejections[.badMagic] + broker.rejections[.truncated] == 1, "\(broker.rejections.counts)")
        #expect(broker.redelivered == 1)
        #expect(broker.resent >= 1)
        worker.socket.close(); other.socket.close(); client.socket.close()
    }

    static func endpoint() -> (String, String) {
        let path = "\(FileManager.default.temporaryDirectory.path)/rollspec-test-\(UUID().uuidString).sock"
        return ("ipc://\(path)", path)
    }

    static func learnerHeartbeat() -> Heartbeat {
        Heartbeat(role: .learner, index: 0, status: .ready, credit: 0, policyVersion: 0, draftVersion: 0)
    }

    /// However many requests go through, a broker keeps no state for the ones delivered and
    /// acked, and remembers only the newest `rememberFinished` ids.
    @Test func retainedStateIsBoundedOnceRequestsAreAcked() throws {
        var config = JobConfig()
        let (endpoint, path) = Self.endpoint()
        defer { try? FileManager.default.removeItem(atPath: path) }
        config.endpoint = endpoint
        config.resendTimeoutSeconds = 60
        let broker = try Broker(config: config, rememberFinished: 50)
        let loop = BrokerLoop(broker)
        defer { loop.stop() }
        let context = try ZMQContext()
        let worker = try Peer(context, endpoint, "worker-0")
        let client = try Peer(context, endpoint, "driver-0")
        try client.send(Self.learnerHeartbeat())
        for c in WeightsChunk.split(Self.policyArtifact(seed: 7)) { try client.send(PolicyCheckpointChunk(version: 1, chunk: c)) }
        try worker.heartbeat(policy: 0, credit: 16)
        _ = try worker.drain(0.3)
        try worker.heartbeat(policy: 1, credit: 16)

        let count = 400
        for i in 0..<count {
            try client.send(RolloutRequest(requestID: "r\(i)", groupID: "g", promptTokens: [1], n: 2, maxTokens: 2))
        }
        var answered = 0, acked = 0
        let deadline = Date().addingTimeInterval(20)
        while acked < 2 * count, Date() < deadline {
            for case .rolloutRequest(let r) in try worker.drain(0.02) {
                for s in 0..<r.n {
                    var t = Self.trajectory(r.requestID, s)
                    t.groupID = r.groupID
                    try worker.send(t)
                }
                answered += 1
            }
            for case .trajectory(let t) in try client.drain(0.02) {
                try client.send(Ack(sequence: 0, sample: t.key))
                acked += 1
            }
        }
        #expect(answered == count && acked == 2 * count)
        // Late copies: of a request still remembered (a duplicate), and of one long forgotten.
        var late = Self.trajectory("r\(count - 1)", 0)
        late.groupID = "g"
        try worker.send(late)
        late.requestID = "r0"
        try worker.send(late)
        #expect(Self.trajectories(try client.drain(0.3)).isEmpty)
        loop.stop()
        let kept = broker.retained
        #expect(kept.requests == 0 && kept.queued == 0 && kept.unacked == 0 && kept.finishedIDs == 50 && kept.peers == 2, "\(kept)")
        #expect(broker.rejections.counts == [.duplicateTrajectory: 1, .unknownRequest: 1])
        worker.socket.close(); client.socket.close()
    }

    /// A worker restarted under the same name starts numbering at 1 again on a new connection:
    /// it is served at once, and the old connection is not believed any more.
    @Test func restartedSenderStartsAfreshAndTheOldConnectionIsRefused() throws {
        var config = JobConfig()
        let (endpoint, path) = Self.endpoint()
        defer { try? FileManager.default.removeItem(atPath: path) }
        config.endpoint = endpoint
        let broker = try Broker(config: config)
        let loop = BrokerLoop(broker)
        defer { loop.stop() }
        let context = try ZMQContext()
        let client = try Peer(context, endpoint, "driver-0")
        try client.send(Self.learnerHeartbeat())
        for c in WeightsChunk.split(Self.policyArtifact(seed: 3)) { try client.send(PolicyCheckpointChunk(version: 1, chunk: c)) }
        let old = try Peer(context, endpoint, "worker-0")
        for _ in 0..<5 { try old.heartbeat(policy: 0) }
        #expect(try old.drain(0.3).contains { if case .policyCheckpointChunk = $0 { true } else { false } })

        let restarted = try Peer(context, endpoint, "worker-0")
        try restarted.heartbeat(policy: 0)  // sequence 1 again
        #expect(try restarted.drain(0.3).contains { if case .policyCheckpointChunk = $0 { true } else { false } })
        try old.heartbeat(policy: 1)
        _ = try restarted.socket.send(Heartbeat(role: .worker, index: 0, status: .ready, credit: 1, policyVersion: 1,
                                                draftVersion: 0).encode(sender: "worker-0", sequence: 1))
        _ = try restarted.drain(0.3)
        loop.stop()
        #expect(broker.rejections.counts == [.supersededConnection: 1, .sequenceReplayed: 1])
        old.socket.close(); restarted.socket.close(); client.socket.close()
    }
}

/// Garbage below the message level — a connection whose ZMTP handshake fails — is dropped
/// inside libzmq; the broker still counts it, by what failed, and exports it.
@Suite struct ConnectionEventTests {
    /// A TCP port nothing listens on right now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = Loopback.address()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(ok)
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Opens a TCP connection to `port`, sends `bytes`, waits a little and closes.
    static func sendRaw(_ bytes: [UInt8], port: Int) throws {
        let fd = try #require(Loopback.connect(port: port))
        defer { close(fd) }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, bytes.count) }
        Thread.sleep(forTimeInterval: 0.3)
    }

    @Test func aHandshakeWithABogusMechanismIsCountedAndExported() throws {
        let port = try Self.freePort()
        var config = JobConfig()
        config.endpoint = "tcp://127.0.0.1:\(port)"
        let broker = try Broker(config: config)
        let loop = BrokerTests.BrokerLoop(broker)
        // A ZMTP 3.0 greeting (signature, version 3.0) that asks for a mechanism nobody has.
        var greeting: [UInt8] = [0xFF] + Array(repeating: 0, count: 8) + [0x7F, 3, 0]
        greeting += Array("BOGUS".utf8) + Array(repeating: 0, count: 15)
        greeting += Array(repeating: 0, count: 32)
        try Self.sendRaw(greeting, port: port)
        // And plain garbage that is no greeting at all.
        try Self.sendRaw(Array(repeating: 0xFF, count: 64) + Array("not zmtp".utf8), port: port)
        let deadline = Date().addingTimeInterval(10)
        var text = ""
        while Date() < deadline {
            text = broker.metrics.prometheusText()
            if text.contains("rollspec_bus_connection_events_total{event=\"handshake_failed") { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        loop.stop()
        let failed = broker.connectionEvents.filter { $0.key != .disconnected }.values.reduce(0, +)
        #expect(failed >= 1, "\(broker.connectionEvents)")
        #expect(text.contains("# TYPE rollspec_bus_connection_events_total counter"), "\(text)")
        #expect(text.contains("rollspec_bus_connection_events_total{event=\"handshake_failed"), "\(text)")
        // Nothing of it reached the message level.
        #expect(broker.rejections.total == 0)
    }
}

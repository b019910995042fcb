import Foundation
import RollspecBus
import RollspecClient
import RollspecModel
import RollspecRoles
import Testing

/// The broker answers what it refuses (docs/wire-protocol.md §6): a real broker over real
/// ZeroMQ sockets, driven by hand-made DEALER peers (`BrokerTests.Peer`) and by `RolloutClient`.
@Suite struct BrokerErrorReplyTests {
    typealias Peer = BrokerTests.Peer

    /// A broker on a fresh ipc endpoint, running until the returned loop is stopped.
    static func start(_ configure: (inout JobConfig) -> Void = { _ in }) throws -> (Broker, BrokerTests.BrokerLoop, String, String) {
        var config = JobConfig()
        let (endpoint, path) = BrokerTests.endpoint()
        config.endpoint = endpoint
        configure(&config)
        let broker = try Broker(config: config)
        return (broker, BrokerTests.BrokerLoop(broker), endpoint, path)
    }

    static func errors(_ bodies: [WireMessageBody]) -> [ErrorMessage] {
        bodies.compactMap { if case .error(let e) = $0 { e } else { nil } }
    }

    /// The one `error` reply `peer` gets within half a second; the test fails if there is not
    /// exactly one.
    static func onlyError(to peer: Peer) throws -> ErrorMessage {
        let errors = errors(try peer.drain(0.5))
        try #require(errors.count == 1, "\(errors)")
        return errors[0]
    }

    static func requests(_ bodies: [WireMessageBody]) -> [String] {
        bodies.compactMap { if case .rolloutRequest(let r) = $0 { r.requestID } else { nil } }
    }

    static func request(_ id: String) -> RolloutRequest {
        RolloutRequest(requestID: id, groupID: "g", promptTokens: [1], n: 1, maxTokens: 2)
    }

    /// `learner` says it is the learner and publishes policy v1.
    static func publishPolicy(from learner: Peer) throws {
        try learner.send(BrokerTests.learnerHeartbeat())
        for c in WeightsChunk.split(BrokerTests.policyArtifact(seed: 7)) { try learner.send(PolicyCheckpointChunk(version: 1, chunk: c)) }
    }

    /// A worker that holds policy v1 and takes `credit` requests.
    static func readyWorker(_ context: ZMQContext, _ endpoint: String, credit: UInt32 = 4) throws -> Peer {
        let worker = try Peer(context, endpoint, "worker-0")
        try worker.heartbeat(policy: 0, credit: credit)
        _ = try worker.drain(0.3)
        try worker.heartbeat(policy: 1, credit: credit)
        return worker
    }

    @Test func aDuplicateRequestIDIsAnsweredWithBadRequestNamingTheReasonAndTheID() throws {
        let (broker, loop, endpoint, path) = try Self.start()
        defer { loop.stop(); try? FileManager.default.removeItem(atPath: path) }
        let context = try ZMQContext()
        let client = try Peer(context, endpoint, "my-loop")
        try Self.publishPolicy(from: client)
        try client.send(Self.request("r1"))
        try client.send(Self.request("r1"))
        let offending = client.sequence
        let error = try Self.onlyError(to: client)
        #expect(error.code == .badRequest)
        #expect(error.message == "duplicate_request: request r1 from my-loop was seen before", "\(error.message)")
        #expect(error.sequence == offending)
        #expect(error.reason == .duplicateRequest)
        loop.stop()
        #expect(broker.rejections.counts == [.duplicateRequest: 1] && broker.errorRepliesSent == 1)
        client.socket.close()
    }

    /// A request before any policy is refused, not queued: a worker that joins after the policy
    /// never gets it, while a request made after the policy reaches it.
    @Test func aRequestBeforeAnyPolicyIsRefusedWithNoPolicyAndNeverDispatched() throws {
        let (broker, loop, endpoint, path) = try Self.start()
        defer { loop.stop(); try? FileManager.default.removeItem(atPath: path) }
        let context = try ZMQContext()
        let client = try Peer(context, endpoint, "early-bird")
        try client.send(BrokerTests.learnerHeartbeat())
        try client.send(Self.request("early"))
        let offending = client.sequence
        let error = try Self.onlyError(to: client)
        #expect(error.code == .badRequest)
        #expect(error.message == "no_policy: no policy has been published yet; publish one (policy_checkpoint_chunk) before submitting",
                "\(error.message)")
        #expect(error.sequence == offending)

        for c in WeightsChunk.split(BrokerTests.policyArtifact(seed: 7)) { try client.send(PolicyCheckpointChunk(version: 1, chunk: c)) }
        let worker = try Self.readyWorker(context, endpoint)
        try client.send(Self.request("later"))
        #expect(Self.requests(try worker.drain(0.5)) == ["later"])
        // The id of the refused request was not taken: it can be submitted again, now served.
        try client.send(Self.request("early"))
        try worker.heartbeat(policy: 1, credit: 4)
        #expect(Self.requests(try worker.drain(0.5)) == ["early"])
        #expect(Self.errors(try client.drain(0.1)).isEmpty)
        loop.stop()
        #expect(broker.rejections.counts == [.noPolicy: 1])
        client.socket.close(); worker.socket.close()
    }

    @Test func aPolicyChunkFromAWorkerIsAnsweredUnauthorized() throws {
        let (broker, loop, endpoint, path) = try Self.start()
        defer { loop.stop(); try? FileManager.default.removeItem(atPath: path) }
        let context = try ZMQContext()
        let worker = try Peer(context, endpoint, "worker-0")
        try worker.heartbeat(policy: 0)
        try worker.send(PolicyCheckpointChunk(version: 9, chunk: WeightsChunk.split(Data("evil".utf8))[0]))
        let offending = worker.sequence
        let error = try Self.onlyError(to: worker)
        #expect(error.code == .unauthorized)
        #expect(error.message.hasPrefix("unauthorized_policy: policy chunk from worker-0, a worker"), "\(error.message)")
        #expect(error.sequence == offending)
        loop.stop()
        #expect(broker.rejections.counts == [.unauthorizedPolicy: 1])
        worker.socket.close()
    }

    /// Bytes that are no message get `malformed` without a sequence number; an `error` from a
    /// peer (well-formed, or damaged but typed as one) is never answered.
    @Test func garbageIsAnsweredMalformedWithoutASequenceAndErrorsAreNeverAnswered() throws {
        let (broker, loop, endpoint, path) = try Self.start()
        defer { loop.stop(); try? FileManager.default.removeItem(atPath: path) }
        let context = try ZMQContext()
        let peer = try Peer(context, endpoint, "noisy-0")
        _ = try peer.socket.send(Data("not a rollspec message".utf8))
        let error = try Self.onlyError(to: peer)
        #expect(error.code == .malformed)
        #expect(error.message.hasPrefix("bad_magic: "), "\(error.message)")
        #expect(error.sequence == nil)

        // An error message, then one whose checksum is broken: refused (out of the blue, and
        // unreadable) or ignored, but never answered.
        try peer.send(ErrorMessage(code: .internalError, message: "ping", sequence: 1))
        var damaged = ErrorMessage(code: .badRequest, message: "pong").encode(sender: "noisy-0", sequence: 99)
        damaged[damaged.count - 1] ^= 0xFF
        _ = try peer.socket.send(damaged)
        #expect(Self.errors(try peer.drain(0.5)).isEmpty)
        loop.stop()
        #expect(broker.rejections.counts == [.badMagic: 1, .checksum: 1], "\(broker.rejections.counts)")
        #expect(broker.errorRepliesSent == 1)
        peer.socket.close()
    }

    /// A flood of garbage gets at most the per-connection budget of replies (all of it is
    /// still counted), and the same connection is served normally right after.
    @Test func aFloodOfGarbageGetsCappedRepliesAndTheBrokerStillServes() throws {
        let (broker, loop, endpoint, path) = try Self.start()
        defer { loop.stop(); try? FileManager.default.removeItem(atPath: path) }
        let context = try ZMQContext()
        let flooder = try Peer(context, endpoint, "flooder-0")
        try flooder.socket.setOption(.sendHighWaterMark(0))
        let started = Date()
        for i in 0..<1000 { _ = try flooder.socket.send(Data("garbage \(i)".utf8)) }
        let replies = Self.errors(try flooder.drain(1.0))
        // Each second of the flood may use up one budget; it takes well under one here.
        let seconds = Date().timeIntervalSince(started)
        let cap = Broker.errorRepliesPerSecond
        #expect(replies.count >= cap && replies.count <= cap * Int(seconds.rounded(.up)),
                "\(replies.count) replies in \(seconds) s, cap \(cap)/s")
        #expect(replies.allSatisfy { $0.code == .malformed && $0.sequence == nil })

        // The exported counters say the same (the broker refreshes them every 0.1 s).
        let sent = "rollspec_bus_error_replies_total{outcome=\"sent\"} \(replies.count)\n"
        let suppressed = "rollspec_bus_error_replies_total{outcome=\"suppressed\"} \(1000 - replies.count)\n"
        let deadline = Date().addingTimeInterval(5)
        var text = ""
        repeat {
            text = broker.metrics.prometheusText()
            if text.contains(sent) && text.contains(suppressed) { break }
            Thread.sleep(forTimeInterval: 0.1)
        } while Date() < deadline
        #expect(text.contains(sent) && text.contains(suppressed), "\(text)")

        try Self.publishPolicy(from: flooder)
        let worker = try Self.readyWorker(context, endpoint)
        try flooder.send(Self.request("after-flood"))
        #expect(Self.requests(try worker.drain(0.5)) == ["after-flood"])
        try worker.send(BrokerTests.trajectory("after-flood", 0))
        #expect(BrokerTests.trajectories(try flooder.drain(0.5)) == ["after-flood#0"])
        loop.stop()
        #expect(broker.rejections.total == 1000)
        #expect(broker.errorRepliesSent == replies.count && broker.errorRepliesSent + broker.errorRepliesSuppressed == 1000)
        flooder.socket.close(); worker.socket.close()
    }

    /// `RolloutClient` keeps and counts the refusal of a duplicate id, ends a `collect` that
    /// waits early, and throws it from `collectUnlessRefused`, naming the request.
    @Test func theRolloutClientSurfacesADuplicateIDRefusal() throws {
        let (broker, loop, endpoint, path) = try Self.start()
        defer { loop.stop(); try? FileManager.default.removeItem(atPath: path) }
        let client = try RolloutClient(endpoint: endpoint, name: "my-loop", role: .learner, heartbeatIntervalSeconds: 0.1)
        defer { client.close() }
        try client.publishPolicy(BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 5), version: 1)
        let sampling = JobConfig().sampling
        client.submit(prompt: [1, 2], n: 1, sampling: sampling, requestID: "dup-1")
        client.submit(prompt: [1, 2], n: 1, sampling: sampling, requestID: "dup-1")

        let start = Date()
        do {
            let got = try client.collectUnlessRefused(count: 1, timeout: 20)
            Issue.record("no refusal thrown; got \(got.count) trajectories")
        } catch {
            #expect(error.code == .badRequest && error.reason == .duplicateRequest)
            #expect(error.requestID == "dup-1")
            #expect(error.message.contains("request dup-1 from my-loop was seen before"), "\(error)")
            #expect(error.description.contains("rollout request dup-1") && error.description.contains("bad_request"), "\(error)")
        }
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(client.refusals.map(\.requestID) == ["dup-1"] && client.refusalCount == 1)
        #expect(client.metrics().value("rollspec_client_refusals_total") == 1)

        // A plain collect waiting when the next refusal arrives stops waiting.
        client.submit(prompt: [1, 2], n: 1, sampling: sampling, requestID: "dup-1")
        let waited = Date()
        #expect(client.collect(count: 1, timeout: 20).isEmpty)
        #expect(Date().timeIntervalSince(waited) < 10)
        #expect(client.refusalCount == 2)
        loop.stop()
        #expect(broker.rejections.counts == [.duplicateRequest: 2])
    }

    /// A policy publish is confirmed with an `ack` of the chunk that completed it, once the
    /// artifact is whole and digest-true; a tampered version gets an `error` and no ack.
    @Test func aCompletePolicyIsConfirmedAndATamperedOneIsRefusedInstead() throws {
        let (broker, loop, endpoint, path) = try Self.start()
        defer { loop.stop(); try? FileManager.default.removeItem(atPath: path) }
        let context = try ZMQContext()
        let learner = try Peer(context, endpoint, "learner")
        try Self.publishPolicy(from: learner)
        let acks = try learner.drain(0.5).compactMap { if case .ack(let a) = $0 { a } else { nil } }
        #expect(acks == [Ack(sequence: learner.sequence)], "\(acks)")

        var chunk = WeightsChunk.split(BrokerTests.policyArtifact(seed: 8))[0]
        chunk.bytes[chunk.bytes.startIndex] ^= 1
        try learner.send(PolicyCheckpointChunk(version: 2, chunk: chunk))
        let replies = try learner.drain(0.5)
        #expect(replies.allSatisfy { if case .ack = $0 { false } else { true } }, "\(replies)")
        #expect(Self.errors(replies).map(\.reason) == [.chunkDigestMismatch])
        loop.stop()
        #expect(broker.rejections.counts == [.chunkDigestMismatch: 1])
        learner.socket.close()
    }

    /// `RolloutClient.waitForPolicyConfirmation` returns once the broker confirmed the version.
    @Test func theRolloutClientWaitsForItsPolicyToBeConfirmed() throws {
        let (_, loop, endpoint, path) = try Self.start()
        defer { loop.stop(); try? FileManager.default.removeItem(atPath: path) }
        let client = try RolloutClient(endpoint: endpoint, name: "my-loop", role: .learner, heartbeatIntervalSeconds: 0.1)
        defer { client.close() }
        #expect(client.confirmedPolicyVersion == 0)
        #expect(!client.waitForPolicyConfirmation(1, timeout: 0.3), "confirmed before anything was published")
        try client.publishPolicy(BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 5), version: 1)
        #expect(client.waitForPolicyConfirmation(1, timeout: 10))
        #expect(client.confirmedPolicyVersion == 1 && client.refusalCount == 0)
    }

    /// A learner that published policy v1 and asked for request "mine" (`mine` samples), another
    /// client ("evaluator") that asked for "theirs" (one sample), and a ready worker that was
    /// given both.
    static func twoClients(_ endpoint: String, mine: UInt32) throws -> (learner: Peer, worker: Peer, other: Peer) {
        let context = try ZMQContext()
        let learner = try Peer(context, endpoint, "learner")
        try publishPolicy(from: learner)
        let worker = try readyWorker(context, endpoint)
        let other = try Peer(context, endpoint, "evaluator")
        try other.send(Heartbeat(role: .client, index: 0, status: .ready, credit: 0, policyVersion: 0, draftVersion: 0))
        try learner.send(RolloutRequest(requestID: "mine", groupID: "g", promptTokens: [1], n: mine, maxTokens: 2))
        try other.send(request("theirs"))
        #expect(Set(requests(try worker.drain(0.5))) == ["mine", "theirs"])
        return (learner, worker, other)
    }

    /// With a learner and another client connected, each request's trajectories go to the
    /// client that submitted it, and only that client may ack them; the other's ack is refused.
    @Test func trajectoriesGoToTheClientThatAskedAndOnlyItMayAckThem() throws {
        let (broker, loop, endpoint, path) = try Self.start()
        defer { loop.stop(); try? FileManager.default.removeItem(atPath: path) }
        let (learner, worker, other) = try Self.twoClients(endpoint, mine: 1)
        try worker.send(BrokerTests.trajectory("mine", 0))
        try worker.send(BrokerTests.trajectory("theirs", 0))
        // The learner heartbeats after the other client, as a learner does every second: the
        // last to speak does not take the other's trajectories.
        try learner.send(BrokerTests.learnerHeartbeat())
        #expect(BrokerTests.trajectories(try learner.drain(0.5)) == ["mine#0"])
        #expect(BrokerTests.trajectories(try other.drain(0.1)) == ["theirs#0"])

        try learner.send(Ack(sequence: 0, requestID: "theirs", sampleIndex: 0))
        let refusal = try Self.onlyError(to: learner)
        #expect(refusal.reason == .unauthorizedAck && refusal.message.contains("the request is evaluator's"), "\(refusal.message)")
        try other.send(Ack(sequence: 0, requestID: "theirs", sampleIndex: 0))
        try learner.send(Ack(sequence: 0, requestID: "mine", sampleIndex: 0))
        _ = try other.drain(0.3)
        loop.stop()
        #expect(broker.rejections.counts == [.unauthorizedAck: 1])
        #expect(broker.retained.unacked == 0 && broker.retained.requests == 0, "\(broker.retained)")
        for p in [learner, worker, other] { p.socket.close() }
    }

    /// An `acks` message is applied whole or not at all: one entry of another client's request
    /// (or a sender that is not a client) refuses all of it, and what it named stays unconfirmed
    /// and is resent. A proper one confirms every entry at once.
    @Test func acksAreAppliedWholeOrNotAtAll() throws {
        let (broker, loop, endpoint, path) = try Self.start { $0.resendTimeoutSeconds = 0.5 }
        defer { loop.stop(); try? FileManager.default.removeItem(atPath: path) }
        let (learner, worker, other) = try Self.twoClients(endpoint, mine: 2)
        for (id, i) in [("mine", 0), ("mine", 1), ("theirs", 0)] { try worker.send(BrokerTests.trajectory(id, UInt32(i))) }
        try learner.send(BrokerTests.learnerHeartbeat())
        #expect(Set(BrokerTests.trajectories(try learner.drain(0.3))) == ["mine#0", "mine#1"])
        #expect(BrokerTests.trajectories(try other.drain(0.1)) == ["theirs#0"])
        func entry(_ id: String, _ i: UInt32) -> Acks.Entry { Acks.Entry(sequence: 0, sample: SampleKey(requestID: id, sampleIndex: i)) }

        try learner.send(Acks([entry("mine", 0), entry("theirs", 0)]))
        let refusal = try Self.onlyError(to: learner)
        #expect(refusal.reason == .unauthorizedAck && refusal.message.contains("the request is evaluator's"), "\(refusal.message)")
        try worker.send(Acks([entry("mine", 1)]))
        #expect(try Self.onlyError(to: worker).reason == .unauthorizedAck)
        // Neither applied anything: both of the learner's samples come again after the timeout.
        #expect(Set(BrokerTests.trajectories(try learner.drain(1.0))) == ["mine#0", "mine#1"])

        try learner.send(Acks([entry("mine", 0), entry("mine", 1)]))
        try other.send(Acks([entry("theirs", 0)]))
        #expect(BrokerTests.trajectories(try learner.drain(1.0)).isEmpty, "confirmed samples were resent")
        loop.stop()
        #expect(broker.rejections.counts == [.unauthorizedAck: 2])
        #expect(broker.retained.unacked == 0 && broker.retained.requests == 0, "\(broker.retained)")
        for p in [learner, worker, other] { p.socket.close() }
    }

    /// A digest-true policy whose tensors do not fit its config is refused at the broker
    /// (`checkpoint_mismatch`, naming the tensor) and the policy it had stays. Its chunks went on
    /// to the worker as they came (cut-through), and the worker's own check refuses the whole
    /// by the same rule, so nothing of it is applied anywhere.
    @Test func aPolicyNoWorkerCouldLoadIsRefusedAndNotKept() throws {
        let (broker, loop, endpoint, path) = try Self.start()
        defer { loop.stop(); try? FileManager.default.removeItem(atPath: path) }
        let context = try ZMQContext()
        let learner = try Peer(context, endpoint, "learner")
        try Self.publishPolicy(from: learner)
        let worker = try Self.readyWorker(context, endpoint)
        _ = try worker.drain(0.3)
        _ = try learner.drain(0.1)

        let weights = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 9)
        let shapes = Dictionary(LlamaWeights.expectedTensors(for: weights.config).map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        let tensors = weights.namedTensors.filter { $0.name != "model.norm.weight" }
            .map { (name: $0.name, shape: shapes[$0.name]!, data: $0.buffer) }
        let config = String(decoding: try JSONEncoder().encode(weights.config), as: UTF8.self)
        let artifact = try SafeTensorsWriter.encode(tensors, metadata: [CheckpointCodec.configKey: config])
        for c in WeightsChunk.split(artifact, chunkSize: 30_000) { try learner.send(PolicyCheckpointChunk(version: 2, chunk: c)) }
        let error = try Self.onlyError(to: learner)
        #expect(error.reason == .checkpointMismatch && error.code == .badRequest)
        #expect(error.message.contains("policy v2") && error.message.contains("model.norm.weight"), "\(error.message)")
        #expect(error.sequence == learner.sequence)
        let forwarded = try worker.drain(0.3).compactMap { if case .policyCheckpointChunk(let c) = $0 { c } else { nil } }
        var assembler = ChunkReassembler()
        let whole = try #require(try forwarded.compactMap { try assembler.add($0.chunk, version: $0.version) }.first)
        #expect(throws: ModelError.self) { try CheckpointCodec.decode(whole, name: "policy v2") }
        // Requests are still served from policy v1.
        try learner.send(Self.request("still-v1"))
        try worker.heartbeat(policy: 1, credit: 4)
        #expect(Self.requests(try worker.drain(0.5)) == ["still-v1"])
        loop.stop()
        #expect(broker.rejections.counts == [.checkpointMismatch: 1])
        learner.socket.close(); worker.socket.close()
    }

    /// Policy chunks go on to the workers as they arrive; a worker that joins mid-transfer gets
    /// the old policy at once, the rest of the transfer as it comes, and the chunks it missed
    /// when the whole is complete: every chunk once, and the whole assembles.
    @Test func aWorkerJoiningMidTransferGetsEveryChunkOnce() throws {
        let (_, loop, endpoint, path) = try Self.start()
        defer { loop.stop(); try? FileManager.default.removeItem(atPath: path) }
        let context = try ZMQContext()
        let learner = try Peer(context, endpoint, "learner")
        try Self.publishPolicy(from: learner)
        let early = try Self.readyWorker(context, endpoint)
        _ = try early.drain(0.3)
        let artifact = BrokerTests.policyArtifact(seed: 21)
        let chunks = WeightsChunk.split(artifact, chunkSize: 30_000)
        #expect(chunks.count >= 4)
        for c in chunks.prefix(chunks.count / 2) { try learner.send(PolicyCheckpointChunk(version: 2, chunk: c)) }
        // Cut-through: the first half reaches the early worker before the rest is sent.
        let firstHalf = try early.drain(0.4).compactMap { if case .policyCheckpointChunk(let c) = $0 { c } else { nil } }
        #expect(firstHalf.map(\.chunk.index) == chunks.prefix(chunks.count / 2).map(\.index))
        let late = try Peer(context, endpoint, "worker-1")
        try late.heartbeat(policy: 0)
        _ = try late.drain(0.2)
        for c in chunks.dropFirst(chunks.count / 2) { try learner.send(PolicyCheckpointChunk(version: 2, chunk: c)) }
        for (worker, before) in [(early, firstHalf), (late, [])] {
            let got = before + (try worker.drain(0.5).compactMap { if case .policyCheckpointChunk(let c) = $0 { c } else { nil } })
            let v2 = got.filter { $0.version == 2 }
            #expect(v2.map(\.chunk.index).sorted() == chunks.map(\.index))
            var assembler = ChunkReassembler()
            #expect(try got.compactMap { try assembler.add($0.chunk, version: $0.version) }.last == artifact)
        }
        learner.socket.close(); early.socket.close(); late.socket.close()
    }
}

import Foundation
import RollspecBus
import RollspecClient
import RollspecModel
import RollspecRoles
import Testing

/// `RolloutClient` against a real in-process broker with a hand-driven worker, and against a
/// bare ROUTER socket standing in for a broker that misbehaves (sends a trajectory twice) or
/// restarts (`StandIn`).
@Suite struct RolloutClientTests {
    static func endpoint() -> (String, String) {
        let path = "\(FileManager.default.temporaryDirectory.path)/rollspec-client-\(UUID().uuidString).sock"
        return ("ipc://\(path)", path)
    }

    /// A bare ROUTER socket standing in for a broker, on a fresh ipc path: what the client
    /// sends arrives here, and what the test sends goes out numbered as a broker's would.
    final class StandIn {
        let endpoint: String
        private let path: String
        private let context: ZMQContext
        private let router: ZMQSocket
        private var sequence: UInt64 = 0

        init() throws {
            (endpoint, path) = RolloutClientTests.endpoint()
            context = try ZMQContext()
            router = try ZMQSocket(context: context, type: .router)
            try router.bind(endpoint)
        }

        deinit {
            router.close()
            try? FileManager.default.removeItem(atPath: path)
        }

        /// Sends `m` to connection `identity` as `sender`, under the next sequence number (1 first).
        func send(_ m: some WireMessage, to identity: Data, as sender: String = "broker") throws {
            sequence += 1
            _ = try router.send([identity, m.encode(sender: sender, sequence: sequence)])
        }

        /// Every message the client sends within `seconds`, with its connection.
        func receive(_ seconds: Double) throws -> [(identity: Data, envelope: Envelope)] {
            var out: [(Data, Envelope)] = []
            try receive(seconds) { out.append(($0, $1)); return false }
            return out
        }

        /// The first message within `seconds` that `matches`, with its connection.
        func next(within seconds: Double = 3, _ matches: (WireMessageBody) -> Bool) throws -> (identity: Data, envelope: Envelope)? {
            var found: (Data, Envelope)?
            try receive(seconds) { identity, envelope in
                guard matches(envelope.body) else { return false }
                found = (identity, envelope)
                return true
            }
            return found
        }

        /// Hands each arriving message to `take` until it returns true or `seconds` pass.
        private func receive(_ seconds: Double, _ take: (Data, Envelope) throws -> Bool) throws {
            let end = Date().addingTimeInterval(seconds)
            var poller = ZMQPoller()
            poller.add(router)
            while Date() < end {
                guard try poller.poll(timeoutMilliseconds: 20)[0].contains(.readable),
                      let f = try router.receive(dontWait: true) else { continue }
                if try take(f[0], try Envelope(decoding: f[1])) { return }
            }
        }
    }

    /// The worker's answer to `r`'s sample `s`.
    static func answer(_ r: RolloutRequest, _ s: UInt32) -> Trajectory {
        Trajectory(requestID: r.requestID, groupID: r.groupID, sampleIndex: s, promptTokens: r.promptTokens,
                   responseTokens: [65, 10], logprobs: [-0.5, -0.25], finishReason: .stop, policyVersion: 1, draftVersion: 1,
                   acceptance: AcceptanceCounts(drafts: 1, draftedTokens: 2, acceptedTokens: 1))
    }

    @Test func publishesSubmitsAndReceivesEachTrajectoryOnceThroughTheBroker() async throws {
        var config = JobConfig()
        let (endpoint, path) = Self.endpoint()
        defer { try? FileManager.default.removeItem(atPath: path) }
        config.endpoint = endpoint
        config.resendTimeoutSeconds = 0.5
        let broker = try Broker(config: config)
        let loop = BrokerTests.BrokerLoop(broker)
        defer { loop.stop() }

        let client = try RolloutClient(endpoint: endpoint, name: "learner-0", role: .learner, heartbeatIntervalSeconds: 0.1)
        client.chunkSize = 16 << 10
        let policy = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 5)
        let draft = BuiltinModels.randomWeights(config: BuiltinModels.draftConfig(), seed: 6)
        try client.publishPolicy(policy, version: 1)
        try client.publishDraft(draft, version: 1, policyVersion: 1, acceptance: 0.5)

        // The worker gets both artifacts whole: they decode to the weights published.
        let context = try ZMQContext()
        let worker = try BrokerTests.Peer(context, endpoint, "worker-0")
        var policyChunks = ChunkReassembler(), draftChunks = ChunkReassembler()
        var policyBytes: Data?, draftBytes: Data?
        let deadline = Date().addingTimeInterval(5)
        while policyBytes == nil || draftBytes == nil, Date() < deadline {
            try worker.heartbeat(policy: 0, credit: 4)
            for body in try worker.drain(0.1) {
                if case .policyCheckpointChunk(let c) = body, let whole = try policyChunks.add(c.chunk, version: c.version) { policyBytes = whole }
                if case .draftWeightsChunk(let c) = body, let whole = try draftChunks.add(c.chunk, version: c.draftVersion) { draftBytes = whole }
            }
        }
        let received = try CheckpointCodec.decode(try #require(policyBytes))
        #expect(received.config == policy.config && received.embedding.array == policy.embedding.array)
        #expect(try CheckpointCodec.decode(try #require(draftBytes)).layers[0].wq.array == draft.layers[0].wq.array)

        // Two requests of two samples; the worker sends one sample twice (the broker drops it).
        let a = client.submit(prompt: [1, 2], n: 2, sampling: config.sampling, stopTokens: [10], seed: 3, groupID: "g")
        let b = client.submit(prompt: [3], n: 2, sampling: config.sampling, stopTokens: [10])
        try worker.heartbeat(policy: 1, draft: 1, credit: 4)
        var requests: [RolloutRequest] = []
        let end = Date().addingTimeInterval(5)
        while requests.count < 2, Date() < end {
            for case .rolloutRequest(let r) in try worker.drain(0.1) { requests.append(r) }
        }
        #expect(Set(requests.map(\.requestID)) == [a, b])
        let first = try #require(requests.first { $0.requestID == a })
        #expect(first.promptTokens == [1, 2] && first.n == 2 && first.stopTokens == [10])
        #expect(first.seed == 3 && first.groupID == "g")
        for r in requests { for s in 0..<r.n { try worker.send(Self.answer(r, s)) } }
        try worker.send(Self.answer(first, 0))
        let got = client.collect(count: 4, timeout: 5)
        #expect(Set(got.map { "\($0.requestID)#\($0.sampleIndex)" }) == ["\(a)#0", "\(a)#1", "\(b)#0", "\(b)#1"])

        // The async sequence gives the next ones.
        let c = client.submit(prompt: [4], n: 1, sampling: config.sampling)
        var third: RolloutRequest?
        while third == nil, Date() < end.addingTimeInterval(5) {
            try worker.heartbeat(policy: 1, draft: 1, credit: 4)
            for case .rolloutRequest(let r) in try worker.drain(0.1) { third = r }
        }
        try worker.send(Self.answer(try #require(third), 0))
        var iterator = client.trajectories.makeAsyncIterator()
        #expect(await iterator.next()?.requestID == c)

        // Everything was acked at once: nothing comes back after the resend timeout.
        #expect(client.collect(count: 1, timeout: 1).isEmpty)
        #expect(broker.resent == 0 && client.duplicates == 0)
        let metrics = client.metrics()
        #expect(metrics.value("rollspec_client_trajectories_total") == 5 && metrics.value("rollspec_client_send_failures_total") == 0)
        client.close()
        worker.socket.close()
    }

    /// Policies published back to back arrive whole and as published, though the client
    /// writes each into the bytes of the version two before, whose chunks may still be queued.
    @Test func policiesPublishedBackToBackArriveAsPublished() throws {
        let broker = try StandIn()
        let client = try RolloutClient(endpoint: broker.endpoint, name: "learner-0", role: .learner)
        defer { client.close() }
        client.chunkSize = 1 << 10
        let policies = (1...6).map { BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: UInt64(20 + $0)) }
        for (i, policy) in policies.enumerated() { try client.publishPolicy(policy, version: UInt64(i + 1)) }
        var assemblers: [UInt64: ChunkReassembler] = [:], wholes: [UInt64: Data] = [:]
        _ = try broker.next(within: 10) { body in
            guard case .policyCheckpointChunk(let c) = body else { return false }
            var r = assemblers[c.version] ?? ChunkReassembler()
            do {
                if let whole = try r.add(c.chunk, version: c.version) { wholes[c.version] = whole }
            } catch {
                Issue.record("policy v\(c.version), chunk \(c.chunk.index): \(error)")
            }
            assemblers[c.version] = r
            return wholes.count == policies.count
        }
        for (i, policy) in policies.enumerated() {
            let received = try CheckpointCodec.decode(try #require(wholes[UInt64(i + 1)]))
            #expect(received.embedding.array == policy.embedding.array && received.layers[1].wDown.array == policy.layers[1].wDown.array)
        }
    }

    /// A trajectory without a request id (forged: no broker sends one) names nothing to confirm:
    /// the client leaves it out of its `acks` (an entry must name a request), instead of trapping
    /// on it, and confirms the rest.
    @Test func aTrajectoryWithoutARequestIDIsLeftOutOfTheAcks() async throws {
        let broker = try StandIn()
        let client = try RolloutClient(endpoint: broker.endpoint, name: "rl-loop")
        defer { client.close() }
        try client.publishPolicy(BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 1), version: 1)
        let identity = try #require(try broker.receive(0.5).first?.identity)
        let r = RolloutRequest(requestID: "r1", groupID: "g", promptTokens: [1], n: 1, maxTokens: 4)
        var nameless = Self.answer(r, 0)
        nameless.requestID = ""
        try broker.send(nameless, to: identity)
        try broker.send(Self.answer(r, 0), to: identity)
        let acks = try broker.receive(0.5).compactMap { if case .acks(let a) = $0.envelope.body { a.entries } else { nil } }.flatMap { $0 }
        #expect(acks.map(\.sample) == [SampleKey(requestID: "r1", sampleIndex: 0)])
        #expect(client.metrics().value("rollspec_client_trajectories_total") == 2)
    }

    /// A broker that sends the same trajectory twice: the client delivers it once, confirms both
    /// copies by (request, sample), and heartbeats before anything else.
    @Test func dropsDuplicatesAcksEveryCopyAndHeartbeatsFirst() async throws {
        let broker = try StandIn()
        func receive(_ seconds: Double) throws -> [(identity: Data, body: WireMessageBody)] {
            try broker.receive(seconds).map { ($0.identity, $0.envelope.body) }
        }

        let client = try RolloutClient(endpoint: broker.endpoint, name: "rl-loop")
        try client.publishPolicy(BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 1), version: 1)
        let arrived = try receive(0.5)
        let identity = try #require(arrived.first?.identity)
        guard case .heartbeat(let hb) = arrived.first?.body else { Issue.record("first message: \(String(describing: arrived.first))"); return }
        #expect(hb.role == .client)
        #expect(arrived.contains { if case .policyCheckpointChunk = $0.body { true } else { false } })

        let r = RolloutRequest(requestID: "r7", groupID: "g", promptTokens: [1], n: 2, maxTokens: 4)
        for t in [Self.answer(r, 0), Self.answer(r, 0), Self.answer(r, 1)] { try broker.send(t, to: identity) }
        var iterator = client.trajectories.makeAsyncIterator()
        let first = await iterator.next(), second = await iterator.next()
        #expect(first?.sampleIndex == 0 && second?.sampleIndex == 1)
        // Confirmed in `acks` messages (as many as the client's reads of its socket took).
        let acks = try receive(0.5).compactMap { if case .acks(let a) = $0.body { a.entries } else { nil } }.flatMap { $0 }
        #expect(acks.map(\.sample) == [0, 0, 1].map { SampleKey(requestID: "r7", sampleIndex: $0) })
        #expect(acks.map(\.sequence) == [1, 2, 3])
        #expect(client.duplicates == 1)

        // A request of its own: a copy that arrives after all its samples did is dropped too
        // (the client remembers finished requests, not every sample key it ever saw).
        client.submit(prompt: [1], n: 2, sampling: JobConfig().sampling, requestID: "r8")
        let asked = try receive(0.5).compactMap { if case .rolloutRequest(let q) = $0.body { q } else { nil } }
        let r8 = try #require(asked.first)
        for t in [Self.answer(r8, 0), Self.answer(r8, 1), Self.answer(r8, 1), Self.answer(r8, 0)] {
            try broker.send(t, to: identity)
        }
        let own = [await iterator.next(), await iterator.next()].compactMap { $0?.sampleIndex }
        #expect(own.sorted() == [0, 1])
        _ = try receive(0.5)
        #expect(client.duplicates == 3 && client.received == 4)

        // A reader waiting when the client closes gets the end of the sequence.
        let waiting = Task { [client] () async -> Trajectory? in
            var it = client.trajectories.makeAsyncIterator()
            return await it.next()
        }
        try await Task.sleep(nanoseconds: 100_000_000)
        client.close()
        #expect(await waiting.value == nil)
        #expect(client.collect(count: 1, timeout: 0.1).isEmpty)
    }

    /// Two broker restarts in a row, as a broker killed twice mid-step sees them. broker#two
    /// refuses the copy of the request that was still queued before the client heard of it
    /// (`no_policy`), then the client's resend as one it already holds (`duplicate_request`).
    /// Neither closes the request: when broker#three greets, the client sends it a third time,
    /// and neither refusal is reported as one.
    @Test func refusalsOfCopiesARestartMadeMootKeepTheRequestForTheNextRestart() throws {
        let broker = try StandIn()
        let isR1 = { (b: WireMessageBody) in if case .rolloutRequest(let r) = b { r.requestID == "r1" } else { false } }
        let greeting = Heartbeat(role: .broker, index: 0, status: .ready, credit: 0, policyVersion: 0, draftVersion: 0)

        let client = try RolloutClient(endpoint: broker.endpoint, name: "rl-loop")
        defer { client.close() }
        let identity = try #require(try broker.next { if case .heartbeat = $0 { true } else { false } }).identity
        try broker.send(greeting, to: identity, as: "broker#one")
        client.submit(prompt: [1], n: 2, sampling: JobConfig().sampling, requestID: "r1")
        let queued = try #require(try broker.next(isR1)).envelope

        try broker.send(greeting, to: identity, as: "broker#two")
        try broker.send(ErrorMessage(code: .badRequest, reason: .noPolicy, message: "no policy has been published yet",
                                     sequence: queued.sequence), to: identity, as: "broker#two")
        let resent = try #require(try broker.next(isR1), "no resend after the first restart").envelope
        try broker.send(ErrorMessage(code: .badRequest, reason: .duplicateRequest, message: "request r1 from rl-loop was seen before",
                                     sequence: resent.sequence), to: identity, as: "broker#two")

        try broker.send(greeting, to: identity, as: "broker#three")
        guard case .rolloutRequest(let r) = try #require(try broker.next(isR1), "no resend after the second restart").envelope.body
        else { return }
        for s in 0..<r.n { try broker.send(Self.answer(r, s), to: identity, as: "broker#three") }
        let got = try client.collectUnlessRefused(count: 2, timeout: 5)
        #expect(got.map(\.sampleIndex).sorted() == [0, 1])
        #expect(client.refusals.isEmpty && client.refusalCount == 2, "\(client.refusals)")
    }
}

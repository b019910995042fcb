import Foundation
import RollspecBus
@testable import RollspecClient
import RollspecModel
@testable import RollspecRoles
import Testing

/// Thousands of bad messages thrown at a real broker over real ZeroMQ sockets, between the
/// valid traffic of a worker and a client: each must be refused under its reason and counted,
/// none applied, and the valid traffic must still be served exactly once.
@Suite(.serialized) struct BrokerFuzzTests {
    typealias BrokerLoop = BrokerTests.BrokerLoop

    /// A DEALER that sends well-formed messages under its own name, or any bytes at all.
    final class Conn {
        let socket: ZMQSocket
        let name: String
        var sequence: UInt64 = 0
        /// Bytes of the messages the broker's sequence check has taken from us, newest last.
        var accepted: [Data] = []
        /// What arrived and has not been looked at yet.
        var inbox: [WireMessageBody] = []

        init(_ context: ZMQContext, _ endpoint: String, _ name: String) throws {
            socket = try ZMQSocket(context: context, type: .dealer)
            try socket.setOption(.sendHighWaterMark(0))
            try socket.connect(endpoint)
            self.name = name
        }

        /// Sends `m` with the next sequence number, as us (the broker's sequence check takes
        /// it, whatever it does with it afterwards).
        func send<M: WireMessage>(_ m: M) throws {
            sequence += 1
            let bytes = m.encode(sender: name, sequence: sequence)
            accepted.append(bytes)
            try raw([bytes])
        }

        /// The bytes `m` would be sent as, without sending; the sequence number is used up.
        func encode<M: WireMessage>(_ m: M, as sender: String? = nil) -> Data {
            sequence += 1
            return m.encode(sender: sender ?? name, sequence: sequence)
        }

        func raw(_ frames: [Data]) throws { #expect(try socket.send(frames)) }

        /// Receives into `inbox` until `done` holds or `seconds` pass; false on timeout.
        @discardableResult
        func receive(for seconds: Double = 5, until done: ([WireMessageBody]) -> Bool) throws -> Bool {
            let end = Date().addingTimeInterval(seconds)
            var poller = ZMQPoller()
            poller.add(socket)
            while !done(inbox) {
                guard Date() < end else { return false }
                if try poller.poll(timeoutMilliseconds: 10)[0].contains(.readable) {
                    while let frames = try socket.receive(dontWait: true) {
                        inbox.append(try Envelope(decoding: frames.last!).body)
                    }
                }
            }
            return true
        }

        func take<T>(_ pick: (WireMessageBody) -> T?) -> [T] {
            var out: [T] = [], rest: [WireMessageBody] = []
            for m in inbox { if let t = pick(m) { out.append(t) } else { rest.append(m) } }
            inbox = rest
            return out
        }
    }

    static func policyChunks(_ bodies: [WireMessageBody]) -> [PolicyCheckpointChunk] {
        bodies.compactMap { if case .policyCheckpointChunk(let c) = $0 { c } else { nil } }
    }

    static func draftChunks(_ bodies: [WireMessageBody]) -> [DraftWeightsChunk] {
        bodies.compactMap { if case .draftWeightsChunk(let c) = $0 { c } else { nil } }
    }

    /// The policy and draft a peer was sent, reassembled: (policy version, bytes, draft version, bytes).
    static func weights(_ bodies: [WireMessageBody]) throws -> (UInt64, Data, UInt64, Data)? {
        var p = ChunkReassembler(), d = ChunkReassembler()
        var policy: (UInt64, Data)?, draft: (UInt64, Data)?
        for c in policyChunks(bodies) { if let whole = try p.add(c.chunk, version: c.version) { policy = (c.version, whole) } }
        for c in draftChunks(bodies) { if let whole = try d.add(c.chunk, version: c.draftVersion) { draft = (c.draftVersion, whole) } }
        guard let policy, let draft else { return nil }
        return (policy.0, policy.1, draft.0, draft.1)
    }

    static func request(_ id: String, n: UInt32) -> RolloutRequest {
        RolloutRequest(requestID: id, groupID: "g-\(id)", promptTokens: [1, 2, 3], n: n, maxTokens: 4)
    }

    static func trajectory(for r: RolloutRequest, sample: UInt32) -> Trajectory {
        Trajectory(requestID: r.requestID, groupID: r.groupID, sampleIndex: sample, promptTokens: r.promptTokens,
                   responseTokens: [7, 8], logprobs: [-0.5, -0.25], finishReason: .length, policyVersion: 1, draftVersion: 1)
    }

    static func heartbeat(_ role: BusRole, credit: UInt32 = 0, policy: UInt64 = 0, draft: UInt64 = 0) -> Heartbeat {
        Heartbeat(role: role, index: 0, status: .ready, credit: credit, policyVersion: policy, draftVersion: draft)
    }

    /// `bytes` with the CRC-32C trailer recomputed (after a deliberate header edit).
    static func resealed(_ bytes: Data) -> Data {
        var b = bytes
        let crc = CRC32C.checksum(b.prefix(b.count - 4))
        b.replaceSubrange(b.count - 4..<b.count, with: withUnsafeBytes(of: crc.littleEndian) { Data($0) })
        return b
    }

    static func put16(_ v: UInt16, at offset: Int, in bytes: inout Data) {
        bytes[offset] = UInt8(v & 0xFF)
        bytes[offset + 1] = UInt8(v >> 8)
    }

    @Test func thousandsOfBadMessagesAreCountedNeverAppliedAndTrafficFlows() throws {
        var config = JobConfig()
        let socketPath = "\(FileManager.default.temporaryDirectory.path)/rollspec-fuzz-\(UUID().uuidString).sock"
        defer { try? FileManager.default.removeItem(atPath: socketPath) }
        config.endpoint = "ipc://\(socketPath)"
        // Nobody times out or is resent to during the run: every delivery is counted exactly.
        config.heartbeatTimeoutSeconds = 60
        config.resendTimeoutSeconds = 60
        let broker = try Broker(config: config)
        let loop = BrokerLoop(broker)
        defer { loop.stop() }
        let started = Date()

        let context = try ZMQContext()
        let client = try Conn(context, config.endpoint, "driver-0")
        let worker = try Conn(context, config.endpoint, "worker-0")
        let idle = try Conn(context, config.endpoint, "worker-1")  // a worker that gets no requests
        let intruder = try Conn(context, config.endpoint, "intruder-0")  // never claims a role until the end
        let conns = [client, worker, idle, intruder]

        // The real policy and draft, and the client's own bad transfers of later versions.
        let policyBytes = BrokerTests.policyArtifact(seed: 50)
        let draftBytes = Data((0..<30_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) })
        let policyV1 = WeightsChunk.split(policyBytes, chunkSize: 20_000).map { PolicyCheckpointChunk(version: 1, chunk: $0) }
        let draftV1 = WeightsChunk.split(draftBytes, chunkSize: 20_000).map {
            DraftWeightsChunk(draftVersion: 1, policyVersion: 1, acceptanceRate: 0.5, chunk: $0)
        }
        try client.send(Self.heartbeat(.learner))
        for c in policyV1 { try client.send(c) }
        for c in draftV1 { try client.send(c) }
        try worker.send(Self.heartbeat(.worker, credit: 4))
        try idle.send(Self.heartbeat(.worker))
        try intruder.send(MetricsSnapshot(timestampUnixNanos: 1, samples: []))
        for w in [worker, idle] {
            var got: (UInt64, Data, UInt64, Data)?
            #expect(try w.receive { got = try? Self.weights($0); return got != nil }, "\(w.name) got no weights")
            #expect(got?.0 == 1 && got?.1 == policyBytes && got?.2 == 1 && got?.3 == draftBytes)
            w.inbox.removeAll()
            try w.send(Self.heartbeat(.worker, credit: w === worker ? 4 : 0, policy: 1, draft: 1))
        }
        // A request the worker holds until the end: trajectories naming it are judged while it is
        // surely in flight on `worker` and on nobody else.
        let held = Self.request("held", n: 3)
        try client.send(held)
        #expect(try worker.receive { $0.contains { if case .rolloutRequest(let r) = $0 { r.requestID == "held" } else { false } } })
        worker.inbox.removeAll()

        var rng = SplitMix64(seed: 20_251_129)
        var expected: [RejectionReason: UInt64] = [:]
        expected[.unauthorizedMetrics] = 1  // the intruder's snapshot, sent before it claimed a role
        var cases = 0
        func bad(_ reason: RejectionReason) { expected[reason, default: 0] += 1; cases += 1 }
        var served: [RolloutRequest] = [held]
        var receivedRequests: [String] = ["held"]
        var delivered: [SampleKey] = []  // as the client received them
        var evilVersion: UInt64 = 1000
        var clientPolicyVersion: UInt64 = 1, clientDraftVersion: UInt64 = 1
        let limit = Broker.wireLimits.maxMessageSize

        /// A valid message of some type from `c`, for the wire-level corruptions.
        func sample(_ c: Conn) -> Data {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: c.encode(Self.heartbeat(.worker))
            case 1: c.encode(Self.request("x\(rng.next() % 1000)", n: 2))
            case 2: c.encode(Self.trajectory(for: held, sample: 0))
            default: c.encode(policyV1[0])
            }
        }

        /// One bad case, chosen at random; records the reason the broker must give.
        func oneBadCase() throws {
            let c = conns[Int.random(in: 0..<conns.count, using: &rng)]
            switch Int.random(in: 0..<27, using: &rng) {
            case 0:  // truncated anywhere, down to nothing
                let m = sample(c)
                try c.raw([m.prefix(Int.random(in: 0..<m.count, using: &rng))])
                bad(.truncated)
            case 1, 2:  // one bit flipped where only the checksum can tell (flags, sequence, sender, payload, trailer)
                var m = sample(c)
                let spots = Array(8..<18) + Array(23..<m.count)
                m[spots.randomElement(using: &rng)!] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
                try c.raw([m])
                bad(.checksum)
            case 3:
                var m = sample(c)
                m[Int.random(in: 0..<4, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                try c.raw([m])
                bad(.badMagic)
            case 4:
                var m = sample(c)
                Self.put16(UInt16.random(in: 2...UInt16.max, using: &rng), at: 4, in: &m)
                try c.raw([m])
                bad(.unsupportedVersion)
            case 5:
                var m = sample(c)
                Self.put16([0, UInt16.random(in: 9...UInt16.max, using: &rng)].randomElement(using: &rng)!, at: 6, in: &m)
                try c.raw([Self.resealed(m)])
                bad(.unknownType)
            case 6:
                var m = sample(c)
                Self.put16(UInt16.random(in: 1...UInt16.max, using: &rng), at: 8, in: &m)
                try c.raw([Self.resealed(m)])
                bad(.unknownFlags)
            case 7:  // a header that claims more than the limit, in a small frame
                var m = sample(c)
                let claimed = UInt32.random(in: UInt32(limit)...UInt32.max, using: &rng)
                m.replaceSubrange(18..<22, with: withUnsafeBytes(of: claimed.littleEndian) { Data($0) })
                try c.raw([m])
                bad(.tooLarge)
            case 8:  // random bytes (an empty frame among them); never starting with "R"
                var m = Data((0..<Int.random(in: 0..<200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
                if !m.isEmpty, m[0] == 0x52 { m[0] = 0 }
                try c.raw([m])
                bad(m.count >= 4 ? .badMagic : .truncated)
            case 9:  // extra frames before or after a valid message
                let junk = (0..<Int.random(in: 1...3, using: &rng)).map { _ in Data("frame".utf8) }
                try c.raw(Bool.random(using: &rng) ? junk + [sample(c)] : [sample(c)] + junk)
                bad(.frameCount)
            case 10:  // the last message again, byte for byte
                guard let last = c.accepted.last else { return try oneBadCase() }
                try c.raw([last])
                bad(.sequenceReplayed)
            case 11:  // an older message again
                guard c.accepted.count >= 2 else { return try oneBadCase() }
                try c.raw([c.accepted[Int.random(in: 0..<c.accepted.count - 1, using: &rng)]])
                bad(.sequenceOutOfOrder)
            case 12:  // a fresh message numbered below the last one taken
                guard let last = c.accepted.last, let header = try? EnvelopeHeader(last), header.sequence >= 2 else {
                    return try oneBadCase()
                }
                let m = Self.heartbeat(.worker).encode(sender: c.name, sequence: UInt64.random(in: 1..<header.sequence, using: &rng))
                try c.raw([m])
                bad(.sequenceOutOfOrder)
            case 13:  // speaking for another peer: the classic is a worker publishing "the client's" policy
                let victim = conns.filter { $0 !== c }.randomElement(using: &rng)!
                evilVersion += 1
                let evil = PolicyCheckpointChunk(version: evilVersion, chunk: WeightsChunk.split(Data("evil".utf8))[0])
                let m = Bool.random(using: &rng) ? c.encode(evil, as: victim.name) : c.encode(Ack(sequence: 1, requestID: "held"), as: victim.name)
                try c.raw([m])
                bad(.senderMismatch)
            case 14:  // a whole, digest-true policy from a worker or a peer without a role
                let from = [worker, idle, intruder].randomElement(using: &rng)!
                evilVersion += 1
                try from.send(PolicyCheckpointChunk(version: evilVersion, chunk: WeightsChunk.split(Data("evil".utf8))[0]))
                bad(.unauthorizedPolicy)
            case 15:
                let from = [worker, idle, intruder].randomElement(using: &rng)!
                evilVersion += 1
                try from.send(DraftWeightsChunk(draftVersion: evilVersion, policyVersion: 1, acceptanceRate: 1,
                                                chunk: WeightsChunk.split(Data("evil".utf8))[0]))
                bad(.unauthorizedDraft)
            case 16:  // a trajectory from the client or a peer without a role
                try [client, intruder].randomElement(using: &rng)!.send(Self.trajectory(for: held, sample: 0))
                bad(.unauthorizedTrajectory)
            case 17:
                try [worker, idle, intruder].randomElement(using: &rng)!.send(Ack(sequence: 1, requestID: "held", sampleIndex: UInt32(rng.next() % 3)))
                bad(.unauthorizedAck)
            case 18:
                try [worker, idle].randomElement(using: &rng)!.send(Self.request("evil-\(rng.next())", n: 1))
                bad(.unauthorizedRequest)
            case 19:  // a worker that says it is the learner, a client that says it is a worker
                if Bool.random(using: &rng) { try worker.send(Self.heartbeat(.learner)) } else { try client.send(Self.heartbeat(.worker, credit: 9, policy: 1, draft: 1)) }
                bad(.roleConflict)
            case 20:
                try c.send(Self.heartbeat(.broker))
                bad(.roleInvalid)
            case 21:
                try worker.send(Trajectory(requestID: "ghost-\(rng.next())", groupID: "g", sampleIndex: 0, promptTokens: [1],
                                           responseTokens: [], logprobs: [], finishReason: .stop, policyVersion: 1, draftVersion: 1))
                bad(.unknownRequest)
            case 22:
                try worker.send(Self.trajectory(for: held, sample: UInt32.random(in: 3...UInt32.max, using: &rng)))
                bad(.badSampleIndex)
            case 23:  // the held request, answered by a worker it was not given to, or with another prompt
                if Bool.random(using: &rng) {
                    try idle.send(Self.trajectory(for: held, sample: 0))
                    bad(.trajectoryNotAssigned)
                } else {
                    var t = Self.trajectory(for: held, sample: 1)
                    t.promptTokens = [9, 9]
                    try worker.send(t)
                    bad(.trajectoryMismatch)
                }
            case 24:  // a trajectory or request the broker has seen (finished and pruned, or not)
                guard let r = served.dropFirst().randomElement(using: &rng) else { return try oneBadCase() }
                if Bool.random(using: &rng) {
                    try worker.send(Self.trajectory(for: r, sample: UInt32.random(in: 0..<r.n, using: &rng)))
                    bad(.duplicateTrajectory)
                } else {
                    try client.send(r)
                    bad(.duplicateRequest)
                }
            case 25:  // the client's own bad transfers: stale versions, or bytes that miss their digest
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: try client.send(policyV1.randomElement(using: &rng)!); bad(.chunkStaleVersion)
                case 1: try client.send(draftV1.randomElement(using: &rng)!); bad(.chunkStaleVersion)
                case 2:
                    clientPolicyVersion += 1
                    var chunk = WeightsChunk.split(policyBytes)[0]
                    chunk.bytes[chunk.bytes.startIndex + Int.random(in: 0..<chunk.bytes.count, using: &rng)] ^= 0x40
                    try client.send(PolicyCheckpointChunk(version: clientPolicyVersion, chunk: chunk))
                    bad(.chunkDigestMismatch)
                default:
                    clientDraftVersion += 1
                    var chunk = WeightsChunk.split(draftBytes)[0]
                    chunk.bytes[chunk.bytes.startIndex + Int.random(in: 0..<chunk.bytes.count, using: &rng)] ^= 0x40
                    try client.send(DraftWeightsChunk(draftVersion: clientDraftVersion, policyVersion: 1, acceptanceRate: 0.9, chunk: chunk))
                    bad(.chunkDigestMismatch)
                }
            default:  // a sequence number the broker never saw, but from the wrong peer: forged ack
                try c.raw([c.encode(Ack(sequence: 1, requestID: "held"), as: conns.first { $0 !== c }!.name)])
                bad(.senderMismatch)
            }
        }

        /// The worker answers every request it has received; the client takes and acks what
        /// comes. False (and a recorded issue) if the traffic stalled.
        func serve(until id: String) throws -> Bool {
            guard try worker.receive(until: { $0.contains { if case .rolloutRequest(let r) = $0 { r.requestID == id } else { false } } })
            else {
                Issue.record("request \(id) never reached the worker")
                return false
            }
            for r in worker.take({ if case .rolloutRequest(let r) = $0 { r } else { nil } }) {
                receivedRequests.append(r.requestID)
                for s in 0..<r.n { try worker.send(Self.trajectory(for: r, sample: s)) }
            }
            worker.inbox.removeAll()
            let want = Set((0..<2).map { SampleKey(requestID: id, sampleIndex: $0) })
            guard try client.receive(until: { Set(Self.keys($0)).isSuperset(of: want) }) else {
                Issue.record("trajectories of \(id) never reached the client")
                return false
            }
            for key in Self.keys(client.take({ $0 })) {
                delivered.append(key)
                try client.send(Ack(sequence: 0, sample: key))
            }
            return true
        }

        let rounds = 80
        for round in 0..<rounds {
            let r = Self.request("r\(round)", n: 2)
            try client.send(r)
            for _ in 0..<Int.random(in: 60...100, using: &rng) { try oneBadCase() }
            if round == rounds / 2 {
                // Frames really over the limit (not just claiming to be), one plain, one with a good header.
                try intruder.raw([Data(count: limit + 1)])
                var big = Data(count: limit + 64)
                big.replaceSubrange(0..<4, with: Envelope.magic)
                try worker.raw([big])
                bad(.tooLarge); bad(.tooLarge)
            }
            // A stalled run stops here; the checks below still say what went wrong.
            guard try serve(until: r.requestID) else { break }
            served.append(r)
        }

        // Barriers: each peer's last bad message is processed before the broker answers a later
        // message from the same connection (ZeroMQ keeps each connection's order). The worker
        // goes first: its credit drops to 0 and it finishes `held`; then `last` can only go to
        // `idle`, whose credit rises after its own bad messages.
        func acceptAll(_ id: String, samples: Int) throws {
            let keys = Set((0..<UInt32(samples)).map { SampleKey(requestID: id, sampleIndex: $0) })
            #expect(try client.receive { Set(Self.keys($0)).isSuperset(of: keys) }, "\(keys) never all reached the client")
            for key in Self.keys(client.take({ $0 })) {
                delivered.append(key)
                try client.send(Ack(sequence: 0, sample: key))
            }
        }
        try worker.send(Self.heartbeat(.worker, credit: 0, policy: 1, draft: 1))
        for s in 0..<held.n { try worker.send(Self.trajectory(for: held, sample: s)) }
        try acceptAll("held", samples: 3)
        try idle.send(Self.heartbeat(.worker, credit: 1, policy: 1, draft: 1))
        let last = Self.request("last", n: 2)
        try client.send(last)
        #expect(try idle.receive { $0.contains { if case .rolloutRequest(let r) = $0 { r.requestID == "last" } else { false } } })
        for s in 0..<last.n { try idle.send(Self.trajectory(for: last, sample: s)) }
        receivedRequests.append("last")
        try acceptAll("last", samples: 2)
        // The broker still holds the client's policy and draft, untouched: a trainer and a late
        // worker get exactly them.
        try intruder.send(Self.heartbeat(.trainer))
        let late = try Conn(context, config.endpoint, "worker-9")
        try late.send(Self.heartbeat(.worker))
        for peer in [intruder, late] {
            var got: (UInt64, Data, UInt64, Data)?
            #expect(try peer.receive { got = try? Self.weights($0); return got != nil }, "\(peer.name) got no weights")
            #expect(got?.0 == 1 && got?.1 == policyBytes, "policy changed: v\(got?.0 ?? 0)")
            #expect(got?.2 == 1 && got?.3 == draftBytes, "draft changed: v\(got?.2 ?? 0)")
        }
        Thread.sleep(forTimeInterval: 0.3)  // the last acks
        loop.stop()
        let seconds = Date().timeIntervalSince(started)

        // (c) every valid request was served, each trajectory arrived exactly once, nothing else did.
        let wanted = ([("held", 3), ("last", 2)] + (0..<rounds).map { ("r\($0)", 2) })
            .flatMap { id, n in (0..<UInt32(n)).map { SampleKey(requestID: id, sampleIndex: $0) } }.sorted()
        #expect(delivered.sorted() == wanted)
        #expect(Set(receivedRequests) == Set(["held", "last"] + (0..<rounds).map { "r\($0)" }),
                "the worker was sent requests nobody valid made: \(receivedRequests)")
        #expect(broker.resent == 0 && broker.redelivered == 0)
        // (a) each bad case counted under its reason, and nothing else counted.
        #expect(cases >= 5000)
        #expect(broker.rejections.counts == expected, "\(broker.rejections.counts.sorted { $0.key < $1.key })")
        // Every request was delivered and acked: its state is gone but for its id.
        #expect(broker.retained.requests == 0 && broker.retained.unacked == 0 && broker.retained.queued == 0,
                "\(broker.retained)")
        print("broker fuzz: \(cases) bad cases in \(String(format: "%.1f", seconds)) s; by reason: "
              + broker.rejections.counts.sorted { $0.key < $1.key }.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: " "))
        for c in conns + [late] { c.socket.close() }
    }

    static func keys(_ bodies: [WireMessageBody]) -> [SampleKey] {
        bodies.compactMap { if case .trajectory(let t) = $0 { t.key } else { nil } }
    }

    /// The client side: a `BrokerConnection` skips what its broker could never have meant
    /// (frames, garbage, replays) and still takes what comes after.
    @Test func connectionSkipsBadMessagesFromTheBroker() throws {
        let socketPath = "\(FileManager.default.temporaryDirectory.path)/rollspec-conn-\(UUID().uuidString).sock"
        defer { try? FileManager.default.removeItem(atPath: socketPath) }
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        try router.bind("ipc://\(socketPath)")
        let connection = try BrokerConnection(endpoint: "ipc://\(socketPath)", sender: "worker-0")
        try connection.send(Self.heartbeat(.worker))
        let identity = try #require(try router.receive()?.first)

        let ack = { (seq: UInt64, sender: String) in Ack(sequence: seq).encode(sender: sender, sequence: seq) }
        try router.send([identity, ack(5, "broker#1")])
        try router.send([identity, Data("garbage".utf8)])                 // bad_magic
        try router.send([identity, Data("extra".utf8), ack(6, "broker#1")])  // frame_count
        try router.send([identity, ack(5, "broker#1")])                   // sequence_replayed
        try router.send([identity, ack(3, "broker#1")])                   // sequence_out_of_order
        var flipped = ack(7, "broker#1")
        flipped[30] ^= 1
        try router.send([identity, flipped])                              // checksum
        try router.send([identity, ack(8, "broker#1")])
        try router.send([identity, ack(1, "broker#2")])                   // a restarted broker starts afresh

        var rejections = RejectionCounter()
        var got: [UInt64] = []
        while let e = try connection.receive(timeout: 1, rejections: &rejections) { got.append(e.sequence) }
        #expect(got == [5, 8, 1])
        #expect(rejections.counts == [.badMagic: 1, .frameCount: 1, .sequenceReplayed: 1,
                                      .sequenceOutOfOrder: 1, .checksum: 1])
        connection.close()
        router.close()
    }
}

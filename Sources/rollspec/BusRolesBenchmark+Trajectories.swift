import Foundation
import RollspecBus
import RollspecClient
import RollspecRoles

extension BusRolesBenchmark {
    struct TrajectoryRate: CustomStringConvertible {
        var count: Int
        var frameBytes: Int
        var rawSeconds: Double
        var brokerSeconds: Double
        var rawRate: Double { Double(count) / rawSeconds }
        var brokerRate: Double { Double(count) / brokerSeconds }
        var description: String {
            String(format: """
                (b) %d trajectory messages of %d bytes
                    raw libzmq (DEALER → relay ROUTER process → DEALER): %.0f msgs/s (%.3f s)
                    rollspec (fake worker → broker process → client, which confirms each read in one acks): %.0f msgs/s (%.3f s) = %.2f × raw
                """, count, frameBytes, rawRate, rawSeconds, brokerRate, brokerSeconds, brokerRate / rawRate)
        }
    }

    /// Trajectories as fast as the broker takes them: a fake worker (thread) sends `count`
    /// pre-encoded trajectories for the requests the broker dispatches to it; the client (this
    /// thread) decodes each and confirms what each read of its socket gave in one `acks`. The
    /// baseline relays frames of the same size.
    func trajectoryRate(count: Int, responseTokens: Int) throws -> TrajectoryRate {
        let samplesPerRequest = 1000
        let requests = max(1, count / samplesPerRequest)
        let count = requests * samplesPerRequest
        let prompt = (0..<64).map { Int32($0) }
        func trajectory(_ request: Int, _ sample: Int) -> Trajectory {
            Trajectory(requestID: "t\(request)", groupID: "g", sampleIndex: UInt32(sample), promptTokens: prompt,
                       responseTokens: (0..<responseTokens).map { Int32($0 % 1000) },
                       logprobs: [Float](repeating: -1.5, count: responseTokens), finishReason: .length,
                       policyVersion: 1, draftVersion: 0)
        }
        stage("(b) encoding \(count) trajectory frames (not timed)")
        var sequence: UInt64 = 1
        let frames: [Data] = (0..<requests).flatMap { r in
            (0..<samplesPerRequest).map { i -> Data in
                sequence += 1
                return trajectory(r, i).encode(sender: "worker-0", sequence: sequence)
            }
        }
        let frameBytes = frames[0].count

        // Raw baseline.
        let rawEndpoint = try Self.freeEndpoint()
        stage("(b) raw: relay on \(rawEndpoint)")
        let relay = try spawn("relay-b", ["bench", "bus-helper", "relay", "--endpoint", rawEndpoint, "--receivers", "1"])
        let receiver = try dealer(rawEndpoint)
        _ = try receiver.send(BenchBusHelperCommand.hello)
        guard relay.waitForLine(containing: "ready", timeout: 30) != nil else { throw BenchError.timeout("relay ready") }
        let sender = try dealer(rawEndpoint)
        Thread.sleep(forTimeInterval: 0.2)
        let raw = Array(repeating: Data(count: frameBytes), count: count)
        let rawStart = SharedTime()
        let rawSender = Thread {
            rawStart.set(monotonicSeconds())
            for f in raw { _ = try? sender.send(f) }
        }
        rawSender.start()
        try receiver.setOption(.receiveTimeout(milliseconds: 30_000))
        for _ in 0..<count { guard try receiver.receive() != nil else { throw BenchError.timeout("raw frames") } }
        let rawSeconds = monotonicSeconds() - rawStart.get()
        stage(String(format: "(b) raw: %.0f msgs/s", Double(count) / rawSeconds))
        relay.process.terminate()

        // Through a broker of its own, so the real workers of (a) do not take these requests.
        let endpoint = try Self.freeEndpoint()
        let config = try writeConfig(endpoint: endpoint, workers: 1)
        stage("(b) rollspec: broker on \(endpoint), fake worker and client in this process")
        let broker = try spawn("broker-b", ["role", "broker", "--config", config])
        guard broker.waitForLine(containing: "listening", timeout: 30) != nil else { throw BenchError.timeout("broker") }
        let client = try dealer(endpoint)
        var clientSequence: UInt64 = 0
        func clientSend<M: WireMessage>(_ m: M) throws {
            clientSequence += 1
            _ = try client.send(m.encode(sender: "client", sequence: clientSequence))
        }
        try clientSend(Heartbeat(role: .learner, index: 0, status: .ready, credit: 0, policyVersion: 1, draftVersion: 0))
        // A real (tiny) checkpoint: the broker refuses bytes that are not one a worker could load.
        let tinyPolicy = try CheckpointCodec.encode(BuiltinModels.randomWeights(config: BuiltinModels.draftConfig(), seed: 1))
        for chunk in WeightsChunk.split(tinyPolicy) { try clientSend(PolicyCheckpointChunk(version: 1, chunk: chunk)) }
        guard broker.waitForLine(containing: "policy v1 complete", timeout: 30) != nil else { throw BenchError.timeout("tiny policy") }

        let worker = try dealer(endpoint)
        _ = try worker.send(Heartbeat(role: .worker, index: 0, status: .ready, credit: 64, policyVersion: 1, draftVersion: 0)
            .encode(sender: "worker-0", sequence: 1))
        guard broker.waitForLine(containing: "worker-0 joined", timeout: 30) != nil else { throw BenchError.timeout("fake worker join") }
        let firstSend = SharedTime()
        let fakeWorker = Thread {
            var sent = Set<String>()
            var poller = ZMQPoller()
            _ = poller.add(worker)
            while sent.count < requests {
                guard (try? poller.poll(timeoutMilliseconds: 1000))?.first?.contains(.readable) == true,
                      let got = try? worker.receive(dontWait: true), let last = got.last,
                      let envelope = try? Envelope(decoding: last), case .rolloutRequest(let r) = envelope.body,
                      sent.insert(r.requestID).inserted, let k = Int(r.requestID.dropFirst()) else { continue }
                if firstSend.get() == 0 { firstSend.set(monotonicSeconds()) }
                for f in frames[k * samplesPerRequest..<(k + 1) * samplesPerRequest] { _ = try? worker.send(f) }
            }
        }
        fakeWorker.start()
        stage("(b) rollspec: submitting \(requests) requests of n = \(samplesPerRequest)")
        for r in 0..<requests {
            try clientSend(RolloutRequest(requestID: "t\(r)", groupID: "g", promptTokens: prompt, n: UInt32(samplesPerRequest),
                                          maxTokens: UInt32(responseTokens)))
        }
        var received = 0
        var poller = ZMQPoller()
        _ = poller.add(client)
        let deadline = monotonicSeconds() + 300
        while received < count, monotonicSeconds() < deadline {
            guard try poller.poll(timeoutMilliseconds: 200)[0].contains(.readable) else { continue }
            // Confirmed as RolloutClient does: all that one read of the socket gave, in one `acks`.
            var drained: [Acks.Entry] = []
            while drained.count < Acks.maxEntries, let got = try client.receive(dontWait: true), let last = got.last {
                let envelope = try Envelope(decoding: last)
                guard case .trajectory(let t) = envelope.body else { continue }
                drained.append(Acks.Entry(sequence: envelope.sequence, sample: t.key))
                received += 1
                if received % (count / 4) == 0 { stage("(b) rollspec: \(received)/\(count) trajectories") }
            }
            if !drained.isEmpty { try clientSend(Acks(drained)) }
        }
        guard received == count else { throw BenchError.timeout("trajectories (\(received)/\(count))") }
        let brokerSeconds = monotonicSeconds() - firstSend.get()
        broker.process.terminate()
        return TrajectoryRate(count: count, frameBytes: frameBytes, rawSeconds: rawSeconds, brokerSeconds: brokerSeconds)
    }
}

/// A time written by one thread and read by another.
final class SharedTime: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0.0
    func set(_ v: Double) { lock.withLock { value = v } }
    func get() -> Double { lock.withLock { value } }
}

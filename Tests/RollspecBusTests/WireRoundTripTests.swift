import Foundation
import Testing
import RollspecBus

@Suite("Wire round trips") struct WireRoundTripTests {
    static func roundTrip(_ e: Envelope) throws {
        let bytes = e.encode()
        let decoded = try Envelope(decoding: bytes)
        #expect(decoded == e)
        #expect(decoded.encode() == bytes)
    }

    @Test func randomMessagesOfEveryType() throws {
        var gen = MessageGenerator(seed: 1)
        var seen = Set<UInt16>()
        for _ in 0..<500 {
            let e = gen.envelope()
            seen.insert(e.body.type.rawValue)
            try Self.roundTrip(e)
        }
        #expect(seen.count == WireMessageType.allCases.count)
    }

    @Test func edgeValues() throws {
        let longSender = String(repeating: "é", count: 127) + "x"  // 255 bytes of UTF-8
        let unicode = "語🙂e\u{301}\u{0}\u{10FFFF}"
        let messages: [WireMessageBody] = [
            .rolloutRequest(RolloutRequest(
                requestID: unicode, groupID: "", promptTokens: [], n: UInt32.max, temperature: 0, topK: UInt32.max,
                topP: .leastNonzeroMagnitude, maxTokens: 0, stopTokens: [Int32.min, Int32.max], seed: UInt64.max)),
            .rolloutRequest(RolloutRequest(
                requestID: "r", groupID: "g", promptTokens: Array(repeating: 7, count: 10_000), maxTokens: 1, seed: 0)),
            .trajectory(Trajectory(
                requestID: unicode, groupID: unicode, sampleIndex: UInt32.max, promptTokens: [Int32.min],
                responseTokens: [Int32.max, 0, -1], logprobs: [-.infinity, -0.0, -.leastNonzeroMagnitude],
                finishReason: .length, policyVersion: UInt64.max, draftVersion: UInt64.max,
                acceptance: AcceptanceCounts(
                    drafts: UInt64.max, draftedTokens: UInt64.max, acceptedTokens: UInt64.max,
                    acceptedPerPosition: [UInt64.max, 0], proposers: ["", unicode]),
                targetTopK: TargetTopK(k: 1, tokenIDs: [0, 1, 2], probabilities: [0, 1, 0.5]))),
            .policyCheckpointChunk(PolicyCheckpointChunk(version: UInt64.max, chunk: WeightsChunk.split(Data(), chunkSize: 1)[0])),
            .draftWeightsChunk(DraftWeightsChunk(
                draftVersion: 0, policyVersion: UInt64.max, acceptanceRate: 1,
                chunk: WeightsChunk.split(Data(repeating: 0xAB, count: 1 << 16), chunkSize: 1 << 20)[0])),
            .ack(Ack(sequence: 0)),
            .ack(Ack(sequence: UInt64.max, sample: SampleKey(requestID: unicode, sampleIndex: UInt32.max), status: .rejected)),
            .heartbeat(Heartbeat(role: .client, index: UInt32.max, status: .stopping, credit: 0,
                                 policyVersion: 0, draftVersion: UInt64.max)),
            .metricsSnapshot(MetricsSnapshot(timestampUnixNanos: 0, samples: [])),
            .metricsSnapshot(MetricsSnapshot(timestampUnixNanos: UInt64.max, samples: [
                .init(name: "g", labels: [MetricLabel("l", unicode), MetricLabel("_", "")], kind: .gauge, value: .infinity),
                .init(name: "g", kind: .gauge, value: -.infinity),
                .init(name: "c:total", kind: .counter, value: .greatestFiniteMagnitude),
            ])),
            .acks(Acks([Acks.Entry(sequence: UInt64.max, sample: SampleKey(requestID: unicode, sampleIndex: UInt32.max))])),
            .acks(Acks((0..<Acks.maxEntries).map { Acks.Entry(sequence: UInt64($0), sample: SampleKey(requestID: "r\($0)", sampleIndex: 0)) })),
            .error(ErrorMessage(code: .internalError, message: "", sequence: nil)),
            .error(ErrorMessage(code: .malformed, message: unicode, sequence: UInt64.max)),
        ]
        for (i, body) in messages.enumerated() {
            try Self.roundTrip(Envelope(sender: i % 2 == 0 ? longSender : "w", sequence: i == 0 ? UInt64.max : UInt64(i), body: body))
        }
    }

    @Test func payloadOnlyAndTypedAccess() throws {
        let ack = Ack(sequence: 5, requestID: "r", status: .rejected)
        #expect(try Ack(decodingPayload: ack.encodePayload()) == ack)
        #expect(wireError { _ = try Ack(decodingPayload: ack.encodePayload() + [0]) } == .trailingBytes(field: "payload", count: 1))
        let envelope = try Envelope(decoding: ack.encode(sender: "b", sequence: 1))
        #expect(try envelope.message(as: Ack.self) == ack)
        #expect(wireError { _ = try envelope.message(as: Heartbeat.self) } == .unexpectedMessageType(expected: 6, actual: 5))
    }

    @Test func headerWithoutPayload() throws {
        let bytes = Heartbeat(role: .worker, index: 1, status: .ready, credit: 3, policyVersion: 1, draftVersion: 0)
            .encode(sender: "worker-1", sequence: 99)
        let header = try EnvelopeHeader(bytes)
        #expect(header.type == .heartbeat)
        #expect(header.sequence == 99)
        #expect(header.senderLength == 8)
    }
}

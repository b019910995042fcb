import Foundation
import RollspecBus
import RollspecModel

/// Builds an envelope by hand from the documented layout (not through `Envelope.encode`), so
/// tests can forge any header field and still carry a correct CRC-32C.
func forgeEnvelope(
    type: UInt16, payload: Data, sender: Data = Data("fuzz".utf8), sequence: UInt64 = 1,
    version: UInt16 = Envelope.protocolVersion, flags: UInt16 = 0, payloadLength: UInt32? = nil, fixChecksum: Bool = true
) -> Data {
    var w = WireWriter()
    w.raw(Data("RSPC".utf8))
    w.u16(version)
    w.u16(type)
    w.u16(flags)
    w.u64(sequence)
    w.u32(payloadLength ?? UInt32(payload.count))
    w.u8(UInt8(sender.count))
    w.raw(sender)
    w.raw(payload)
    w.u32(fixChecksum ? CRC32C.checksum(w.data) : 0xDEAD_BEEF)
    return w.data
}

/// The `WireError` that `body` throws, or nil if it returned.
func wireError(_ body: () throws -> Void) -> WireError? {
    do {
        try body()
        return nil
    } catch let e as WireError {
        return e
    } catch {
        return .invalidValue(field: "test", reason: "non-WireError thrown: \(error)")
    }
}

/// Seeded random messages of every type, for round trips and fuzzing.
struct MessageGenerator {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func u64() -> UInt64 { rng.next() }
    mutating func u32() -> UInt32 { UInt32(truncatingIfNeeded: rng.next()) }
    mutating func tokens(_ max: Int) -> [Int32] { (0..<int(0...max)).map { _ in Int32(truncatingIfNeeded: rng.next()) } }
    mutating func unit() -> Float { Float(int(0...1024)) / 1024 }
    mutating func string(_ max: Int) -> String {
        let alphabet = Array("abcXYZ019-_ αβγ語🙂\u{301}")
        return String((0..<int(0...max)).map { _ in alphabet[int(0...alphabet.count - 1)] })
    }
    mutating func bytes(_ max: Int) -> Data { Data((0..<int(0...max)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) }

    mutating func message() -> WireMessageBody {
        switch int(0...8) {
        case 0:
            let whole = bytes(300)
            let chunks = WeightsChunk.split(whole, chunkSize: int(1...128))
            return .policyCheckpointChunk(PolicyCheckpointChunk(version: u64(), chunk: chunks[int(0...chunks.count - 1)]))
        case 1:
            let chunks = WeightsChunk.split(bytes(300), chunkSize: int(1...128))
            return .draftWeightsChunk(DraftWeightsChunk(
                draftVersion: u64(), policyVersion: u64(), acceptanceRate: Double(unit()), chunk: chunks[0]))
        case 2:
            return .rolloutRequest(RolloutRequest(
                requestID: string(20), groupID: string(10), promptTokens: tokens(40), n: UInt32(int(1...16)),
                temperature: unit() * 2, topK: u32(), topP: max(unit(), 0.001), maxTokens: u32(),
                stopTokens: tokens(4), seed: int(0...1) == 0 ? nil : u64()))
        case 3:
            let response = tokens(30)
            let k = UInt32(int(1...4))
            let topK = int(0...1) == 0 ? nil : TargetTopK(
                k: k, tokenIDs: (0..<response.count * Int(k)).map { _ in Int32(int(0...50000)) },
                probabilities: (0..<response.count * Int(k)).map { _ in unit() })
            return .trajectory(Trajectory(
                requestID: string(20), groupID: string(10), sampleIndex: u32(), promptTokens: tokens(40),
                responseTokens: response, logprobs: response.map { _ in -unit() * 10 },
                finishReason: FinishReason(rawValue: UInt8(int(0...2)))!, policyVersion: u64(), draftVersion: u64(),
                acceptance: AcceptanceCounts(
                    drafts: u64() >> 2, draftedTokens: 1000, acceptedTokens: UInt64(int(0...1000)),
                    acceptedPerPosition: (0..<int(0...8)).map { _ in u64() }, proposers: (0..<int(0...3)).map { _ in string(8) }),
                targetTopK: topK))
        case 4:
            return .ack(Ack(sequence: u64(), requestID: string(20), sampleIndex: u32(), status: Ack.Status(rawValue: UInt8(int(0...2)))!))
        case 5:
            return .heartbeat(Heartbeat(
                role: BusRole(rawValue: UInt8(int(0...4)))!, index: u32(),
                status: Heartbeat.Status(rawValue: UInt8(int(0...4)))!, credit: u32(), policyVersion: u64(),
                draftVersion: u64(), stats: .init(requestsCompleted: u64(), tokensGenerated: u64(),
                                                  uptimeSeconds: Double(u32()) / 7, acceptanceRate: Double(unit()))))
        case 6:
            return .metricsSnapshot(MetricsSnapshot(
                timestampUnixNanos: u64(),
                samples: (0..<int(0...6)).map { i in
                    .init(name: "m\(i)_" + ["a", "b_c", "x:y"][int(0...2)],
                          labels: (0..<int(0...3)).map { j in MetricLabel("l\(j)", string(10)) },
                          kind: int(0...1) == 0 ? .counter : .gauge, value: Double(u32()) / 3)
                }))
        case 7:
            return .acks(Acks((0..<int(1...5)).map { _ in
                Acks.Entry(sequence: u64(), sample: SampleKey(requestID: "r" + string(20), sampleIndex: u32()))
            }))
        default:
            return .error(ErrorMessage(
                code: ErrorMessage.Code(rawValue: UInt16(int(1...10)))!,
                reason: int(0...1) == 0 ? nil : RejectionReason.allCases[int(0...(RejectionReason.allCases.count - 1))],
                message: string(40),
                sequence: int(0...1) == 0 ? nil : u64()))
        }
    }

    mutating func envelope() -> Envelope {
        Envelope(sender: "s" + string(12), sequence: u64(), body: message())
    }
}

import Foundation
import Testing
@testable import RollspecBus

/// `PreparedMessage` framing against the ordinary encoder.
@Suite struct PreparedMessageTests {
    static func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<n).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return UInt8(truncatingIfNeeded: x)
        }
    }

    static func messages() -> [any WireMessage] {
        let chunk = WeightsChunk(index: 2, count: 5, offset: 300, totalSize: 1000, digest: Data(Self.bytes(32, seed: 9)),
                                 bytes: Data(Self.bytes(150, seed: 10)))
        return [
            PolicyCheckpointChunk(version: 7, chunk: chunk),
            DraftWeightsChunk(draftVersion: 3, policyVersion: 7, acceptanceRate: 0.625, chunk: chunk),
            PolicyCheckpointChunk(version: 1, chunk: WeightsChunk(index: 0, count: 1, offset: 0, totalSize: 0,
                                                                  digest: Data(count: 32), bytes: Data())),
            Heartbeat(role: .worker, index: 3, status: .ready, credit: 4, policyVersion: 2, draftVersion: 1),
        ]
    }

    @Test func framesAreTheEncodersBytesForEverySenderAndSequence() throws {
        for message in Self.messages() {
            let prepared = PreparedMessage(message)
            for (sender, sequence) in [("broker#1a2b", UInt64(1)), ("b", 77), (String(repeating: "é", count: 127), .max)] {
                let framed = prepared.encode(sender: sender, sequence: sequence)
                #expect(framed == message.encode(sender: sender, sequence: sequence), "\(type(of: message)) as \(sender)")
                let decoded = try Envelope(decoding: framed)
                #expect(decoded.sender == sender && decoded.sequence == sequence)
                #expect(decoded.body.type == type(of: message).messageType)
            }
        }
    }

    /// One buffer goes to several peers at once (zero-copy); it must not be written afterwards.
    /// A received message passed on with its payload as it came (a broker re-wrapping a
    /// trajectory) is, under the new header, the encoder's bytes for that sender and number.
    @Test func aReceivedPayloadReframedIsTheEncodersBytes() throws {
        for message in Self.messages() {
            // A frame at a non-zero offset of its buffer, as a slice of what a socket received.
            let received = Data([0xAA, 0xBB]) + message.encode(sender: "worker-3", sequence: 41)
            let frame = received.dropFirst(2)
            let envelope = try Envelope(decoding: frame)
            let payload = envelope.payload(in: frame)
            #expect(payload.count == frame.count - Envelope.fixedHeaderSize - "worker-3".utf8.count - Envelope.checksumSize)
            let passedOn = PreparedMessage(type: envelope.body.type, encodedPayload: payload)
            #expect(passedOn.encode(sender: "broker#9", sequence: 7) == message.encode(sender: "broker#9", sequence: 7),
                    "\(type(of: message))")
        }
    }

    @Test func oneFrameReachesTwoPeersZeroCopy() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        try router.bind("inproc://prepared-\(UUID().uuidString)")
        let endpoint = try router.lastEndpoint
        let peers = try (0..<2).map { i -> ZMQSocket in
            let s = try ZMQSocket(context: context, type: .dealer)
            try s.setOption(.routingID(Data("peer-\(i)".utf8)))
            try s.connect(endpoint)
            _ = try s.send(Data("hello".utf8))
            return s
        }
        var identities: [Data] = []
        while identities.count < 2 { if let m = try router.receive() { identities.append(m[0]) } }
        let message = Self.messages()[0]
        let frame = PreparedMessage(message).frame(sender: "broker#1", sequence: 42)
        for identity in identities {
            _ = try router.send(identity, more: true)
            _ = try router.sendZeroCopy(frame)
        }
        for peer in peers {
            let got = try #require(try peer.receive())
            #expect(got == [message.encode(sender: "broker#1", sequence: 42)])
        }
        for s in peers + [router] { s.close() }
    }
}

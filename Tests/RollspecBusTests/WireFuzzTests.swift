import Foundation
import Testing
import RollspecBus
import RollspecModel

/// Seeded fuzzing of the decoder. Every corrupted input must be refused with the right kind of
/// `WireError` — never accepted, never a crash, never a huge allocation.
@Suite("Wire fuzzing") struct WireFuzzTests {
    /// The vectors plus seeded random messages of every type.
    static let corpus: [Data] = {
        var gen = MessageGenerator(seed: 2024)
        return Fixtures.vectors.map { $0.envelope.encode() } + (0..<24).map { _ in gen.envelope().encode() }
    }()

    @Test func truncationAtEveryLength() {
        var cases = 0
        for message in Self.corpus {
            for length in 0..<message.count {
                let error = wireError { _ = try Envelope(decoding: message.prefix(length)) }
                guard case .truncated = error else {
                    Issue.record("prefix \(length)/\(message.count): \(String(describing: error))")
                    continue
                }
                cases += 1
            }
        }
        #expect(cases > 3000)
    }

    @Test func trailingBytes() {
        for message in Self.corpus {
            for extra in 1...8 {
                let error = wireError { _ = try Envelope(decoding: message + Data(repeating: 0, count: extra)) }
                #expect(error == .trailingBytes(field: "message", count: extra))
            }
        }
    }

    /// Flips bits in 1–4 random bytes. Where the flip lands decides which check fires first;
    /// anything not in the magic, version or length fields must fail the CRC-32C.
    @Test func randomByteFlips() {
        var rng = SplitMix64(seed: 77)
        var cases = 0
        for message in Self.corpus {
            let senderLength = Int(message[22])
            for _ in 0..<150 {
                var corrupted = message
                var offsets = Set<Int>()
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let at = Int.random(in: 0..<message.count, using: &rng)
                    corrupted[at] ^= UInt8.random(in: 1...255, using: &rng)
                    offsets.insert(at)
                }
                if corrupted == message { continue }  // two flips cancelled out
                cases += 1
                guard let error = wireError({ _ = try Envelope(decoding: corrupted) }) else {
                    Issue.record("corrupted message accepted (offsets \(offsets.sorted()))")
                    continue
                }
                let first = offsets.min()!
                let expected: Set<RejectionReason> = switch first {
                case 0..<4: [.badMagic]
                case 4..<6: [.unsupportedVersion]
                case 18..<23: [.truncated, .trailingBytes, .tooLarge, .checksum, .invalidValue]
                default: [.checksum]
                }
                let anyLengthField = offsets.contains { (18..<23).contains($0) }
                if !expected.contains(error.reason) && !(anyLengthField && [.truncated, .trailingBytes, .tooLarge].contains(error.reason)) {
                    Issue.record("flip at \(offsets.sorted()) (sender \(senderLength)): \(error)")
                }
            }
        }
        #expect(cases > 4000)
    }

    @Test func randomGarbage() {
        var rng = SplitMix64(seed: 5)
        for i in 0..<2000 {
            var bytes = Data((0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            if i % 2 == 1 { bytes = Data("RSPC".utf8) + [1, 0] + bytes }  // get past magic and version
            let error = wireError { _ = try Envelope(decoding: bytes) }
            #expect(error != nil, "garbage accepted")
        }
    }

    /// Payload bytes with a *valid* envelope and checksum: forged lengths and counts inside the
    /// payload, and random payloads of every type. The payload decoder alone must refuse them —
    /// or, if the bytes happen to form a valid message, re-encode to exactly the same bytes.
    @Test func forgedPayloadsWithValidChecksum() {
        var rng = SplitMix64(seed: 99)
        var refused = 0, cases = 0
        for message in Self.corpus {
            let header = try! EnvelopeHeader(message)
            let payloadStart = 23 + header.senderLength
            let payload = message.subdata(in: payloadStart..<payloadStart + header.payloadLength)
            for _ in 0..<120 {
                var forged = payload
                if forged.count >= 4 {
                    // Overwrite a u32 somewhere with a forged length: huge, just too big, or random.
                    let at = Int.random(in: 0...(forged.count - 4), using: &rng)
                    let value: UInt32 = [UInt32.max, UInt32(forged.count), UInt32(forged.count - at), rng.next32(), 0x4000_0000]
                        .randomElement(using: &rng)!
                    withUnsafeBytes(of: value.littleEndian) { forged.replaceSubrange(at..<at + 4, with: $0) }
                } else {
                    forged.append(UInt8.random(in: 0...255, using: &rng))
                }
                cases += 1
                if check(forged, type: header.type.rawValue) { refused += 1 }
            }
        }
        for type in WireMessageType.allCases {
            for _ in 0..<250 {
                let payload = Data((0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
                cases += 1
                if check(payload, type: type.rawValue) { refused += 1 }
            }
        }
        // Overwriting a token or a version with another value gives a valid message, so only
        // a share is refused; the property is "refused or canonical", checked case by case.
        #expect(cases > 5000)
        #expect(refused > cases * 4 / 10)
    }

    /// True if refused; records an issue if accepted but not canonical.
    private func check(_ payload: Data, type: UInt16) -> Bool {
        let bytes = forgeEnvelope(type: type, payload: payload)
        do {
            let decoded = try Envelope(decoding: bytes)
            if decoded.encode() != bytes { Issue.record("accepted a non-canonical payload of type \(type)") }
            return false
        } catch is WireError {
            return true
        } catch {
            Issue.record("unexpected error \(error)")
            return true
        }
    }

    @Test func oversizedMessages() {
        let big = Fixtures.vectors[0].envelope.encode()
        #expect(wireError { _ = try Envelope(decoding: big, limits: WireLimits(maxMessageSize: big.count - 1)) }?.reason == .tooLarge)
        #expect((try? Envelope(decoding: big, limits: WireLimits(maxMessageSize: big.count))) != nil)
        // A forged 4 GiB payload length is refused from the header alone.
        let forged = forgeEnvelope(type: 5, payload: Data(count: 16), payloadLength: UInt32.max)
        #expect(wireError { _ = try Envelope(decoding: forged) } == .messageTooLarge(size: 23 + 4 + Int(UInt32.max) + 4, limit: 64 << 20))
    }

    @Test func headerFieldsWithValidChecksum() {
        let ack = Ack(sequence: 1).encodePayload()
        #expect(wireError { _ = try Envelope(decoding: forgeEnvelope(type: 5, payload: ack, version: 1)) } == .unsupportedVersion(1))
        #expect(wireError { _ = try Envelope(decoding: forgeEnvelope(type: 99, payload: ack)) } == .unknownMessageType(99))
        #expect(wireError { _ = try Envelope(decoding: forgeEnvelope(type: 0, payload: ack)) } == .unknownMessageType(0))
        #expect(wireError { _ = try Envelope(decoding: forgeEnvelope(type: 5, payload: ack, flags: 1)) } == .unknownFlags(1))
        #expect(wireError { _ = try Envelope(decoding: forgeEnvelope(type: 5, payload: ack, sender: Data())) }
                == .invalidValue(field: "sender", reason: "must not be empty"))
        #expect(wireError { _ = try Envelope(decoding: forgeEnvelope(type: 5, payload: ack, sender: Data([0xC3, 0x28]))) }
                == .invalidUTF8(field: "sender"))
        #expect(wireError { _ = try Envelope(decoding: forgeEnvelope(type: 5, payload: ack, fixChecksum: false)) }?.reason == .checksum)
        var badMagic = forgeEnvelope(type: 5, payload: ack)
        badMagic[0] = UInt8(ascii: "X")
        #expect(wireError { _ = try Envelope(decoding: badMagic) } == .badMagic(Array("XSPC".utf8)))
    }

    /// Field-level refusals name the field.
    @Test func invalidFieldsAreNamed() {
        func request(_ edit: (inout WireWriter) -> Void) -> Data {
            var w = WireWriter()
            edit(&w)
            return forgeEnvelope(type: 3, payload: w.data)
        }
        func decode(_ bytes: Data) -> WireError? { wireError { _ = try Envelope(decoding: bytes) } }
        func prefix(_ w: inout WireWriter) { w.string("r"); w.string("g"); w.i32Array([1]); w.u32(1) }

        #expect(decode(request { w in w.string("r"); w.string("g"); w.u32(1_000_000); w.u32(1) })
                == .countTooLarge(field: "prompt_tokens", count: 1_000_000, remaining: 4))
        #expect(decode(request { w in w.u32(9); w.raw(Data([0xFF, 0xFE, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41])) })
                == .invalidUTF8(field: "request_id"))
        #expect(decode(request { w in w.u32(UInt32.max) }) == .lengthOutOfRange(field: "request_id", length: Int(UInt32.max), remaining: 0))
        if case .invalidFloat(let field, let value)? = decode(request { w in prefix(&w); w.f32(.nan) }) {
            #expect(field == "temperature" && value.isNaN)
        } else {
            Issue.record("NaN temperature not refused as invalid_float")
        }
        #expect(decode(request { w in prefix(&w); w.f32(-1) }) == .invalidFloat(field: "temperature", value: -1))
        #expect(decode(request { w in prefix(&w); w.f32(1); w.u32(0); w.f32(1.5) }) == .invalidFloat(field: "top_p", value: 1.5))
        #expect(decode(request { w in w.string("r"); w.string("g"); w.i32Array([]); w.u32(0) })
                == .invalidValue(field: "n", reason: "must be at least 1"))
        #expect(decode(request { w in prefix(&w); w.f32(1); w.u32(0); w.f32(1); w.u32(5); w.i32Array([]); w.u8(2) })
                == .invalidEnum(field: "seed.present", value: 2))
        #expect(decode(request { w in prefix(&w); w.f32(1) })?.reason == .truncated)

        var t = WireWriter()
        t.string("r"); t.string("g"); t.u32(0); t.i32Array([]); t.i32Array([5]); t.f32Array([-1]); t.f32(1); t.u32(0); t.f32(1); t.u8(9)
        #expect(decode(forgeEnvelope(type: 4, payload: t.data)) == .invalidEnum(field: "finish_reason", value: 9))
        func trajectory(temperature: Float, topP: Float) -> Data {
            var w = WireWriter()
            w.string("r"); w.string("g"); w.u32(0); w.i32Array([]); w.i32Array([5]); w.f32Array([-1])
            w.f32(temperature); w.u32(0); w.f32(topP); w.u8(0)
            return forgeEnvelope(type: 4, payload: w.data)
        }
        #expect(decode(trajectory(temperature: -0.5, topP: 1)) == .invalidFloat(field: "temperature", value: -0.5))
        #expect(decode(trajectory(temperature: 1, topP: 0)) == .invalidFloat(field: "top_p", value: 0))
        var mismatch = WireWriter()
        mismatch.string("r"); mismatch.string("g"); mismatch.u32(0); mismatch.i32Array([]); mismatch.i32Array([5, 6]); mismatch.f32Array([-1])
        #expect(decode(forgeEnvelope(type: 4, payload: mismatch.data))?.reason == .invalidValue)

        var chunk = WireWriter()
        chunk.u64(1); chunk.u32(3); chunk.u32(3); chunk.u64(0); chunk.u64(10); chunk.raw(Data(count: 32)); chunk.bytes(Data())
        #expect(decode(forgeEnvelope(type: 1, payload: chunk.data))?.reason == .invalidValue)

        var heartbeat = WireWriter()
        heartbeat.u8(7)
        #expect(decode(forgeEnvelope(type: 6, payload: heartbeat.data)) == .invalidEnum(field: "role", value: 7))

        /// A snapshot of samples given as (name, labels), each a gauge of 1.
        func snapshot(_ samples: [(String, [(String, String)])]) -> Data {
            var w = WireWriter()
            w.u64(0); w.u32(UInt32(samples.count))
            for (name, labels) in samples {
                w.string(name); w.u32(UInt32(labels.count))
                for (k, v) in labels { w.string(k); w.string(v) }
                w.u8(1); w.f64(1)
            }
            return forgeEnvelope(type: 7, payload: w.data)
        }
        // The same series twice (labels in another order), a bad metric name, a bad or reserved
        // label name, one label twice.
        #expect(decode(snapshot([("a", [("x", "1"), ("y", "2")]), ("a", [("y", "2"), ("x", "1")])]))
                == .invalidValue(field: "samples[1]", reason: "duplicate series a [\"x=1\", \"y=2\"]"))
        #expect(decode(snapshot([("a", [("x", "1")]), ("a", [("x", "2")]), ("a", [])])) == nil)
        #expect(decode(snapshot([("rollspec_x{proposer=\"draft\"}", [])]))?.reason == .invalidValue)
        #expect(decode(snapshot([("9lives", [])]))?.reason == .invalidValue)
        #expect(decode(snapshot([("a", [("proposer-kind", "x")])]))?.reason == .invalidValue)
        #expect(decode(snapshot([("a", [("__name__", "x")])]))?.reason == .invalidValue)
        #expect(decode(snapshot([("a", [("x", "1"), ("x", "2")])]))
                == .invalidValue(field: "samples[0].labels[1].name", reason: "label x given twice"))
        var counter = WireWriter()
        counter.u64(0); counter.u32(1); counter.string("c"); counter.u32(0); counter.u8(0); counter.f64(-1)
        #expect(decode(forgeEnvelope(type: 7, payload: counter.data)) == .invalidFloat(field: "samples[0].value", value: -1))

        // acks: no entries, more than the limit, a count the bytes cannot hold, an empty request
        // id, a NaN-free but truncated entry; each named.
        func acks(_ edit: (inout WireWriter) -> Void) -> Data {
            var w = WireWriter()
            edit(&w)
            return forgeEnvelope(type: 9, payload: w.data)
        }
        #expect(decode(acks { $0.u32(0) }) == .invalidValue(field: "entries", reason: "0 entries; an acks message carries 1...4096"))
        #expect(decode(acks { w in
            w.u32(4097)
            for i in 0..<4097 { w.u64(UInt64(i)); w.string("r"); w.u32(0) }
        }) == .invalidValue(field: "entries", reason: "4097 entries; an acks message carries 1...4096"))
        #expect(decode(acks { w in w.u32(1_000); w.u64(1); w.string("r"); w.u32(0) })
                == .countTooLarge(field: "entries", count: 1_000, remaining: 17))
        #expect(decode(acks { w in w.u32(2); w.u64(1); w.string("r"); w.u32(0); w.u64(2); w.string(""); w.u32(0); w.raw(Data(count: 8)) })
                == .invalidValue(field: "entries[1].request_id", reason: "must not be empty"))
        #expect(decode(acks { w in w.u32(1); w.u64(1); w.u32(20); w.raw(Data(count: 5)) })
                == .lengthOutOfRange(field: "entries[0].request_id", length: 20, remaining: 5))

        var error = WireWriter()
        error.u16(0); error.string("x"); error.u8(0)
        #expect(decode(forgeEnvelope(type: 8, payload: error.data)) == .invalidEnum(field: "code", value: 0))

        // u32×u32 top-k size must not overflow or allocate.
        var topK = WireWriter()
        topK.string("r"); topK.string("g"); topK.u32(0); topK.i32Array([]); topK.i32Array([]); topK.f32Array([])
        topK.f32(1); topK.u32(0); topK.f32(1)
        topK.u8(0); topK.u64(1); topK.u64(0); topK.u64(0); topK.u64(0); topK.u64(0); topK.u64Array([]); topK.stringArray([])
        topK.u8(1); topK.u32(UInt32.max); topK.u32(0)
        #expect(decode(forgeEnvelope(type: 4, payload: topK.data)) == nil)  // k huge but 0 positions: nothing to read
        var hugeK = WireWriter()
        hugeK.string("r"); hugeK.string("g"); hugeK.u32(0); hugeK.i32Array([]); hugeK.i32Array([5, 6]); hugeK.f32Array([-1, -1])
        hugeK.f32(1); hugeK.u32(0); hugeK.f32(1)
        hugeK.u8(0); hugeK.u64(1); hugeK.u64(0); hugeK.u64(0); hugeK.u64(0); hugeK.u64(0); hugeK.u64Array([]); hugeK.stringArray([])
        hugeK.u8(1); hugeK.u32(UInt32.max); hugeK.u32(2)
        #expect(decode(forgeEnvelope(type: 4, payload: hugeK.data))?.reason == .countTooLarge)
    }
}

extension SplitMix64 {
    mutating func next32() -> UInt32 { UInt32(truncatingIfNeeded: next()) }
}

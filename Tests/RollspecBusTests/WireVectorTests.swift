import Foundation
import Testing
import RollspecBus

/// The committed vectors (Resources/vectors/NAME.hex and NAME.json) pin the wire format:
/// encoding each fixed example must give exactly the committed bytes, decoding those bytes must
/// give the example, and the JSON must describe the same values. Regenerate after a deliberate
/// format change with `ROLLSPEC_WRITE_VECTORS=1 swift test --filter WireVectorTests` and say so
/// in docs/wire-protocol.md.
@Suite("Wire test vectors") struct WireVectorTests {
    static let names = Fixtures.vectors.map(\.name)

    static func resource(_ name: String) throws -> Data {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Resources/vectors"))
        return try Data(contentsOf: url)
    }

    @Test(arguments: names)
    func vectorMatches(_ name: String) throws {
        let example = try #require(Fixtures.vectors.first { $0.name == name }).envelope
        let encoded = example.encode()
        let json = Fixtures.json(example, encoded: encoded).render() + "\n"
        if ProcessInfo.processInfo.environment["ROLLSPEC_WRITE_VECTORS"] == "1" {
            let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources/vectors")
            try (Fixtures.hex(encoded) + "\n").write(to: dir.appendingPathComponent(name + ".hex"), atomically: true, encoding: .utf8)
            try json.write(to: dir.appendingPathComponent(name + ".json"), atomically: true, encoding: .utf8)
        }
        let hexText = String(decoding: try Self.resource(name + ".hex"), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let committed = try #require(Fixtures.bytes(hex: hexText))
        #expect(encoded == committed, "encoding \(name) differs from the committed bytes")
        #expect(try Envelope(decoding: committed) == example)
        #expect(String(decoding: try Self.resource(name + ".json"), as: UTF8.self) == json)
    }

    @Test func everyMessageTypeHasAVector() {
        let covered = Set(Fixtures.vectors.map { $0.envelope.body.type })
        #expect(covered == Set(WireMessageType.allCases))
    }

    @Test func checksumAndDigestCheckValues() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(Fixtures.hex(SHA256.hash(Array("abc".utf8)))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Fixtures.hex(SHA256.hash([UInt8]()))
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let twoBlocks = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(Fixtures.hex(SHA256.hash(twoBlocks))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func tableCRCMatchesBitwiseReference() {
        var rng = SplitMix64(seed: 11)
        for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(CRC32C.checksum(bytes) == CRC32C.checksumReference(bytes))
        }
    }

    @Test func incrementalSHA256MatchesOneShot() {
        var rng = SplitMix64(seed: 5)
        let bytes = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var h = SHA256()
        for cut in stride(from: 0, to: 1000, by: 37) { h.update(bytes[cut..<min(cut + 37, 1000)]) }
        #expect(h.finalize() == SHA256.hash(bytes))
    }
}

/// A small seeded generator so fuzz cases are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

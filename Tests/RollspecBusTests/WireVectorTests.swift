import Foundation
import Testing
import RollspecBus
import RollspecDigest
import RollspecModel

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
            try (hexString(encoded) + "\n").write(to: dir.appendingPathComponent(name + ".hex"), atomically: true, encoding: .utf8)
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

    /// SHA-256's check values are `RollspecDigestTests`'.
    @Test func checksumCheckValues() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func tableCRCMatchesBitwiseReference() {
        var rng = SplitMix64(seed: 11)
        for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(CRC32C.checksum(bytes) == CRC32C.checksumReference(bytes))
        }
    }
}

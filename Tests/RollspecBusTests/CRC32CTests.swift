import Foundation
import RollspecBus
import Testing

/// The C CRC-32C (SSE4.2 or tables) against the bit-by-bit reference.
@Suite struct CRC32CTests {
    @Test func checkValue() {
        let bytes = Array("123456789".utf8)
        #expect(CRC32C.checksum(bytes) == 0xE306_9283)
        #expect(bytes.withUnsafeBytes { CRC32C.checksumPortable($0) } == 0xE306_9283)
        #expect(CRC32C.checksumReference(bytes) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func everyLengthAndAlignmentAgreesWithTheReference() {
        var rng = SystemRandomNumberGenerator()
        let pool = (0..<400).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for length in 0...300 {
            for offset in [0, 1, 3, 7] where offset + length <= pool.count {
                let bytes = Array(pool[offset..<offset + length])
                let expected = CRC32C.checksumReference(bytes)
                #expect(CRC32C.checksum(bytes) == expected, "length \(length) offset \(offset)")
                pool.withUnsafeBytes { all in
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset..<offset + length])
                    #expect(CRC32C.checksum(slice) == expected)
                    #expect(CRC32C.checksumPortable(slice) == expected)
                }
            }
        }
    }

    /// Lengths around the three-chain blocks' edges (3 × 256 and 3 × 8192 bytes), where the
    /// chains are joined by the zero-extension tables, and past several long blocks.
    @Test func longInputsAcrossTheBlockEdgesAgreeWithTheReference() {
        var rng = SystemRandomNumberGenerator()
        let pool = (0..<(100_000 + 8)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for length in [767, 768, 769, 775, 1536, 2428, 24_575, 24_576, 24_577, 25_344, 49_152 + 767, 100_000] {
            for offset in [0, 5] {
                let bytes = Array(pool[offset..<offset + length])
                let expected = CRC32C.checksumReference(bytes)
                #expect(CRC32C.checksum(bytes) == expected, "length \(length) offset \(offset)")
                #expect(bytes.withUnsafeBytes { CRC32C.checksumPortable($0) } == expected)
            }
        }
    }
}

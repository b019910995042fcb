import Foundation
import Testing
@testable import RollspecBus
import RollspecDigest
import RollspecModel

@Suite("Chunk reassembly") struct ChunkReassemblerTests {
    static let whole = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) })
    static let chunks = WeightsChunk.split(whole, chunkSize: 128)  // 8 chunks, the last one short

    @Test func inOrder() throws {
        var r = ChunkReassembler()
        for chunk in Self.chunks.dropLast() { #expect(try r.add(chunk, version: 1) == nil) }
        #expect(try r.add(Self.chunks.last!, version: 1) == Self.whole)
        #expect(r.missingChunks.isEmpty)
    }

    /// Each chunk's bytes are the whole's own, at the chunk's offset: splitting copies nothing.
    @Test func chunksShareTheWholesBytes() {
        let base = Self.whole.withUnsafeBytes { $0.baseAddress! }
        for chunk in Self.chunks {
            #expect(chunk.bytes.withUnsafeBytes { $0.baseAddress } == base + Int(chunk.offset))
        }
    }

    @Test(arguments: [1, 2, 3, 4])
    func anyOrder(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var r = ChunkReassembler()
        var result: Data?
        for (i, chunk) in Self.chunks.shuffled(using: &rng).enumerated() {
            result = try r.add(chunk, version: 9)
            #expect((result == nil) == (i < Self.chunks.count - 1))
        }
        #expect(result == Self.whole)
    }

    /// Chunks that end inside pieces and batches, in order and shuffled: the prefix is hashed
    /// in batches of four pieces as it grows and the rest at the end, and the digest the sender
    /// computed in one go checks.
    @Test(arguments: [0, 1, 2]) func piecesAndBatchesAcrossChunkEdges(seed: UInt64) throws {
        let size = 2 * PieceDigest.batchSize + PieceDigest.pieceSize + 12_345
        let whole = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 13) })
        var chunks = WeightsChunk.split(whole, chunkSize: PieceDigest.pieceSize + 3_000)
        var rng = SplitMix64(seed: seed)
        if seed > 0 { chunks.shuffle(using: &rng) }
        var r = ChunkReassembler()
        var result: Data?
        for chunk in chunks { result = try r.add(chunk, version: 1) }
        #expect(result == whole)
    }

    @Test func singleEmptyChunk() throws {
        var r = ChunkReassembler()
        #expect(try r.add(WeightsChunk.split(Data(), chunkSize: 10)[0], version: 1) == Data())
    }

    @Test func duplicateIsRefusedAndHarmless() throws {
        var r = ChunkReassembler()
        _ = try r.add(Self.chunks[0], version: 1)
        #expect(throws: ChunkError.duplicate(index: 0)) { try r.add(Self.chunks[0], version: 1) }
        for chunk in Self.chunks.dropFirst().dropLast() { _ = try r.add(chunk, version: 1) }
        #expect(try r.add(Self.chunks.last!, version: 1) == Self.whole)
    }

    /// Each version of a policy lands in the pages the one before last used: a released whole
    /// goes back to the spares and the next transfer of its size writes into it, every byte.
    /// A transfer that fails gives its mapping back too.
    @Test func aReleasedWholeIsReusedByTheNextTransferOfItsSize() throws {
        let spares = SpareMappings(limit: 2)
        var r = ChunkReassembler(maxTotalSize: 1 << 20, spares: spares)
        func version(_ v: UInt64) -> Data { Data(Self.whole.map { $0 &+ UInt8(truncatingIfNeeded: v) }) }
        func send(_ v: UInt64, tamper: Bool = false) throws -> Data? {
            var chunks = WeightsChunk.split(version(v), chunkSize: 128)
            if tamper { chunks[2].bytes[chunks[2].bytes.startIndex + 5] ^= 1 }
            var result: Data?
            for chunk in chunks { result = try r.add(chunk, version: v) }
            return result
        }
        func address(_ d: Data) -> UnsafeRawPointer? { d.withUnsafeBytes { $0.baseAddress } }

        var first: Data? = try send(1)
        #expect(first == version(1))
        let firstAddress = address(first!)
        #expect(spares.count == 0)
        first = nil  // the worker drops the policy it ran
        #expect(spares.count == 1)
        let second = try #require(try send(2))
        #expect(second == version(2), "every byte of the old version overwritten")
        #expect(address(second) == firstAddress)
        #expect(spares.count == 0)

        // A failed transfer takes a fresh mapping (the spare is gone) and hands it back.
        #expect(throws: ChunkError.digestMismatch) { try send(3, tamper: true) }
        #expect(spares.count == 1)
        let third = try #require(try send(4))
        #expect(third == version(4))
        #expect(spares.count == 0)

        // A transfer of another size does not take a spare of this one.
        _ = consume second
        #expect(spares.count == 1)
        var other = ChunkReassembler(maxTotalSize: 1 << 20, spares: spares)
        var result: Data?
        for chunk in WeightsChunk.split(Data(repeating: 9, count: 700), chunkSize: 128) { result = try other.add(chunk, version: 1) }
        #expect(result == Data(repeating: 9, count: 700))
        #expect(spares.count == 1)
        _ = third
    }

    @Test func missingChunkNeverCompletes() throws {
        var r = ChunkReassembler()
        for chunk in Self.chunks where chunk.index != 5 { #expect(try r.add(chunk, version: 1) == nil) }
        #expect(r.missingChunks == [5])
        #expect(r.bufferedBytes == Self.whole.count - 128)
    }

    @Test func wrongDigestDropsTheTransfer() throws {
        var r = ChunkReassembler()
        var tampered = Self.chunks
        tampered[3].bytes[tampered[3].bytes.startIndex] ^= 1
        for chunk in tampered.dropLast() { _ = try r.add(chunk, version: 1) }
        #expect(throws: ChunkError.digestMismatch) { try r.add(tampered.last!, version: 1) }
        #expect(r.bufferedBytes == 0)
        // A clean resend of the same version then succeeds.
        var result: Data?
        for chunk in Self.chunks { result = try r.add(chunk, version: 1) }
        #expect(result == Self.whole)
    }

    @Test func inconsistentAndOutOfRangeChunks() throws {
        var r = ChunkReassembler()
        _ = try r.add(Self.chunks[0], version: 1)
        var c = Self.chunks[1]
        c.count = 9
        #expect(throws: ChunkError.inconsistent(field: "count")) { try r.add(c, version: 1) }
        c = Self.chunks[1]
        c.totalSize += 1
        #expect(throws: ChunkError.inconsistent(field: "total_size")) { try r.add(c, version: 1) }
        c = Self.chunks[1]
        c.digest[0] ^= 1
        #expect(throws: ChunkError.inconsistent(field: "digest")) { try r.add(c, version: 1) }
        c = Self.chunks[1]
        c.index = 8
        #expect(throws: ChunkError.self) { try r.add(c, version: 1) }
        c = Self.chunks[1]
        c.offset = 990
        #expect(throws: ChunkError.self) { try r.add(c, version: 1) }
        c = Self.chunks[1]
        c.offset = 64  // overlaps chunk 0
        #expect(throws: ChunkError.self) { try r.add(c, version: 1) }
        c = Self.chunks[1]
        c.offset = UInt64.max - 10
        #expect(throws: ChunkError.self) { try r.add(c, version: 1) }
        #expect(r.missingChunks.count == 7)
    }

    @Test func chunksThatDoNotTile() throws {
        // Two chunks of one byte claiming a 4-byte whole: all indices present, bytes missing.
        let digest = PieceDigest.hash([UInt8](repeating: 0, count: 4))
        var r = ChunkReassembler()
        _ = try r.add(WeightsChunk(index: 0, count: 2, offset: 0, totalSize: 4, digest: digest, bytes: Data([0])), version: 1)
        #expect(throws: ChunkError.sizeMismatch(received: 2, expected: 4)) {
            try r.add(WeightsChunk(index: 1, count: 2, offset: 3, totalSize: 4, digest: digest, bytes: Data([0])), version: 1)
        }
    }

    @Test func versionsSupersede() throws {
        var r = ChunkReassembler()
        _ = try r.add(Self.chunks[0], version: 5)
        // A newer version abandons the partial older one.
        let newer = WeightsChunk.split(Data("v6".utf8), chunkSize: 10)[0]
        #expect(try r.add(newer, version: 6) == Data("v6".utf8))
        #expect(throws: ChunkError.staleVersion(received: 5, current: 6)) { try r.add(Self.chunks[1], version: 5) }
        #expect(throws: ChunkError.staleVersion(received: 6, current: 6)) { try r.add(newer, version: 6) }
    }

    @Test func sizeLimitComesBeforeAnyBuffering() {
        var r = ChunkReassembler(maxTotalSize: 999)
        #expect(throws: ChunkError.tooLarge(size: 1000, limit: 999)) { try r.add(Self.chunks[0], version: 1) }
        #expect(r.bufferedBytes == 0)
    }

    @Test func travelsThroughTheWire() throws {
        var r = ChunkReassembler()
        var result: Data?
        for (i, chunk) in Self.chunks.enumerated().reversed() {
            let bytes = DraftWeightsChunk(draftVersion: 3, policyVersion: 2, acceptanceRate: 0.5, chunk: chunk)
                .encode(sender: "trainer-0", sequence: UInt64(i + 1))
            let m = try Envelope(decoding: bytes).message(as: DraftWeightsChunk.self)
            result = try r.add(m.chunk, version: m.draftVersion)
        }
        #expect(result == Self.whole)
    }
}

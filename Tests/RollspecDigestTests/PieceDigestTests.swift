import Foundation
import Testing
import RollspecModel
@testable import RollspecDigest

/// The bus's checkpoint digest (wire protocol §4) against values computed with Python's
/// hashlib (`sha256(b"".join(sha256(piece).digest() for each 1 MiB piece))`), and the
/// side-by-side SHA-NI path against pieces hashed one at a time.
@Suite("PieceDigest") struct PieceDigestTests {
    enum Path: String, CaseIterable, CustomTestStringConvertible {
        case best, portable
        func make() -> PieceDigest { self == .best ? PieceDigest() : PieceDigest(portable: ()) }
        var testDescription: String { rawValue }
    }

    static let piece = PieceDigest.pieceSize

    /// Byte i is (7 i + i / 4099) mod 256: easy to write in any language.
    static func pattern(_ count: Int) -> Data {
        Data((0..<count).map { UInt8(truncatingIfNeeded: 7 &* $0 &+ $0 / 4099) })
    }

    /// From hashlib, by the formula in `PieceDigest`'s documentation.
    static let vectors: [(count: Int, digest: String)] = [
        (piece, "1e632631c1b28cbef17eee2b9184119ffbfef89447912d0595d430af85eb321f"),
        (piece + 1, "93633a7e070d2abf6b3f4db7de57d15f56af2948831dbb9265c9bd932a939154"),
        (4 * piece, "81b5c6c7de43d44861fc8274e233b20c3962670718240b9c29600d74d1aeb1d1"),
        (5 * piece + 123, "00636ec9e182d1b24c238c7158e3d044e5d269c61afb3f575efead2422a20a22"),
        (9 * piece - 1, "0baea2f05a0b0f197d911779c2af57fc703595330ab1fb4fa6bc794c31b96fc5"),
    ]

    @Test(arguments: Path.allCases) func shortInputs(path: Path) {
        var empty = path.make()
        // No pieces: the SHA-256 of nothing.
        #expect(hexString(empty.finalize()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var abc = path.make()
        abc.update(Array("abc".utf8))
        // One piece: SHA-256 of SHA-256("abc").
        #expect(hexString(abc.finalize()) == "4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358")
    }

    @Test(arguments: Path.allCases) func hashlibVectors(path: Path) {
        for (count, digest) in Self.vectors {
            var h = path.make()
            h.update(Self.pattern(count))
            #expect(hexString(h.finalize()) == digest, "\(count) bytes")
        }
    }

    /// Fed in uneven spans that start and end inside pieces, the digest is the one-shot one.
    @Test(arguments: Path.allCases) func splitsAnywhereGiveTheSameDigest(path: Path) {
        let (count, digest) = Self.vectors[4]
        let bytes = Self.pattern(count)
        var rng = SplitMix64(seed: 5)
        for _ in 0..<4 {
            var h = path.make()
            var at = 0
            while at < count {
                let span = min(count - at, Int.random(in: 1...(6 * Self.piece), using: &rng))
                h.update(bytes[at..<at + span])
                at += span
            }
            #expect(hexString(h.finalize()) == digest)
        }
    }

    /// Four pieces side by side must not mix their lanes: pieces that differ only in one byte,
    /// in each lane in turn, give different digests, each the one pieces hashed singly give.
    @Test func lanesStayApart() {
        let base = Self.pattern(4 * Self.piece)
        var seen: Set<Data> = [PieceDigest.hash(base)]
        for lane in 0..<4 {
            var bytes = base
            bytes[lane * Self.piece + 1000] ^= 1
            let digest = PieceDigest.hash(bytes)
            var single = PieceDigest(portable: ())
            single.update(bytes)
            #expect(digest == single.finalize(), "lane \(lane)")
            #expect(seen.insert(digest).inserted, "lane \(lane)")
        }
    }
}

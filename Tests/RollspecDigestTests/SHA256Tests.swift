import Foundation
import Testing
import RollspecModel
@testable import RollspecDigest

/// The C SHA-256 (SHA-NI and portable paths) against FIPS 180-4 test vectors and against the
/// pure-Swift `SHA256.Reference`.
@Suite("SHA256") struct SHA256Tests {
    /// Both C paths: the best this CPU has, and portable C.
    enum Path: String, CaseIterable, CustomTestStringConvertible {
        case best, portable
        func make() -> SHA256 { self == .best ? SHA256() : SHA256(portable: ()) }
        var testDescription: String { rawValue }
    }

    static let vectors: [(message: [UInt8], digest: String)] = [
        ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (Array("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8),
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    ]

    static func digest(_ path: Path, _ bytes: [UInt8]) -> Data {
        var h = path.make()
        h.update(bytes)
        return h.finalize()
    }

    @Test(arguments: Path.allCases) func standardVectors(path: Path) {
        for (message, digest) in Self.vectors {
            #expect(hexString(Self.digest(path, message)) == digest, "\(message.count) bytes")
            #expect(hexString(SHA256.Reference.hash(message)) == digest, "reference, \(message.count) bytes")
        }
    }

    @Test(arguments: Path.allCases) func millionAs(path: Path) {
        let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        var h = path.make()
        let thousand = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { h.update(thousand) }
        #expect(hexString(h.finalize()) == expected)
        #expect(hexString(SHA256.hash(Data(repeating: UInt8(ascii: "a"), count: 1_000_000))) == expected)
    }

    @Test(arguments: Path.allCases) func randomLengthsMatchReference(path: Path) {
        var rng = SplitMix64(seed: 256)
        for length in 0...300 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(Self.digest(path, bytes) == SHA256.Reference.hash(bytes), "length \(length)")
        }
    }

    /// Updates split at arbitrary points, starting from unaligned addresses, give the one-shot digest.
    @Test(arguments: Path.allCases) func unalignedSplitsMatchReference(path: Path) {
        var rng = SplitMix64(seed: 77)
        let storage = (0..<1200).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for trial in 0..<60 {
            let start = Int.random(in: 0..<16, using: &rng)
            let length = Int.random(in: 0...1000, using: &rng)
            let bytes = storage[start..<start + length]
            var h = path.make()
            var cut = start
            while cut < start + length {
                let piece = min(Int.random(in: 0...130, using: &rng), start + length - cut)
                storage.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[cut..<cut + piece])) }
                cut += piece
            }
            #expect(h.finalize() == SHA256.Reference.hash(Array(bytes)), "trial \(trial), length \(length)")
        }
    }

    @Test func dataSlicesAndCopiesHashAlike() {
        let data = Data((0..<500).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let slice = data[3..<400]
        #expect(SHA256.hash(slice) == SHA256.Reference.hash(Array(slice)))
        var forked = SHA256()
        forked.update(data.prefix(100))
        var copy = forked
        forked.update(data.dropFirst(100))
        copy.update(data.dropFirst(100))
        #expect(forked.finalize() == copy.finalize())
    }
}

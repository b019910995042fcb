import CRollspecDigest
import Foundation

/// A hash fed in pieces: what `SHA256` and `PieceDigest` share.
public protocol StreamingDigest {
    init()
    mutating func update(_ bytes: UnsafeRawBufferPointer)
    /// Returns the 32-byte digest; the value is finished afterwards.
    mutating func finalize() -> Data
}

extension StreamingDigest {
    /// The 32-byte digest of `data`.
    public static func hash<Bytes: Collection>(_ data: Bytes) -> Data where Bytes.Element == UInt8 {
        var h = Self()
        h.update(data)
        return h.finalize()
    }

    /// Feeds more bytes.
    public mutating func update<Bytes: Collection>(_ data: Bytes) where Bytes.Element == UInt8 {
        if let data = data as? Data {
            data.withUnsafeBytes { update($0) }
        } else if data.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) == nil {
            Array(data).withUnsafeBytes { update($0) }
        }
    }
}

/// Bytes as lower-case hex, two digits each: how digests (and the broker's routing identities)
/// are printed.
public func hexString<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// SHA-256 (FIPS 180-4).
///
/// Computed by the `CRollspecDigest` C target: SHA-NI when the CPU has the x86 SHA extensions,
/// portable C otherwise. Check value:
/// `SHA256.hash("abc") == ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad`.
/// `SHA256.Reference` is the pure-Swift twin the tests compare against.
public struct SHA256: StreamingDigest, @unchecked Sendable {
    private var context = rs_sha256_ctx()

    public init() { rs_sha256_init(&context) }

    /// A hash that never uses SHA-NI (tests and benchmarks of the portable C path).
    init(portable: ()) { rs_sha256_init_portable(&context) }

    /// True when this CPU hashes with the x86 SHA extensions.
    public static var isAccelerated: Bool { rs_sha256_accelerated() != 0 }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        rs_sha256_update(&context, base, bytes.count)
    }

    /// Pads, processes the last block and returns the digest.
    public mutating func finalize() -> Data {
        var out = Data(count: 32)
        out.withUnsafeMutableBytes { rs_sha256_final(&context, $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        return out
    }
}

/// The digest of a whole checkpoint or draft on the bus (wire protocol §4): the bytes cut into
/// pieces of `pieceSize` (1 MiB; the last may be shorter, and no bytes make no pieces), and
/// the SHA-256 of the pieces' SHA-256 digests one after another.
///
/// As hard to forge as SHA-256 of the bytes, but the pieces are independent: with SHA-NI,
/// four are hashed side by side, twice the speed of one SHA-256 stream, which on the bus is
/// paid in every process a checkpoint reaches. In Python:
/// `sha256(b"".join(sha256(b[i:i + (1 << 20)]).digest() for i in range(0, len(b), 1 << 20)))`.
public struct PieceDigest: StreamingDigest, @unchecked Sendable {
    /// Bytes per piece.
    public static let pieceSize = Int(RS_PIECE_SIZE)
    /// The span that hashes fastest: four whole pieces, side by side with SHA-NI. Fewer whole
    /// pieces in one `update` are hashed one at a time.
    public static let batchSize = 4 * pieceSize
    private var context = rs_piece_digest_ctx()

    public init() { rs_piece_digest_init(&context) }

    /// Pieces one at a time through the portable C compression (tests).
    init(portable: ()) { rs_piece_digest_init_portable(&context) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        rs_piece_digest_update(&context, base, bytes.count)
    }

    public mutating func finalize() -> Data {
        var out = Data(count: 32)
        out.withUnsafeMutableBytes { rs_piece_digest_final(&context, $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        return out
    }
}

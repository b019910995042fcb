import CRollspecDigest
import Foundation

/// SHA-256 (FIPS 180-4), for the digest of a whole checkpoint or draft.
///
/// Computed by the `CRollspecDigest` C target: SHA-NI when the CPU has the x86 SHA extensions,
/// portable C otherwise, so a 540 MB checkpoint hashes in well under a second. Check value:
/// `SHA256.hash("abc") == ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad`.
/// `SHA256.Reference` is the pure-Swift twin the tests compare against.
public struct SHA256: @unchecked Sendable {
    private var context = rs_sha256_ctx()

    public init() { rs_sha256_init(&context) }

    /// A hash that never uses SHA-NI (tests and benchmarks of the portable C path).
    init(portable: ()) { rs_sha256_init_portable(&context) }

    /// True when this CPU hashes with the x86 SHA extensions.
    public static var isAccelerated: Bool { rs_sha256_accelerated() != 0 }

    /// The 32-byte digest of `data`.
    public static func hash<Bytes: Collection>(_ data: Bytes) -> Data where Bytes.Element == UInt8 {
        var h = SHA256()
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

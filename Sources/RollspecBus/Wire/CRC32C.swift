import CRollspecDigest

/// CRC-32C (Castagnoli), the envelope checksum.
///
/// Polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value 0xFFFFFFFF, input and output
/// reflected, final XOR 0xFFFFFFFF — the CRC of iSCSI (RFC 3720 B.4), ext4 and SSE4.2 `crc32`.
/// Check value: `CRC32C("123456789") == 0xE3069283`. Computed in C (`CRollspecDigest`): the
/// SSE4.2 `crc32` instruction when the CPU has it, slicing-by-8 tables (Intel, Kounavis & Berry
/// 2005) otherwise; `checksumReference` is the bit-by-bit twin the tests hold both to.
public enum CRC32C {
    /// Whether `checksum` uses the SSE4.2 instruction on this CPU.
    public static var isAccelerated: Bool { rs_crc32c_accelerated() == 1 }

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        update(0xFFFF_FFFF, bytes) ^ 0xFFFF_FFFF
    }

    /// The CRC-32C of any byte collection (`Data`, `[UInt8]`).
    public static func checksum<Bytes: Collection>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        if let crc = bytes.withContiguousStorageIfAvailable({ checksum(UnsafeRawBufferPointer($0)) }) { return crc }
        return Array(bytes).withUnsafeBytes { checksum($0) }
    }

    /// Advances a running (pre-inverted) CRC over `bytes`.
    static func update(_ start: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return start }
        return rs_crc32c_update(start, base, bytes.count)
    }

    /// The CRC-32C of `bytes` with the portable table code, whatever the CPU (tests, benchmarks).
    public static func checksumPortable(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
        return rs_crc32c_update_portable(0xFFFF_FFFF, base, bytes.count) ^ 0xFFFF_FFFF
    }

    /// Bit-by-bit reference, to hold the table version to in tests.
    public static func checksumReference(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 0 ? 0 : 0x82F6_3B78) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}

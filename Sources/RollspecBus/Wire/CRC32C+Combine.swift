/// CRC-32C of a concatenation from the CRCs of its parts, without reading the bytes again
/// (the GF(2) polynomial method of zlib's `crc32_combine`, Adler & Madler).
///
/// A broker that forwards one large payload under many envelope headers (a sequence number per
/// recipient) checksums the payload once and combines it with each small header's CRC.
extension CRC32C {
    /// The reflected polynomial, as in `tables`.
    static let polynomial: UInt32 = 0x82F6_3B78

    /// The CRC-32C of `a · b` given `crcA` = CRC-32C(a), `crcB` = CRC-32C(b) and b's length.
    public static func combine(_ crcA: UInt32, _ crcB: UInt32, lengthB: Int) -> UInt32 {
        precondition(lengthB >= 0)
        // Appending n bytes multiplies a's remainder by x^(8n) modulo the polynomial.
        return multiplyModP(xPowerModP(bytes: lengthB), crcA) ^ crcB
    }

    /// `a · b` modulo the polynomial, in the reflected bit order (bit 31 is x^0).
    static func multiplyModP(_ a: UInt32, _ b: UInt32) -> UInt32 {
        var m: UInt32 = 1 << 31
        var product: UInt32 = 0
        var b = b
        while m != 0 {
            if a & m != 0 {
                product ^= b
                if a & (m - 1) == 0 { break }
            }
            m >>= 1
            b = b & 1 != 0 ? (b >> 1) ^ polynomial : b >> 1
        }
        return product
    }

    /// `powers[k]` = x^(2^k) modulo the polynomial, k = 0…66: enough for any `Int` byte count
    /// (8 · n < 2^66), with no assumption about the polynomial's period.
    static let powers: [UInt32] = {
        var p: UInt32 = 1 << 30  // x^1
        var table: [UInt32] = []
        for _ in 0..<67 {
            table.append(p)
            p = multiplyModP(p, p)
        }
        return table
    }()

    /// x^(8 · bytes) modulo the polynomial.
    static func xPowerModP(bytes: Int) -> UInt32 {
        var result: UInt32 = 1 << 31  // x^0
        var n = UInt64(bytes)
        var k = 3  // 8 · bytes = bytes · 2^3
        while n != 0 {
            if n & 1 != 0 { result = multiplyModP(powers[k], result) }
            n >>= 1
            k += 1
        }
        return result
    }
}

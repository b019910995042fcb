/// The GPT-2 byte ↔ unicode table (Radford et al. 2019, `encoder.py` `bytes_to_unicode`).
///
/// Byte-level BPE vocabularies spell every byte as one printable character so that tokens are
/// readable strings: printable Latin-1 bytes stand for themselves, the other 68 bytes (control
/// characters, space, DEL, 0x80–0xA0, 0xAD) map in order to U+0100…U+0143 — space is `Ġ`
/// (U+0120) and newline is `Ċ` (U+010A).
enum ByteLevel {
    /// The character each byte is written as, indexed by byte.
    static let scalarOfByte: [Unicode.Scalar] = {
        var printable: [UInt8] = []
        printable += Array(UInt8(ascii: "!")...UInt8(ascii: "~"))
        printable += Array(UInt8(0xA1)...UInt8(0xAC))
        printable += Array(UInt8(0xAE)...UInt8(0xFF))
        let isPrintable = Set(printable)
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if isPrintable.contains(UInt8(b)) {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte each table character stands for, indexed by scalar value (< 0x144); -1 elsewhere.
    static let byteOfScalar: [Int16] = {
        var inverse = [Int16](repeating: -1, count: 0x144)
        for (b, s) in scalarOfByte.enumerated() { inverse[Int(s.value)] = Int16(b) }
        return inverse
    }()

    /// The bytes a vocabulary string stands for, or nil if it has a character outside the table
    /// (such tokens — special tokens, mostly — stand for their own UTF-8 bytes instead).
    static func bytes(of token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for s in token.unicodeScalars {
            guard s.value < 0x144 else { return nil }
            let b = byteOfScalar[Int(s.value)]
            guard b >= 0 else { return nil }
            out.append(UInt8(b))
        }
        return out
    }

    /// The vocabulary spelling of raw bytes (`"Ġthe"` for `" the"`).
    static func string(of bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(scalarOfByte[Int(b)]) }
        return String(s)
    }
}

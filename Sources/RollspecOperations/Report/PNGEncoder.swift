import Foundation
import RollspecClient
import RollspecRoles

/// Encodes 8-bit RGB or RGBA rasters as PNG files with no zlib dependency.
///
/// The image data goes into the zlib stream as deflate "stored" (uncompressed) blocks, so the
/// file is about `width * height * channels` bytes; every row uses filter type 0 (None).
/// Formats: PNG (W3C / ISO 15948, 2nd ed.), zlib (RFC 1950), deflate stored blocks
/// (RFC 1951 §3.2.4).
public enum PNGEncoder {
    /// The PNG colour types this encoder writes (both 8 bits per channel).
    public enum ColorType: UInt8, Sendable {
        case rgb = 2
        case rgba = 6

        /// Bytes per pixel.
        public var channels: Int { self == .rgb ? 3 : 4 }
    }

    /// The 8-byte PNG file signature.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The largest payload of one stored deflate block (its LEN field is 16 bits).
    public static let maxStoredBlockLength = 65_535

    /// PNG bytes of a raster.
    /// - Parameters:
    ///   - pixels: `[height, width, channels]` bytes, row-major, top row first.
    ///   - width: Pixels per row, at least 1.
    ///   - height: Rows, at least 1.
    ///   - colorType: `.rgb` (3 bytes per pixel) or `.rgba` (4, straight alpha).
    /// - Returns: A complete PNG file: signature, IHDR, one IDAT, IEND.
    public static func encode(pixels: [UInt8], width: Int, height: Int, colorType: ColorType = .rgb) -> Data {
        precondition(width > 0 && height > 0, "PNG images are at least 1×1")
        precondition(width <= Int(Int32.max) && height <= Int(Int32.max))
        let rowBytes = width * colorType.channels
        precondition(pixels.count == rowBytes * height, "pixels must hold width * height * channels bytes")

        // Filtered scanlines: each row is its filter-type byte (0, None) then the row as is.
        var scanlines = [UInt8]()
        scanlines.reserveCapacity((rowBytes + 1) * height)
        for row in 0..<height {
            scanlines.append(0)
            scanlines.append(contentsOf: pixels[row * rowBytes..<(row + 1) * rowBytes])
        }

        var header = [UInt8]()
        appendBigEndian(UInt32(width), to: &header)
        appendBigEndian(UInt32(height), to: &header)
        // Bit depth 8, colour type, compression 0 (deflate), filter method 0, no interlace.
        header += [8, colorType.rawValue, 0, 0, 0]

        var file = signature
        appendChunk("IHDR", header, to: &file)
        appendChunk("IDAT", zlibStored(scanlines), to: &file)
        appendChunk("IEND", [], to: &file)
        return Data(file)
    }

    /// A zlib stream (RFC 1950) holding `data` in stored deflate blocks of at most
    /// `maxStoredBlockLength` bytes, followed by the Adler-32 of `data`.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        let blocks = max(1, (data.count + maxStoredBlockLength - 1) / maxStoredBlockLength)
        var out = [UInt8]()
        out.reserveCapacity(data.count + 5 * blocks + 6)
        // CMF 0x78: deflate with a 32 KiB window; FLG 0x01: no preset dictionary, fastest
        // level, and 0x7801 is a multiple of 31 as the FCHECK bits require.
        out += [0x78, 0x01]
        for block in 0..<blocks {
            let start = block * maxStoredBlockLength
            let end = min(start + maxStoredBlockLength, data.count)
            let length = UInt16(end - start)
            // BFINAL in bit 0, BTYPE 00 (stored) in bits 1–2; the rest of the byte is padding.
            out.append(block == blocks - 1 ? 1 : 0)
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
            out.append(contentsOf: data[start..<end])
        }
        appendBigEndian(adler32(data), to: &out)
        return out
    }

    /// Adler-32 (RFC 1950 §8.2) of `bytes`.
    public static func adler32(_ bytes: [UInt8]) -> UInt32 {
        let modulus: UInt32 = 65_521
        var a: UInt32 = 1
        var b: UInt32 = 0
        // 5552 bytes is the longest run whose sums cannot overflow 32 bits before the modulo.
        var start = 0
        while start < bytes.count {
            let end = min(start + 5552, bytes.count)
            for i in start..<end {
                a &+= UInt32(bytes[i])
                b &+= a
            }
            a %= modulus
            b %= modulus
            start = end
        }
        return b << 16 | a
    }

    /// CRC-32 (ISO 3309, polynomial 0xEDB88320 reflected) as PNG chunks use it.
    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }

    private static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// Appends length, type, data and the CRC over type and data.
    private static func appendChunk(_ type: String, _ data: [UInt8], to out: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        appendBigEndian(UInt32(data.count), to: &out)
        out += typeBytes
        out += data
        appendBigEndian(crc32(typeBytes + data), to: &out)
    }

    private static func appendBigEndian(_ value: UInt32, to out: inout [UInt8]) {
        out += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
}

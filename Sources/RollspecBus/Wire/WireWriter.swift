import Foundation

/// Appends protocol primitives to a buffer: little-endian integers and floats, `u32`
/// length-prefixed strings, byte strings and arrays, `u8`-tagged optionals (docs/wire-protocol.md §3).
public struct WireWriter: Sendable {
    public private(set) var data: Data

    public init(capacity: Int = 256) { data = Data(capacity: capacity) }

    public mutating func u8(_ v: UInt8) { data.append(v) }
    public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    public mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    public mutating func f32(_ v: Float) { u32(v.bitPattern) }
    public mutating func f64(_ v: Double) { u64(v.bitPattern) }
    public mutating func bool(_ v: Bool) { u8(v ? 1 : 0) }

    /// Overwrites four bytes at `offset` (a length known only after what follows was written).
    public mutating func patchU32(_ v: UInt32, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { data.replaceSubrange(offset..<offset + 4, with: $0) }
    }

    /// A count or byte length; the protocol caps both at `UInt32.max`.
    public mutating func count(_ n: Int) {
        precondition(n >= 0 && n <= Int(UInt32.max), "length \(n) does not fit the u32 length field")
        u32(UInt32(n))
    }

    public mutating func string(_ s: String) {
        count(s.utf8.count)
        data.append(contentsOf: s.utf8)
    }

    public mutating func bytes(_ b: Data) {
        count(b.count)
        data.append(b)
    }

    /// Bytes with no length prefix (a fixed-size field such as a digest).
    public mutating func raw(_ b: Data) { data.append(b) }

    public mutating func i32Array(_ a: [Int32]) {
        count(a.count)
        appendLittleEndian(a)
    }

    public mutating func f32Array(_ a: [Float]) {
        count(a.count)
        #if _endian(little)
        a.withUnsafeBytes { data.append(contentsOf: $0) }
        #else
        for v in a { f32(v) }
        #endif
    }

    public mutating func u64Array(_ a: [UInt64]) {
        count(a.count)
        appendLittleEndian(a)
    }

    public mutating func stringArray(_ a: [String]) {
        count(a.count)
        for s in a { string(s) }
    }

    /// `0` for nil, else `1` followed by the value.
    public mutating func optional<T>(_ v: T?, _ write: (inout WireWriter, T) -> Void) {
        if let v {
            u8(1)
            write(&self, v)
        } else {
            u8(0)
        }
    }

    private mutating func appendLittleEndian<T: FixedWidthInteger>(_ a: [T]) {
        #if _endian(little)
        a.withUnsafeBytes { data.append(contentsOf: $0) }
        #else
        for v in a { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        #endif
    }
}

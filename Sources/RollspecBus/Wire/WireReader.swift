import Foundation

/// Reads protocol primitives strictly: every read names its field, checks the bytes are
/// there before touching them, and checks counts against the bytes left *before* allocating,
/// so a forged length can neither crash the reader nor make it reserve a huge buffer. Field names
/// are taken unevaluated and built only for an error: a router decodes tens of thousands of
/// messages a second, and `field + ".count"` allocated on every read.
public struct WireReader {
    private let data: Data
    /// Offset of the next unread byte, from the start of the input.
    public private(set) var offset = 0
    /// Offset just past the last byte this reader may read.
    private let end: Int

    public init(_ data: Data) {
        // Re-base slices so that offsets start at zero.
        self.data = data.startIndex == 0 ? data : Data(data)
        end = data.count
    }

    /// A reader over `range` of `data` (zero-based offsets), sharing its storage.
    init(_ data: Data, range: Range<Int>) {
        precondition(data.startIndex == 0 && range.upperBound <= data.count)
        self.data = data
        offset = range.lowerBound
        end = range.upperBound
    }

    public var remaining: Int { end - offset }

    /// Throws `trailingBytes` unless every byte was consumed.
    public func finish(_ field: @autoclosure () -> String) throws {
        if remaining != 0 { throw WireError.trailingBytes(field: field(), count: remaining) }
    }

    private mutating func take(_ n: Int, _ field: @autoclosure () -> String) throws -> Int {
        guard n <= remaining else { throw WireError.truncated(field: field(), needed: n, available: remaining) }
        defer { offset += n }
        return offset
    }

    private mutating func load<T: FixedWidthInteger>(_: T.Type, _ field: @autoclosure () -> String) throws -> T {
        let at = try take(MemoryLayout<T>.size, field())
        return T(littleEndian: data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: T.self) })
    }

    public mutating func u8(_ field: @autoclosure () -> String) throws -> UInt8 { try load(UInt8.self, field()) }
    public mutating func u16(_ field: @autoclosure () -> String) throws -> UInt16 { try load(UInt16.self, field()) }
    public mutating func u32(_ field: @autoclosure () -> String) throws -> UInt32 { try load(UInt32.self, field()) }
    public mutating func u64(_ field: @autoclosure () -> String) throws -> UInt64 { try load(UInt64.self, field()) }
    public mutating func i32(_ field: @autoclosure () -> String) throws -> Int32 { try load(Int32.self, field()) }

    /// A float32; NaN is never valid on the wire.
    public mutating func f32(_ field: @autoclosure () -> String) throws -> Float {
        let v = Float(bitPattern: try u32(field()))
        if v.isNaN { throw WireError.invalidFloat(field: field(), value: Double(v)) }
        return v
    }

    /// A float64; NaN is never valid on the wire.
    public mutating func f64(_ field: @autoclosure () -> String) throws -> Double {
        let v = Double(bitPattern: try u64(field()))
        if v.isNaN { throw WireError.invalidFloat(field: field(), value: v) }
        return v
    }

    /// A byte that must be 0 or 1.
    public mutating func bool(_ field: @autoclosure () -> String) throws -> Bool {
        switch try u8(field()) {
        case 0: return false
        case 1: return true
        case let v: throw WireError.invalidEnum(field: field(), value: UInt64(v))
        }
    }

    /// A `u32` element count, checked against the bytes left: each element takes at least
    /// `minimumElementSize` bytes.
    public mutating func count(_ field: @autoclosure () -> String, minimumElementSize: Int) throws -> Int {
        let n = Int(try u32(field() + ".count"))
        if n > remaining / max(minimumElementSize, 1) {
            throw WireError.countTooLarge(field: field(), count: n, remaining: remaining)
        }
        return n
    }

    /// `n` bytes with no length prefix.
    public mutating func raw(_ n: Int, _ field: @autoclosure () -> String) throws -> Data {
        let at = try take(n, field())
        return data.subdata(in: at..<at + n)
    }

    /// A `u32` byte length and that many bytes.
    ///
    /// Large fields (a weights chunk's bytes) are not copied: they come back as a slice of the
    /// message, sharing its storage (copy-on-write as ever), so their indices need not start at
    /// zero. Small ones are copied, so that a few bytes do not keep a big message alive.
    public mutating func bytes(_ field: @autoclosure () -> String) throws -> Data {
        let n = Int(try u32(field() + ".length"))
        guard n <= remaining else { throw WireError.lengthOutOfRange(field: field(), length: n, remaining: remaining) }
        guard n >= Self.sharedBytesThreshold else { return try raw(n, field()) }
        let at = try take(n, field())
        return data[at..<at + n]
    }

    /// Byte fields at least this long are returned as slices of the message (`bytes`).
    static let sharedBytesThreshold = 64 << 10

    /// A `u32` byte length and that many bytes of valid UTF-8.
    public mutating func string(_ field: @autoclosure () -> String) throws -> String {
        let n = Int(try u32(field() + ".length"))
        guard n <= remaining else { throw WireError.lengthOutOfRange(field: field(), length: n, remaining: remaining) }
        return try string(exactly: n, field())
    }

    /// `n` bytes of valid UTF-8 whose length came from elsewhere.
    public mutating func string(exactly n: Int, _ field: @autoclosure () -> String) throws -> String {
        let at = try take(n, field())
        let s = data.withUnsafeBytes { raw -> String? in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[at..<at + n])
            // ASCII (ids, names: nearly every string on the bus) is valid UTF-8 as it stands;
            // anything else is validated strictly.
            if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
            return String(validating: bytes, as: UTF8.self)
        }
        guard let s else { throw WireError.invalidUTF8(field: field()) }
        return s
    }

    public mutating func i32Array(_ field: @autoclosure () -> String) throws -> [Int32] {
        let n = try count(field(), minimumElementSize: 4)
        return try integers(n, Int32.self, field())
    }

    public mutating func u64Array(_ field: @autoclosure () -> String) throws -> [UInt64] {
        let n = try count(field(), minimumElementSize: 8)
        return try integers(n, UInt64.self, field())
    }

    public mutating func f32Array(_ field: @autoclosure () -> String) throws -> [Float] {
        let n = try count(field(), minimumElementSize: 4)
        return try floats(n, field())
    }

    public mutating func stringArray(_ field: @autoclosure () -> String) throws -> [String] {
        let n = try count(field(), minimumElementSize: 4)
        return try (0..<n).map { i in try string("\(field())[\(i)]") }
    }

    /// `n` int32 values with no count prefix (the count came from elsewhere and was checked).
    public mutating func i32s(_ n: Int, _ field: @autoclosure () -> String) throws -> [Int32] {
        guard n <= remaining / 4 else { throw WireError.countTooLarge(field: field(), count: n, remaining: remaining) }
        return try integers(n, Int32.self, field())
    }

    /// `n` float32 values with no count prefix.
    public mutating func f32s(_ n: Int, _ field: @autoclosure () -> String) throws -> [Float] {
        guard n <= remaining / 4 else { throw WireError.countTooLarge(field: field(), count: n, remaining: remaining) }
        return try floats(n, field())
    }

    /// `n` little-endian integers read in one pass (a trajectory carries hundreds; one
    /// `Data` access per element cost more than the rest of its decoding).
    private mutating func integers<T: FixedWidthInteger>(_ n: Int, _: T.Type, _ field: @autoclosure () -> String) throws -> [T] {
        try elements(n, field()) { raw, offset in T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    /// `n` values of `T`'s size in one pass: one copy where the wire's byte order is the
    /// host's, else `element` (the value at a byte offset, from little-endian) for each.
    private mutating func elements<T>(_ n: Int, _ field: @autoclosure () -> String,
                                      _ element: (UnsafeRawBufferPointer, Int) -> T) throws -> [T] {
        let size = MemoryLayout<T>.size
        let at = try take(n * size, field())
        return data.withUnsafeBytes { raw in
            [T](unsafeUninitializedCapacity: n) { out, initialized in
                #if _endian(little)
                if n > 0 { UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: raw.baseAddress! + at, byteCount: n * size) }
                #else
                for i in 0..<n { out[i] = element(raw, at + i * size) }
                #endif
                initialized = n
            }
        }
    }

    /// `n` float32 values in one pass; NaN is never valid on the wire.
    private mutating func floats(_ n: Int, _ field: @autoclosure () -> String) throws -> [Float] {
        let values = try elements(n, field()) { raw, offset in
            Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        }
        if let nan = values.first(where: \.isNaN) { throw WireError.invalidFloat(field: field(), value: Double(nan)) }
        return values
    }

    /// A `u8` tag (0 absent, 1 present) and, if present, the value.
    public mutating func optional<T>(_ field: @autoclosure () -> String, _ read: (inout WireReader) throws -> T) throws -> T? {
        try bool(field() + ".present") ? try read(&self) : nil
    }

    /// A `u8` enumeration value.
    public mutating func enumeration<E: RawRepresentable>(_: E.Type, _ field: @autoclosure () -> String) throws -> E where E.RawValue == UInt8 {
        let raw = try u8(field())
        guard let v = E(rawValue: raw) else { throw WireError.invalidEnum(field: field(), value: UInt64(raw)) }
        return v
    }
}

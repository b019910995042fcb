import RollspecKernels

/// Conversions between `Float` and the two 16-bit float formats checkpoints use: IEEE
/// half (F16) and bfloat16 (BF16, the top half of a `Float`'s bits).
enum HalfPrecision {
    /// Every F16 bit pattern widened to `Float`; a table lookup beats per-element conversion
    /// calls on machines without F16C in the default target.
    static let f16Table: [Float] = (0...0xFFFF).map { Float(Float16(bitPattern: UInt16($0))) }

    @inline(__always)
    static func f16ToFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

    @inline(__always)
    static func bf16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    @inline(__always)
    static func floatToF16(_ value: Float) -> UInt16 { Float16(value).bitPattern }

    /// Widens `count` little-endian F16 values starting at `source` into `destination`.
    static func convertF16(_ destination: UnsafeMutablePointer<Float>, _ source: UnsafeRawPointer, count: Int) {
        if Int(bitPattern: source) % 2 == 0 {  // the vectorised kernel (F16C) needs aligned input
            convertHalfToFloat(destination, source.assumingMemoryBound(to: UInt16.self), count: count)
            return
        }
        f16Table.withUnsafeBufferPointer { table in
            for i in 0..<count {
                let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                destination[i] = table[Int(bits)]
            }
        }
    }

    /// Widens `count` little-endian BF16 values starting at `source` into `destination`.
    static func convertBF16(_ destination: UnsafeMutablePointer<Float>, _ source: UnsafeRawPointer, count: Int) {
        if Int(bitPattern: source) % 2 == 0 {
            convertBFloat16ToFloat(destination, source.assumingMemoryBound(to: UInt16.self), count: count)
            return
        }
        for i in 0..<count {
            let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            destination[i] = bf16ToFloat(bits)
        }
    }

    /// Copies `count` little-endian F32 values starting at `source` into `destination`.
    static func convertF32(_ destination: UnsafeMutablePointer<Float>, _ source: UnsafeRawPointer, count: Int) {
        UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: 4 * count)
    }

    /// Narrows `count` little-endian F64 values starting at `source` into `destination`.
    static func convertF64(_ destination: UnsafeMutablePointer<Float>, _ source: UnsafeRawPointer, count: Int) {
        for i in 0..<count {
            let bits = UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
            destination[i] = Float(Double(bitPattern: bits))
        }
    }
}

/// The product of tensor dimensions, nil on overflow or a negative dimension.
func checkedProduct(_ values: [Int]) -> Int? {
    var product = 1
    for v in values {
        guard v >= 0 else { return nil }
        let (p, overflow) = product.multipliedReportingOverflow(by: v)
        if overflow { return nil }
        product = p
    }
    return product
}

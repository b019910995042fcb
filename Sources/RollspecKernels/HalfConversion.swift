// Conversion of 16-bit checkpoint tensors (IEEE half, bfloat16) to float32, for the
// checkpoint loaders. Legend: count elements.

import CRollspecKernels

/// IEEE binary16 → float32 (F16C / AVX-512 `vcvtph2ps` where available).
public func convertHalfToFloat(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<UInt16>, count: Int) {
    rs_half_to_float(out, input, Int64(count))
}

/// Reference `convertHalfToFloat` (Swift's own `Float16` conversion where it exists).
public func convertHalfToFloatReference(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<UInt16>, count: Int
) {
    for i in 0..<count {
        let h = input[i]
        let sign: Float = h & 0x8000 == 0 ? 1 : -1
        let exponent = Int((h >> 10) & 0x1f), mantissa = Float(h & 0x3ff)
        switch exponent {
        case 0: out[i] = sign * mantissa * 0x1p-24  // subnormal (and zero)
        case 31: out[i] = mantissa == 0 ? sign * .infinity : .nan
        default: out[i] = sign * (1 + mantissa / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
        }
    }
}

/// bfloat16 → float32 (the bf16 bits are the top half of the float's).
public func convertBFloat16ToFloat(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<UInt16>, count: Int) {
    rs_bf16_to_float(out, input, Int64(count))
}

/// Reference `convertBFloat16ToFloat`.
public func convertBFloat16ToFloatReference(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<UInt16>, count: Int
) {
    for i in 0..<count { out[i] = Float(bitPattern: UInt32(input[i]) << 16) }
}

// Matrix multiplication of bfloat16-rounded inputs against bfloat16 weights, for a bfloat16
// policy and for drafts: the same skinny kernel as `matmulForwardSkinny` streaming half the
// bytes, with VDPBF16PS where the CPU has it. Legend: N rows, C = inDim, OC = outDim.

import CRollspecKernels

/// An owned, 64-byte-aligned array of bfloat16 values (raw bits), rounded from floats.
public final class BFloat16Buffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<UInt16>

    /// `values` rounded to bfloat16 (nearest, ties to even).
    public init(rounding values: UnsafePointer<Float>, count: Int) {
        precondition(count >= 0)
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<UInt16>.stride, alignment: 64)
        pointer = raw.bindMemory(to: UInt16.self, capacity: max(count, 1))
        if count == 0 { pointer.initialize(to: 0) }
        Self.round(values, count: count, into: pointer)  // writes every element: no zeroing first
    }

    /// `values` rounded to bfloat16 as `init(rounding:count:)` does, written to `out`
    /// (`count` elements), which the caller owns.
    public static func round(_ values: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<UInt16>) {
        precondition(count >= 0)
        rs_float_to_bf16(out, values, Int64(count))
    }

    public convenience init(rounding buffer: FloatBuffer) {
        self.init(rounding: buffer.pointer, count: buffer.count)
    }

    deinit { pointer.deallocate() }

    /// The values widened back to float32 (exact: bf16 is the top half of a float).
    public func widened() -> FloatBuffer {
        FloatBuffer(count: count) { rs_bf16_to_float($0, pointer, Int64(count)) }
    }
}

extension FloatBuffer {
    /// A copy with every value rounded to bfloat16 (as `BFloat16Buffer(rounding:)`), held as
    /// float32.
    public func roundedToBFloat16() -> FloatBuffer {
        FloatBuffer(count: count) { rs_round_to_bf16($0, pointer, Int64(count)) }
    }

    /// Whether every value is a bfloat16 value already (its low 16 bits are zero), so that
    /// rounding would change nothing: one read of the buffer, no writes.
    public var isBFloat16Exact: Bool {
        let bits = UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt32.self)
        var low: UInt32 = 0
        var start = 0
        while start < count {  // a block at a time, so that a rounded value ends the scan early
            let end = min(start + 4096, count)
            for i in start..<end { low |= bits[i] & 0xFFFF }
            if low != 0 { return false }
            start = end
        }
        return true
    }
}

/// Rounds `count` values at `values` to bfloat16 in place (as `BFloat16Buffer(rounding:)`),
/// held as float32.
public func roundToBFloat16(_ values: UnsafeMutablePointer<Float>, count: Int) {
    rs_round_to_bf16(values, values, Int64(count))
}

/// `out[N, OC] = bf16(input[N, C]) · weight[OC, C]ᵀ + bias[OC]`: the input rounded to
/// bfloat16 (nearest, ties to even; `input` itself is not changed), bfloat16 weights, exact
/// products and float32 sums. Each weight row is read once for all N rows (meant for N up to
/// a few hundred).
///
/// - Parameter threaded: split the output rows across the kernel thread pool.
public func matmulForward(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: BFloat16Buffer, _ bias: UnsafePointer<Float>?,
    n: Int, inDim: Int, outDim: Int, threaded: Bool = true
) {
    precondition(weight.count == inDim * outDim, "bf16 weight has \(weight.count) values, expected \(outDim)×\(inDim)")
    rs_matmul_skinny_bf16(out, input, weight.pointer, bias, Int64(n), Int64(inDim), Int64(outDim), threaded ? 1 : 0)
}

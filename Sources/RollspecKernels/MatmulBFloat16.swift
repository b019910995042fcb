// Matrix multiplication against bfloat16 weights, for draft models: the same skinny kernel
// as `matmulForwardSkinny` streaming half the bytes. Legend: N rows, C = inDim, OC = outDim.

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
        pointer.initialize(repeating: 0, count: max(count, 1))
        rs_float_to_bf16(pointer, values, Int64(count))
    }

    public convenience init(rounding buffer: FloatBuffer) {
        self.init(rounding: buffer.pointer, count: buffer.count)
    }

    deinit { pointer.deallocate() }

    /// The values widened back to float32 (exact: bf16 is the top half of a float).
    public func widened() -> FloatBuffer {
        let out = FloatBuffer(count: count)
        rs_bf16_to_float(out.pointer, pointer, Int64(count))
        return out
    }
}

/// `out[N, OC] = input[N, C] · weight[OC, C]ᵀ + bias[OC]` with bfloat16 weights, float32
/// sums; each weight row is read once for all N rows (meant for N up to a few dozen).
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

extension KernelBenchmark {
    /// The shapes of the EAGLE draft for SmolLM2-135M: its decoder layer, `fc` and a head
    /// restricted to 8,190 tokens.
    public static let featureDraftShapes: [Shape] =
        [Shape("fc", inDim: 1152, outDim: 576)] + smolLM2Shapes.filter { $0.name != "lm_head" }
        + [Shape("head (8190)", inDim: 576, outDim: 8190)]

    /// Seconds per call of the float and the bfloat16 skinny kernel at each shape and row
    /// count, measured alternately in the same run with weights cycled through ≥ 96 MB of
    /// copies (from DRAM, as in a real pass), fastest of `repeats`.
    public static func bfloat16Matmul(
        shapes: [Shape] = featureDraftShapes, ns: [Int] = [1, 2, 3, 8], minSeconds: Double = 0.05, repeats: Int = 3
    ) -> [(shape: Shape, n: Int, float32: Double, bfloat16: Double)] {
        var rows: [(shape: Shape, n: Int, float32: Double, bfloat16: Double)] = []
        for shape in shapes {
            let weights = cycledWeights(shape)
            let copies = weights.count
            let rounded = weights.map { BFloat16Buffer(rounding: $0) }
            let maxN = ns.max() ?? 1
            let input = FloatBuffer(count: maxN * shape.inDim), out = FloatBuffer(count: maxN * shape.outDim)
            for j in 0..<input.count { input[j] = Float(j % 13) / 13 - 0.5 }
            for n in ns {
                var f32 = Double.infinity, bf16 = Double.infinity
                for _ in 0..<repeats {
                    f32 = min(f32, time(copies: copies, minSeconds: minSeconds) { i in
                        matmulForwardSkinny(out.pointer, input.pointer, weights[i].pointer, nil,
                                            n: n, inDim: shape.inDim, outDim: shape.outDim)
                    })
                    bf16 = min(bf16, time(copies: copies, minSeconds: minSeconds) { i in
                        matmulForward(out.pointer, input.pointer, rounded[i], nil, n: n, inDim: shape.inDim, outDim: shape.outDim)
                    })
                }
                rows.append((shape, n, f32, bf16))
            }
        }
        return rows
    }
}

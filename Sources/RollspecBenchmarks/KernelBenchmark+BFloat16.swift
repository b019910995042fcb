// The bfloat16 skinny kernel a bf16 policy and a draft use, against the float one, for
// `rollspec bench matmul --bfloat16`; on an AVX512_BF16 CPU also against itself one level down
// (AMX tiles → VDPBF16PS → float FMAs on widened values).

import RollspecKernels

extension KernelBenchmark {
    /// The shapes of the EAGLE draft for SmolLM2-135M: its decoder layer, `fc` and a head
    /// restricted to 8,190 tokens.
    public static let featureDraftShapes: [Shape] =
        [Shape("fc", inDim: 1152, outDim: 576)] + smolLM2Shapes.filter { $0.name != "lm_head" }
        + [Shape("head (8190)", inDim: 576, outDim: 8190)]

    /// Seconds per call of the float and the bfloat16 skinny kernel at each shape and row
    /// count, measured alternately in the same run with weights cycled through ≥ 96 MB of
    /// copies (from DRAM, as in a real pass), fastest of `repeats`. `bfloat16Below` is the bf16
    /// kernel held to `levelBelow` (the level under the detected one: VDPBF16PS under AMX, float
    /// FMAs under VDPBF16PS), timed only where the CPU has AVX512_BF16.
    /// The level `bfloat16Matmul` holds the bf16 kernel to for its last column.
    public static var levelBelow: KernelISA { KernelISA(rawValue: max(0, KernelISA.detected.rawValue - 1))! }

    public static func bfloat16Matmul(
        shapes: [Shape] = featureDraftShapes, ns: [Int] = [1, 2, 3, 8], minSeconds: Double = 0.05, repeats: Int = 3
    ) -> [(shape: Shape, n: Int, float32: Double, bfloat16: Double, bfloat16Below: Double?)] {
        var rows: [(shape: Shape, n: Int, float32: Double, bfloat16: Double, bfloat16Below: Double?)] = []
        let hasDotProducts = KernelISA.detected >= .avx512bf16
        for shape in shapes {
            let weights = cycledWeights(shape)
            let copies = weights.count
            // Packed as AMX tiles where the CPU has AMX, as a bf16 model's matrices are.
            let rounded = weights.map { BFloat16Buffer(rounding: $0) }
            for r in rounded { r.packTiles(inDim: shape.inDim, outDim: shape.outDim) }
            let maxN = ns.max() ?? 1
            let input = FloatBuffer(count: maxN * shape.inDim), out = FloatBuffer(count: maxN * shape.outDim)
            for j in 0..<input.count { input[j] = Float(j % 13) / 13 - 0.5 }
            for n in ns {
                var f32 = Double.infinity, bf16 = Double.infinity, below = Double.infinity
                let timeBF16 = {
                    time(copies: copies, minSeconds: minSeconds) { i in
                        matmulForward(out.pointer, input.pointer, rounded[i], nil, n: n, inDim: shape.inDim, outDim: shape.outDim)
                    }
                }
                for _ in 0..<repeats {
                    f32 = min(f32, time(copies: copies, minSeconds: minSeconds) { i in
                        matmulForwardSkinny(out.pointer, input.pointer, weights[i].pointer, nil,
                                            n: n, inDim: shape.inDim, outDim: shape.outDim)
                    })
                    bf16 = min(bf16, timeBF16())
                    if hasDotProducts {
                        KernelISA.current = levelBelow
                        below = min(below, timeBF16())
                        KernelISA.current = .detected
                    }
                }
                rows.append((shape, n, f32, bf16, hasDotProducts ? below : nil))
            }
        }
        return rows
    }
}

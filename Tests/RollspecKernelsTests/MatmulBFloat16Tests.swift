import Testing
import RollspecKernels

/// The bfloat16-weight skinny matmul against the float reference run on the same weights
/// widened back to float (so the only difference left is summation order), and the rounding
/// against hand-worked bit patterns.
@Suite("Matmul bf16", .serialized) struct MatmulBFloat16Tests {
    func check(n: Int, inDim: Int, outDim: Int, bias: Bool, threaded: Bool, isa: KernelISA) {
        let input = randomBuffer(n * inDim, seed: UInt64(n * 1000 + inDim))
        let weight = BFloat16Buffer(rounding: randomBuffer(outDim * inDim, seed: UInt64(outDim * 7 + inDim)))
        let b = bias ? randomBuffer(outDim, seed: 99) : nil
        let want = FloatBuffer(count: n * outDim), got = FloatBuffer(count: n * outDim)
        let widened = weight.widened()
        matmulForwardReference(want.pointer, input.pointer, widened.pointer, b?.pointer,
                               n: n, inDim: inDim, outDim: outDim)
        withISA(isa) {
            matmulForward(got.pointer, input.pointer, weight, b?.pointer, n: n, inDim: inDim, outDim: outDim,
                          threaded: threaded)
        }
        let err = relativeError(got, want)
        #expect(err < 1e-5, "n=\(n) C=\(inDim) OC=\(outDim) bias=\(bias) threaded=\(threaded) \(isa): \(err)")
    }

    @Test(arguments: [1, 2, 3, 5, 6, 7, 8, 13, 40])
    func matchesReference(n: Int) {
        for isa in supportedISAs {
            for (c, oc) in [(64, 48), (37, 13), (131, 67), (576, 130), (1003, 19), (16, 4), (5, 1), (1, 3)] {
                for bias in [false, true] {
                    check(n: n, inDim: c, outDim: oc, bias: bias, threaded: false, isa: isa)
                }
            }
            check(n: n, inDim: 200, outDim: 1001, bias: true, threaded: true, isa: isa)
        }
    }

    @Test func roundsToNearestEven() {
        // 1 + 2⁻⁸ is halfway between bf16 1 and 1 + 2⁻⁷: ties go to the even one (1).
        // 1 + 3·2⁻⁸ is halfway between 1 + 2⁻⁷ and 1 + 2⁻⁶: ties go to 1 + 2⁻⁶.
        // Just above halfway rounds up; NaN stays NaN; infinities and zero are exact.
        let values: [Float] = [1, 1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-8 + 0x1p-20, -2.5, .infinity, -0.0, .nan]
        let want: [Float] = [1, 1, 1 + 0x1p-6, 1 + 0x1p-7, -2.5, .infinity, -0.0, .nan]
        let rounded = values.withUnsafeBufferPointer { BFloat16Buffer(rounding: $0.baseAddress!, count: values.count) }
        let got = rounded.widened().array
        let direct = FloatBuffer(values).roundedToBFloat16().array  // float to float, no bf16 buffer
        for i in values.indices {
            if want[i].isNaN {
                #expect(got[i].isNaN && direct[i].isNaN)
            } else {
                #expect(got[i].bitPattern == want[i].bitPattern, "\(values[i])")
                #expect(direct[i].bitPattern == want[i].bitPattern, "\(values[i])")
            }
        }
    }
}

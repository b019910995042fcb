import Testing
import RollspecKernels
import RollspecTesting

/// The bfloat16 skinny matmul against the float reference run on the same weights widened
/// back to float and on the inputs rounded here (`BFloat16Reference`), so the only difference
/// left is summation order; the rounding against hand-worked bit patterns and against that
/// reference at every ISA level.
@Suite("Matmul bf16", .serialized) struct MatmulBFloat16Tests {
    /// Relative error of the kernel at `isa` against the reference on rounded inputs, and
    /// against the reference on the inputs as given.
    func errors(n: Int, inDim: Int, outDim: Int, bias: Bool, threaded: Bool, isa: KernelISA,
                tiles: Bool = false) -> (rounded: Float, unrounded: Float) {
        let input = randomBuffer(n * inDim, seed: UInt64(n * 1000 + inDim))
        let rounded = FloatBuffer(input.array.map(BFloat16Reference.nearest))
        let weight = BFloat16Buffer(rounding: randomBuffer(outDim * inDim, seed: UInt64(outDim * 7 + inDim)))
        if tiles { weight.packTiles(inDim: inDim, outDim: outDim) }
        let b = bias ? randomBuffer(outDim, seed: 99) : nil
        let want = FloatBuffer(count: n * outDim), unrounded = FloatBuffer(count: n * outDim)
        let got = FloatBuffer(count: n * outDim)
        let widened = weight.widened()
        matmulForwardReference(want.pointer, rounded.pointer, widened.pointer, b?.pointer,
                               n: n, inDim: inDim, outDim: outDim)
        matmulForwardReference(unrounded.pointer, input.pointer, widened.pointer, b?.pointer,
                               n: n, inDim: inDim, outDim: outDim)
        let before = input.array
        withISA(isa) {
            matmulForward(got.pointer, input.pointer, weight, b?.pointer, n: n, inDim: inDim, outDim: outDim,
                          threaded: threaded)
        }
        #expect(input.array == before, "the caller's input must not be rounded")
        return (relativeError(got, want), relativeError(got, unrounded))
    }

    func check(n: Int, inDim: Int, outDim: Int, bias: Bool, threaded: Bool, isa: KernelISA, tiles: Bool = false) {
        let err = errors(n: n, inDim: inDim, outDim: outDim, bias: bias, threaded: threaded, isa: isa, tiles: tiles).rounded
        #expect(err < 1e-5, "n=\(n) C=\(inDim) OC=\(outDim) bias=\(bias) threaded=\(threaded) \(isa) tiles=\(tiles): \(err)")
    }

    /// Not vacuous: at every level the inputs are rounded, which moves the result far more
    /// than summation order does.
    @Test func theInputsAreRoundedAtEveryLevel() {
        for isa in supportedISAs {
            let (rounded, unrounded) = errors(n: 8, inDim: 576, outDim: 64, bias: false, threaded: false, isa: isa)
            #expect(unrounded > 50 * max(rounded, 1e-7), "\(isa): \(unrounded) against \(rounded)")
        }
    }

    /// The vector rounding at every level agrees bit for bit with the reference on random
    /// values, halfway cases, values that carry into the exponent, subnormals, infinities and
    /// the largest finite floats; NaN stays NaN.
    @Test func roundingAgreesWithTheReferenceAtEveryLevel() {
        var values = randomBuffer(1000, seed: 5).array.map { $0 * 1e3 }
        for bits: UInt32 in [0x3F80_8000, 0x3F81_8000, 0x3F80_7FFF, 0x3FFF_FFFF, 0x3FFF_8000, 0x0000_0001,
                             0x0000_8000, 0x007F_FFFF, 0x8000_8000, 0x7F7F_FFFF, 0xFF7F_8000, 0x7F80_0000, 0x7FC0_0000] {
            values.append(Float(bitPattern: bits))
        }
        let want = values.map(BFloat16Reference.nearest)
        for isa in supportedISAs {
            for count in [values.count, 37, 16, 3] {  // vector loop, masked tail, tail only
                let got = withISA(isa) { FloatBuffer(Array(values.prefix(count))).roundedToBFloat16().array }
                for i in 0..<count where !(want[i].isNaN && got[i].isNaN) {
                    #expect(got[i].bitPattern == want[i].bitPattern, "\(isa) \(values[i]): \(got[i]) against \(want[i])")
                }
            }
        }
    }

    /// Exact when every value is a bf16 value: after rounding, empty, and not with one float
    /// value past the first block the scan reads, nor with a value that differs only in its
    /// lowest bit.
    @Test func bfloat16ExactnessIsSeenEverywhereInTheBuffer() {
        let rounded = randomBuffer(10_000, seed: 3).roundedToBFloat16()
        #expect(rounded.isBFloat16Exact)
        #expect(FloatBuffer(count: 0).isBFloat16Exact)
        #expect(!randomBuffer(10_000, seed: 3).isBFloat16Exact)
        for (index, bits) in [(9_999, UInt32(1)), (5_000, UInt32(0x8000)), (0, UInt32(0x10))] {
            let off = FloatBuffer(rounded.array)
            off[index] = Float(bitPattern: off[index].bitPattern | bits)
            #expect(!off.isBFloat16Exact, "value \(index) with bits \(bits) set")
        }
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

    /// The shapes the AMX kernels take (C a multiple of 32, OC ≥ 16), checked at every level,
    /// with the weights read in place and packed as tiles (`packTiles`; on a CPU without AMX
    /// nothing is packed and the same kernels run): one token block narrower than 16 and full,
    /// several with a ragged last one, more rows than one pass over the weights takes (48 with
    /// tiles, 64 in place) and more than the tiles serve (32), OC with and without rows past the
    /// last 16-row block, C padded to a multiple of 32 (300), on one thread and across the pool.
    @Test(arguments: [1, 3, 16, 17, 33, 50, 65])
    func matchesReferenceOnTileShapes(n: Int) {
        for isa in supportedISAs {
            for tiles in [false, true] {
                for (c, oc) in [(32, 16), (576, 130), (1536, 48), (96, 301), (300, 40)] {
                    check(n: n, inDim: c, outDim: oc, bias: oc != 48, threaded: false, isa: isa, tiles: tiles)
                }
                check(n: n, inDim: 576, outDim: 200, bias: true, threaded: true, isa: isa, tiles: tiles)
            }
        }
    }

    /// A prefill's rows (600, past every row bound the kernels had), which a `.bfloat16` model
    /// multiplies here when the CPU has AMX, at the CPU's own level only: the reference is slow.
    @Test func aPrefillsRows() {
        for tiles in [false, true] {
            check(n: 600, inDim: 96, outDim: 48, bias: true, threaded: true, isa: .detected, tiles: tiles)
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

/// The bfloat16 backward (`matmulBackward(…, transposedWeight:…)`) against the float reference
/// run on the output gradient, the input and the weight rounded here: only summation order is
/// left. Accumulation into existing gradients, the bias, reuse of one scratch across shapes,
/// and a wrong transposition (the weight given untransposed) is caught.
@Suite("Matmul bf16 backward", .serialized) struct MatmulBFloat16BackwardTests {
    @Test func backwardMatchesTheReferenceOnRoundedValues() {
        let scratch = MatmulBackwardScratch()
        // The last shape's transposes (600 × 130 and 600 × 64 values and more) are split across
        // the pool.
        for (n, inDim, outDim) in [(37, 64, 96), (5, 576, 192), (130, 48, 20), (1, 16, 16), (600, 120, 130)] {
            let input = randomBuffer(n * inDim, seed: UInt64(n + inDim)), dOut = randomBuffer(n * outDim, seed: UInt64(n + outDim + 1))
            let weight = randomBuffer(outDim * inDim, seed: UInt64(inDim * outDim))
            let round = { (b: FloatBuffer) in FloatBuffer(b.array.map(BFloat16Reference.nearest)) }
            let start = randomBuffer(n * inDim, seed: 3), startW = randomBuffer(outDim * inDim, seed: 4), startB = randomBuffer(outDim, seed: 5)
            let wantIn = FloatBuffer(start.array), wantW = FloatBuffer(startW.array)
            let (rOut, rIn, rW) = (round(dOut), round(input), round(weight))
            withExtendedLifetime((rOut, rIn, rW)) {
                matmulBackwardReference(wantIn.pointer, wantW.pointer, nil, rOut.pointer, rIn.pointer, rW.pointer,
                                        n: n, inDim: inDim, outDim: outDim)
            }
            // The bias gradient sums the gradient as given, in float32.
            let exactB = FloatBuffer(startB.array)
            for r in 0..<n { for o in 0..<outDim { exactB[o] += dOut[r * outDim + o] } }
            let gotIn = FloatBuffer(start.array), gotW = FloatBuffer(startW.array), gotB = FloatBuffer(startB.array)
            matmulBackward(gotIn.pointer, gotW.pointer, gotB.pointer, dOut.pointer, input.pointer,
                           transposedWeight: BFloat16Buffer(transposing: weight, rows: outDim, cols: inDim),
                           n: n, inDim: inDim, outDim: outDim, scratch: scratch)
            #expect(relativeError(gotIn, wantIn) < 1e-5, "dInput n=\(n) C=\(inDim) OC=\(outDim)")
            #expect(relativeError(gotW, wantW) < 1e-5, "dWeight n=\(n) C=\(inDim) OC=\(outDim)")
            #expect(relativeError(gotB, exactB) < 1e-6, "dBias n=\(n) C=\(inDim) OC=\(outDim)")
        }
    }

    @Test func aWeightNotTransposedIsCaught() {
        let (n, dim) = (9, 32)
        let input = randomBuffer(n * dim, seed: 1), dOut = randomBuffer(n * dim, seed: 2), weight = randomBuffer(dim * dim, seed: 3)
        let want = FloatBuffer(count: n * dim), got = FloatBuffer(count: n * dim)
        let rounded = { (b: FloatBuffer) in FloatBuffer(b.array.map(BFloat16Reference.nearest)) }
        let (rOut, rIn, rW) = (rounded(dOut), rounded(input), rounded(weight))
        withExtendedLifetime((rOut, rIn, rW)) {
            matmulBackwardReference(want.pointer, nil, nil, rOut.pointer, rIn.pointer, rW.pointer, n: n, inDim: dim, outDim: dim)
        }
        matmulBackward(got.pointer, nil, nil, dOut.pointer, input.pointer, transposedWeight: BFloat16Buffer(rounding: weight),
                       n: n, inDim: dim, outDim: dim, scratch: MatmulBackwardScratch())
        #expect(relativeError(got, want) > 0.1)
    }

    /// Several 32-blocks with ragged edges, on one thread and (300 × 250) split across the pool.
    @Test(arguments: [(70, 45), (300, 250)])
    func transposingRoundsEachValueIntoItsPlace(rows: Int, cols: Int) {
        let m = randomBuffer(rows * cols, seed: 8)
        let t = BFloat16Buffer(transposing: m, rows: rows, cols: cols).widened()
        var wrong = 0
        for r in 0..<rows { for c in 0..<cols where t[c * rows + r] != BFloat16Reference.nearest(m[r * cols + c]) { wrong += 1 } }
        #expect(wrong == 0)
    }
}

import Foundation
import Testing
import RollspecKernels

/// RMSNorm, softmax, SwiGLU, residual add, dot product and 16-bit conversions against their
/// reference twins, at every ISA level, on lengths that hit every vector tail.
@Suite("Elementwise", .serialized) struct ElementwiseTests {
    static let lengths = [1, 7, 15, 16, 17, 33, 64, 100, 576, 1000, 1536]

    @Test(arguments: lengths)
    func rmsNorm(dim: Int) {
        let n = 3
        let x = randomBuffer(n * dim, seed: UInt64(dim), in: -3...3), w = randomBuffer(dim, seed: 2)
        let want = FloatBuffer(count: n * dim)
        rmsNormForwardReference(want.pointer, x.pointer, w.pointer, n: n, dim: dim, eps: 1e-5)
        for isa in supportedISAs {
            let got = FloatBuffer(count: n * dim)
            withISA(isa) { rmsNormForward(got.pointer, x.pointer, w.pointer, n: n, dim: dim, eps: 1e-5) }
            #expect(relativeError(got, want) < 1e-5, "\(isa)")
            let inPlace = x.copy()  // out may alias input
            withISA(isa) { rmsNormForward(inPlace.pointer, inPlace.pointer, w.pointer, n: n, dim: dim, eps: 1e-5) }
            #expect(relativeError(inPlace, want) < 1e-5, "\(isa) in place")
        }
    }

    @Test(arguments: lengths + [49152])
    func softmax(dim: Int) {
        let n = 2
        let x = randomBuffer(n * dim, seed: UInt64(dim) + 3, in: -20...20)
        if dim > 1 { x[0] = -.infinity }  // masked entries must come out as 0
        let want = FloatBuffer(count: n * dim)
        softmaxForwardReference(want.pointer, x.pointer, n: n, dim: dim)
        for isa in supportedISAs {
            let got = x.copy()
            withISA(isa) { softmaxForward(got.pointer, got.pointer, n: n, dim: dim) }
            // Relative to each probability (plus a floor for the tiny ones).
            var worst: Float = 0
            for i in 0..<got.count { worst = max(worst, abs(got[i] - want[i]) / (want[i] + 1e-6)) }
            #expect(worst < 1e-4, "\(isa)")
            if dim > 1 { #expect(got[0] < 1e-30) }
        }
    }

    @Test(arguments: lengths)
    func swiglu(count: Int) {
        let gate = randomBuffer(count, seed: UInt64(count) + 4, in: -12...12)
        let up = randomBuffer(count, seed: UInt64(count) + 5, in: -2...2)
        if count > 2 { gate[0] = -100; gate[1] = 100 }  // saturated exp stays finite
        let want = FloatBuffer(count: count)
        swigluForwardReference(want.pointer, gate.pointer, up.pointer, count: count)
        for isa in supportedISAs {
            let got = gate.copy()  // out may alias gate
            withISA(isa) { swigluForward(got.pointer, got.pointer, up.pointer, count: count) }
            #expect(relativeError(got, want) < 1e-5, "\(isa)")
        }
    }

    /// A SwiGLU long enough to be split over the kernel pool (a verify of 8 rows: 12,288
    /// elements) gives every thread count the bits of one thread, also where a thread's share
    /// ends inside a vector.
    @Test(arguments: [4096, 4097, 12_288 + 5])
    func longSwigluSplitsWithoutChangingABit(count: Int) {
        let saved = kernelThreads
        defer { setKernelThreads(saved) }
        let gate = randomBuffer(count, seed: UInt64(count) + 31, in: -12...12)
        let up = randomBuffer(count, seed: UInt64(count) + 32, in: -2...2)
        let want = FloatBuffer(count: count)
        swigluForwardReference(want.pointer, gate.pointer, up.pointer, count: count)
        setKernelThreads(1)
        let one = gate.copy()
        swigluForward(one.pointer, one.pointer, up.pointer, count: count)
        #expect(relativeError(one, want) < 1e-5)
        for threads in [2, 3, 5] {
            setKernelThreads(threads)
            let got = gate.copy()  // out aliases gate, as in the model
            swigluForward(got.pointer, got.pointer, up.pointer, count: count)
            #expect(memcmp(got.pointer, one.pointer, count * MemoryLayout<Float>.size) == 0, "threads=\(threads)")
        }
    }

    @Test(arguments: lengths)
    func addAndDot(count: Int) {
        let a = randomBuffer(count, seed: UInt64(count) + 6), b = randomBuffer(count, seed: UInt64(count) + 7)
        for isa in supportedISAs {
            let want = a.copy(), got = a.copy()
            addInPlaceReference(want.pointer, b.pointer, count: count)
            withISA(isa) { addInPlace(got.pointer, b.pointer, count: count) }
            #expect(got.array == want.array, "\(isa)")
            let dot = withISA(isa) { dotProduct(a.pointer, b.pointer, count: count) }
            let ref = dotProductReference(a.pointer, b.pointer, count: count)
            #expect(abs(dot - ref) <= 1e-5 * Float(count).squareRoot() + 1e-6, "\(isa)")
            let scaled = a.copy()
            withISA(isa) { scaleInPlace(scaled.pointer, 0.5, count: count) }
            #expect(scaled.array == a.array.map { $0 * 0.5 })
        }
    }

    @Test func halfConversionCoversEveryBitPattern() {
        var bits = (0...UInt16.max).map { $0 }
        let count = bits.count - 3  // not a multiple of 16: exercises the tail
        let want = FloatBuffer(count: count)
        bits.withUnsafeMutableBufferPointer { h in
            convertHalfToFloatReference(want.pointer, h.baseAddress!, count: count)
            for isa in supportedISAs {
                let got = FloatBuffer(count: count)
                withISA(isa) { convertHalfToFloat(got.pointer, h.baseAddress!, count: count) }
                var mismatches = 0
                for i in 0..<count where !(got[i] == want[i] || (got[i].isNaN && want[i].isNaN)) {
                    mismatches += 1
                }
                #expect(mismatches == 0, "\(isa)")
            }
        }
    }

    @Test func bfloat16Conversion() {
        var bits: [UInt16] = (0..<1001).map { UInt16(truncatingIfNeeded: $0 &* 65) }
        let want = FloatBuffer(count: bits.count)
        bits.withUnsafeMutableBufferPointer { h in
            convertBFloat16ToFloatReference(want.pointer, h.baseAddress!, count: h.count)
            for isa in supportedISAs {
                let got = FloatBuffer(count: h.count)
                withISA(isa) { convertBFloat16ToFloat(got.pointer, h.baseAddress!, count: h.count) }
                #expect(got.array.map(\.bitPattern) == want.array.map(\.bitPattern), "\(isa)")
            }
        }
    }
}

/// The row statistics sampling and logprobs use, against their double-precision twins, at
/// every instruction-set level and at lengths that leave every tail.
@Suite("Row statistics", .serialized) struct RowStatisticsTests {
    @Test(arguments: [1, 7, 8, 15, 16, 17, 100, 49_152])
    func logSumExpMatchesTheReference(count: Int) {
        let x = randomBuffer(count, seed: UInt64(count), in: -20...20)
        for isa in supportedISAs {
            for scale: Float in [1, 1 / 0.7, 0.5] {
                let want = rowLogSumExpReference(x.pointer, count: count, scale: scale)
                let got = withISA(isa) { rowLogSumExp(x.pointer, count: count, scale: scale) }
                #expect(got.max == want.max && got.argmax == want.argmax, "\(isa) n=\(count)")
                #expect(abs(got.logSumExp - want.logSumExp) < 1e-5 * max(1, abs(want.logSumExp)), "\(isa) n=\(count) \(got) vs \(want)")
                // The shifted exponentials sum to what the log-sum-exp says.
                let e = FloatBuffer(count: count)
                let total = withISA(isa) { exponentiateShifted(e.pointer, x.pointer, count: count, scale: scale, max: got.max) }
                #expect(abs(log(total) - want.logSumShifted) < 1e-5, "\(isa) n=\(count)")
                for i in stride(from: 0, to: count, by: max(1, count / 50)) {
                    // The float argument (x − max)·scale carries ~1.2e-7 of its size in rounding.
                    let argument = Double(x[i] - got.max) * Double(scale), exact = exp(argument)
                    #expect(abs(Double(e[i]) - exact) <= 2.4e-7 * (2 + abs(argument)) * exact + 1e-37, "\(isa) i=\(i)")
                }
            }
        }
    }

    @Test func argmaxTakesTheFirstOfTiesAndTopKKeepsIdOrderAmongEquals() {
        let x = FloatBuffer([3, 5, 1, 5, 2, 5, 0, 4])
        #expect(rowLogSumExp(x.pointer, count: 8).argmax == 1)
        #expect(topKIndices(x.pointer, count: 8, k: 4) == [1, 3, 5, 7])
        #expect(topKIndices(x.pointer, count: 8, k: 1) == [1])  // the vectorised k = 1
        #expect(topKIndices(x.pointer, count: 8, k: 20) == topKIndicesReference(x.pointer, count: 8, k: 20))
        let r = randomBuffer(49_152, seed: 5)
        for k in [1, 2, 16, 100] {
            #expect(topKIndices(r.pointer, count: 49_152, k: k) == topKIndicesReference(r.pointer, count: 49_152, k: k))
        }
    }
}

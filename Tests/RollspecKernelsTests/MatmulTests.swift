import Testing
import RollspecKernels

/// The skinny matmul against `matmulForwardReference` at every decode/verify width and at
/// sizes that exercise each tail: C not a multiple of 16 (or 8), OC not a multiple of 4.
@Suite("Matmul", .serialized) struct MatmulTests {
    static let narrow = Array(1...16)
    static let wide = [17, 23, 29, 36, 40, 64, 97]

    func check(n: Int, inDim: Int, outDim: Int, bias: Bool, threaded: Bool, isa: KernelISA) {
        let input = randomBuffer(n * inDim, seed: UInt64(n * 1000 + inDim))
        let weight = randomBuffer(outDim * inDim, seed: UInt64(outDim * 7 + inDim))
        let b = bias ? randomBuffer(outDim, seed: 99) : nil
        let want = FloatBuffer(count: n * outDim), got = FloatBuffer(count: n * outDim)
        matmulForwardReference(
            want.pointer, input.pointer, weight.pointer, b?.pointer, n: n, inDim: inDim, outDim: outDim)
        withISA(isa) {
            matmulForwardSkinny(
                got.pointer, input.pointer, weight.pointer, b?.pointer,
                n: n, inDim: inDim, outDim: outDim, threaded: threaded)
        }
        let err = relativeError(got, want)
        #expect(err < 1e-5, "n=\(n) C=\(inDim) OC=\(outDim) bias=\(bias) threaded=\(threaded) \(isa): \(err)")
    }

    @Test(arguments: narrow)
    func skinnyEveryWidth(n: Int) {
        for isa in supportedISAs {
            for (c, oc) in [(64, 48), (37, 13), (131, 67), (576, 130), (16, 4), (5, 1), (1, 3)] {
                for bias in [false, true] {
                    check(n: n, inDim: c, outDim: oc, bias: bias, threaded: false, isa: isa)
                }
            }
            check(n: n, inDim: 200, outDim: 1001, bias: true, threaded: true, isa: isa)
        }
    }

    @Test(arguments: wide)
    func skinnyWide(n: Int) {
        for isa in supportedISAs {
            check(n: n, inDim: 77, outDim: 45, bias: true, threaded: false, isa: isa)
            check(n: n, inDim: 150, outDim: 301, bias: false, threaded: true, isa: isa)
        }
    }

    @Test(arguments: [1, 3, 8, 16, 17, 40, 100])
    func forwardMatchesReference(n: Int) {
        let c = 96, oc = 210
        let input = randomBuffer(n * c, seed: 5), weight = randomBuffer(oc * c, seed: 6)
        let bias = randomBuffer(oc, seed: 7)
        let want = FloatBuffer(count: n * oc), got = FloatBuffer(count: n * oc)
        matmulForwardReference(want.pointer, input.pointer, weight.pointer, bias.pointer, n: n, inDim: c, outDim: oc)
        matmulForward(got.pointer, input.pointer, weight.pointer, bias.pointer, n: n, inDim: c, outDim: oc)
        #expect(relativeError(got, want) < 1e-5)
    }

    @Test func threadCountsAgree() {
        let saved = kernelThreads
        defer { setKernelThreads(saved) }
        let n = 8, c = 160, oc = 1000
        let input = randomBuffer(n * c, seed: 11), weight = randomBuffer(oc * c, seed: 12)
        let want = FloatBuffer(count: n * oc)
        matmulForwardReference(want.pointer, input.pointer, weight.pointer, nil, n: n, inDim: c, outDim: oc)
        for threads in [1, 2, 3, 5] {
            setKernelThreads(threads)
            let got = FloatBuffer(count: n * oc)
            matmulForwardSkinny(got.pointer, input.pointer, weight.pointer, nil, n: n, inDim: c, outDim: oc)
            #expect(relativeError(got, want) < 1e-5, "threads=\(threads)")
        }
    }
}

import Testing
import RollspecKernels

/// Causal GQA attention against the reference: decode (one token after a long context),
/// verification (several tokens at once), odd head dims, with and without threads.
@Suite("Attention", .serialized) struct AttentionTests {
    struct Case: CustomStringConvertible, Sendable {
        var start, n, heads, kvHeads, headDim: Int
        var description: String { "start=\(start) n=\(n) H=\(heads) KV=\(kvHeads) D=\(headDim)" }
    }

    static let cases = [
        Case(start: 0, n: 1, heads: 1, kvHeads: 1, headDim: 16),
        Case(start: 0, n: 7, heads: 4, kvHeads: 4, headDim: 32),     // prefill, plain MHA
        Case(start: 37, n: 1, heads: 9, kvHeads: 3, headDim: 64),    // SmolLM2 decode
        Case(start: 300, n: 6, heads: 9, kvHeads: 3, headDim: 64),   // verify 6 tokens
        Case(start: 5, n: 3, heads: 8, kvHeads: 2, headDim: 24),     // D not a multiple of 16
        Case(start: 130, n: 2, heads: 6, kvHeads: 1, headDim: 100),  // MQA, D > 64
        Case(start: 1, n: 4, heads: 2, kvHeads: 1, headDim: 3),
    ]

    @Test(arguments: cases)
    func matchesReference(_ c: Case) {
        let length = c.start + c.n
        let q = randomBuffer(c.n * c.heads * c.headDim, seed: UInt64(c.start + 1), in: -2...2)
        let k = randomBuffer(length * c.kvHeads * c.headDim, seed: UInt64(c.start + 2), in: -2...2)
        let v = randomBuffer(length * c.kvHeads * c.headDim, seed: UInt64(c.start + 3))
        let want = FloatBuffer(count: c.n * c.heads * c.headDim)
        attentionForwardReference(
            want.pointer, q.pointer, keys: k.pointer, values: v.pointer, startPosition: c.start,
            n: c.n, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
        let saved = kernelThreads
        defer { setKernelThreads(saved) }
        for isa in supportedISAs {
            for threads in [1, 2] {
                setKernelThreads(threads)
                let got = FloatBuffer(count: want.count)
                withISA(isa) {
                    attentionForward(
                        got.pointer, q.pointer, keys: k.pointer, values: v.pointer, startPosition: c.start,
                        n: c.n, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
                }
                #expect(relativeError(got, want) < 1e-5, "\(isa) threads=\(threads)")
            }
        }
    }
}

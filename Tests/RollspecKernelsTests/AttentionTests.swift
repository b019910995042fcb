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
        everyPath(want) { got in
            attentionForward(
                got.pointer, q.pointer, keys: k.pointer, values: v.pointer, startPosition: c.start,
                n: c.n, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
        }
    }

    /// Runs `attend` on every ISA the CPU has, with 1 and 2 threads, each time into a fresh
    /// buffer compared with `want`.
    func everyPath(_ want: FloatBuffer, _ attend: (FloatBuffer) -> Void) {
        let saved = kernelThreads
        defer { setKernelThreads(saved) }
        for isa in supportedISAs {
            for threads in [1, 2] {
                setKernelThreads(threads)
                let got = FloatBuffer(count: want.count)
                withISA(isa) { attend(got) }
                #expect(relativeError(got, want) < 1e-5, "\(isa) threads=\(threads)")
            }
        }
    }

    /// A batch of sequences in one call, each over its own cache at its own position (decode
    /// steps, a verify, a prefill): against the reference run per sequence.
    @Test func aBatchOfSequencesMatchesTheReferencePerSequence() {
        let heads = 9, kvHeads = 3, d = 64, qDim = heads * d, kvDim = kvHeads * d
        let shapes = [(start: 37, n: 1), (start: 0, n: 5), (start: 120, n: 1), (start: 9, n: 3), (start: 200, n: 1)]
        let rows = shapes.reduce(0) { $0 + $1.n }
        let q = randomBuffer(rows * qDim, seed: 11, in: -2...2)
        let caches = shapes.enumerated().map { i, s in
            (k: randomBuffer((s.start + s.n) * kvDim, seed: UInt64(20 + i), in: -2...2),
             v: randomBuffer((s.start + s.n) * kvDim, seed: UInt64(40 + i)))
        }
        let want = FloatBuffer(count: rows * qDim)
        var row = 0
        for (s, cache) in zip(shapes, caches) {
            attentionForwardReference(
                want.pointer + row * qDim, q.pointer + row * qDim, keys: cache.k.pointer, values: cache.v.pointer,
                startPosition: s.start, n: s.n, heads: heads, kvHeads: kvHeads, headDim: d)
            row += s.n
        }
        var first = 0
        let segments = zip(shapes, caches).map { s, cache in
            defer { first += s.n }
            return AttentionSegment(keys: cache.k.pointer, values: cache.v.pointer, startPosition: s.start, n: s.n, row: first)
        }
        everyPath(want) { got in
            attentionForward(got.pointer, q.pointer, segments: segments, heads: heads, kvHeads: kvHeads, headDim: d)
        }
    }
}

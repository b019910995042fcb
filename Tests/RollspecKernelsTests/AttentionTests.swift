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

    /// Token-tree candidates: each attends over the chain before its position and over its own
    /// key and value (`lastKey`, `lastValue`), in the same call as the chain. On every path it
    /// must give the bits the same kernel gives with the cache's row at that position replaced,
    /// which is what decoding the candidate there sees, and match the reference on such a cache.
    /// The slots cover every place in the kernel's groups of four keys.
    @Test func candidatesOwnKeyAndValueGiveTheBitsOfACacheHoldingThem() {
        let heads = 9, kvHeads = 3, d = 64, qDim = heads * d, kvDim = kvHeads * d
        let start = 40, chain = 4, slots = [40, 41, 42, 43]
        let rows = chain + slots.count
        let q = randomBuffer(rows * qDim, seed: 5, in: -2...2)
        let k = randomBuffer((start + chain) * kvDim, seed: 6, in: -2...2)
        let v = randomBuffer((start + chain) * kvDim, seed: 7)
        let own = (k: randomBuffer(slots.count * kvDim, seed: 8, in: -2...2), v: randomBuffer(slots.count * kvDim, seed: 9))
        // The cache each candidate would see were it decoded at its slot.
        let swapped = slots.enumerated().map { a, slot in
            let sk = FloatBuffer(count: (slot + 1) * kvDim), sv = FloatBuffer(count: (slot + 1) * kvDim)
            sk.pointer.update(from: k.pointer, count: slot * kvDim)
            sv.pointer.update(from: v.pointer, count: slot * kvDim)
            (sk.pointer + slot * kvDim).update(from: own.k.pointer + a * kvDim, count: kvDim)
            (sv.pointer + slot * kvDim).update(from: own.v.pointer + a * kvDim, count: kvDim)
            return (k: sk, v: sv)
        }
        let reference = FloatBuffer(count: rows * qDim)
        attentionForwardReference(reference.pointer, q.pointer, keys: k.pointer, values: v.pointer, startPosition: start,
                                  n: chain, heads: heads, kvHeads: kvHeads, headDim: d)
        for (a, slot) in slots.enumerated() {
            attentionForwardReference(reference.pointer + (chain + a) * qDim, q.pointer + (chain + a) * qDim,
                                      keys: swapped[a].k.pointer, values: swapped[a].v.pointer, startPosition: slot, n: 1,
                                      heads: heads, kvHeads: kvHeads, headDim: d)
        }
        let saved = kernelThreads
        defer { setKernelThreads(saved) }
        for isa in supportedISAs {
            for threads in [1, 2] {
                setKernelThreads(threads)
                let got = FloatBuffer(count: rows * qDim), want = FloatBuffer(count: rows * qDim)
                withISA(isa) {
                    let segments = [AttentionSegment(keys: k.pointer, values: v.pointer, startPosition: start, n: chain, row: 0)]
                        + slots.enumerated().map { a, slot in
                            AttentionSegment(keys: k.pointer, values: v.pointer, startPosition: slot, n: 1, row: chain + a,
                                             lastKey: own.k.pointer + a * kvDim, lastValue: own.v.pointer + a * kvDim)
                        }
                    attentionForward(got.pointer, q.pointer, segments: segments, heads: heads, kvHeads: kvHeads, headDim: d)
                    attentionForward(want.pointer, q.pointer, keys: k.pointer, values: v.pointer, startPosition: start, n: chain,
                                     heads: heads, kvHeads: kvHeads, headDim: d)
                    for (a, slot) in slots.enumerated() {
                        attentionForward(want.pointer + (chain + a) * qDim, q.pointer + (chain + a) * qDim,
                                         keys: swapped[a].k.pointer, values: swapped[a].v.pointer, startPosition: slot, n: 1,
                                         heads: heads, kvHeads: kvHeads, headDim: d)
                    }
                }
                let same = (0..<got.count).allSatisfy { got[$0].bitPattern == want[$0].bitPattern }
                #expect(same, "\(isa) threads=\(threads): differs from the swapped cache by \(relativeError(got, want))")
                #expect(relativeError(got, reference) < 1e-5, "\(isa) threads=\(threads)")
            }
        }
    }
}

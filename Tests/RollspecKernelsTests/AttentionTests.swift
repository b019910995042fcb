import Testing
import RollspecKernels
import RollspecTesting

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

    /// Queries that attend together (a chain's tokens, its candidates at every place of the
    /// kernel's groups of four keys, the query heads of one kv head, sequences over other
    /// caches beside them) give the bits each gives alone (`attentionQueryBlock` 1), at every
    /// block size, on every path. Head dims with a partial last vector and above 64, MHA and MQA.
    @Test(arguments: [(heads: 9, kvHeads: 3, d: 64), (heads: 8, kvHeads: 2, d: 24), (heads: 6, kvHeads: 1, d: 100),
                      (heads: 4, kvHeads: 4, d: 32)])
    func queriesTogetherGiveTheBitsOfEachAlone(_ shape: (heads: Int, kvHeads: Int, d: Int)) {
        let (heads, kvHeads, d) = shape
        let qDim = heads * d, kvDim = kvHeads * d
        // A verify of a chain of 5 at 61 with 6 candidates at its positions, a decode step of a
        // second sequence, and a short prefill-like chain of a third.
        let start = 61, chain = 5, slots = [61, 62, 63, 64, 65, 61]
        let others = [(start: 130, n: 1), (start: 2, n: 7)]
        let rows = chain + slots.count + others.reduce(0) { $0 + $1.n }
        let q = randomBuffer(rows * qDim, seed: 31, in: -2...2)
        let k = randomBuffer((start + chain) * kvDim, seed: 32, in: -2...2), v = randomBuffer((start + chain) * kvDim, seed: 33)
        let own = (k: randomBuffer(slots.count * kvDim, seed: 34, in: -2...2), v: randomBuffer(slots.count * kvDim, seed: 35))
        let caches = others.enumerated().map { i, o in
            (k: randomBuffer((o.start + o.n) * kvDim, seed: UInt64(40 + i), in: -2...2), v: randomBuffer((o.start + o.n) * kvDim, seed: UInt64(50 + i)))
        }
        var segments = [AttentionSegment(keys: k.pointer, values: v.pointer, startPosition: start, n: chain, row: 0)]
        for (a, slot) in slots.enumerated() {
            segments.append(AttentionSegment(keys: k.pointer, values: v.pointer, startPosition: slot, n: 1, row: chain + a,
                                             lastKey: own.k.pointer + a * kvDim, lastValue: own.v.pointer + a * kvDim))
        }
        var row = chain + slots.count
        for (o, cache) in zip(others, caches) {
            segments.append(AttentionSegment(keys: cache.k.pointer, values: cache.v.pointer, startPosition: o.start, n: o.n, row: row))
            row += o.n
        }
        let savedThreads = kernelThreads, savedBlock = attentionQueryBlock
        defer { setKernelThreads(savedThreads); setAttentionQueryBlock(savedBlock) }
        withExtendedLifetime((k, v, own, caches)) {
            for isa in supportedISAs {
                setKernelThreads(1)
                setAttentionQueryBlock(1)
                let alone = FloatBuffer(count: rows * qDim)
                withISA(isa) { attentionForward(alone.pointer, q.pointer, segments: segments, heads: heads, kvHeads: kvHeads, headDim: d) }
                for threads in [1, 2] {
                    for block in [2, 3, 4, 5, 8, attentionQueryBlockMax] {
                        setKernelThreads(threads)
                        setAttentionQueryBlock(block)
                        let together = FloatBuffer(count: rows * qDim)
                        withISA(isa) {
                            attentionForward(together.pointer, q.pointer, segments: segments, heads: heads, kvHeads: kvHeads, headDim: d)
                        }
                        let same = (0..<together.count).allSatisfy { together[$0].bitPattern == alone[$0].bitPattern }
                        #expect(same, "\(isa) threads=\(threads) block=\(block): differs by \(relativeError(together, alone))")
                    }
                }
            }
        }
    }

    /// A bfloat16 cache (keys and values rounded by the library as a model writes them) gives
    /// the bits of a float32 cache holding the same values rounded by `BFloat16Reference`, for
    /// every kind of query (a chain, candidates with their own key and value, a sequence over
    /// another cache), one at a time and together, on every path. Widening is exact, so only
    /// the bytes read may differ.
    @Test(arguments: [(heads: 9, kvHeads: 3, d: 64), (heads: 8, kvHeads: 2, d: 24), (heads: 6, kvHeads: 1, d: 100)])
    func aBFloat16CacheGivesTheBitsOfAFloatCacheOfTheRoundedValues(_ shape: (heads: Int, kvHeads: Int, d: Int)) {
        let (heads, kvHeads, d) = shape
        let qDim = heads * d, kvDim = kvHeads * d
        let start = 45, chain = 3, slots = [45, 46, 47, 45]
        let other = (start: 90, n: 1)
        let rows = chain + slots.count + other.n
        let q = randomBuffer(rows * qDim, seed: 61, in: -2...2)
        let raw = [randomBuffer((start + chain) * kvDim, seed: 62, in: -2...2), randomBuffer((start + chain) * kvDim, seed: 63),
                   randomBuffer(slots.count * kvDim, seed: 64, in: -2...2), randomBuffer(slots.count * kvDim, seed: 65),
                   randomBuffer((other.start + other.n) * kvDim, seed: 66, in: -2...2),
                   randomBuffer((other.start + other.n) * kvDim, seed: 67)]
        let halves = raw.map { BFloat16Buffer(rounding: $0) }
        let rounded = raw.map { FloatBuffer($0.array.map(BFloat16Reference.nearest)) }
        #expect(zip(raw, rounded).allSatisfy { $0.array != $1.array }, "the rounding changed nothing")

        func segments(_ p: [UnsafeRawPointer], _ element: CacheElement) -> [AttentionSegment] {
            let b = element.bytes
            var parts = [AttentionSegment(keys: p[0], values: p[1], element: element, startPosition: start, n: chain, row: 0)]
            for (a, slot) in slots.enumerated() {
                parts.append(AttentionSegment(keys: p[0], values: p[1], element: element, startPosition: slot, n: 1,
                                              row: chain + a, lastKey: p[2] + a * kvDim * b, lastValue: p[3] + a * kvDim * b))
            }
            parts.append(AttentionSegment(keys: p[4], values: p[5], element: element, startPosition: other.start, n: other.n,
                                          row: chain + slots.count))
            return parts
        }
        let bf16 = segments(halves.map { UnsafeRawPointer($0.pointer) }, .bfloat16)
        let f32 = segments(rounded.map { UnsafeRawPointer($0.pointer) }, .float32)
        let savedThreads = kernelThreads, savedBlock = attentionQueryBlock
        defer { setKernelThreads(savedThreads); setAttentionQueryBlock(savedBlock) }
        withExtendedLifetime((raw, halves, rounded)) {
            for isa in supportedISAs {
                for (threads, block) in [(1, 1), (2, attentionQueryBlockMax)] {
                    setKernelThreads(threads)
                    setAttentionQueryBlock(block)
                    let got = FloatBuffer(count: rows * qDim), want = FloatBuffer(count: rows * qDim)
                    withISA(isa) {
                        attentionForward(got.pointer, q.pointer, segments: bf16, heads: heads, kvHeads: kvHeads, headDim: d)
                        attentionForward(want.pointer, q.pointer, segments: f32, heads: heads, kvHeads: kvHeads, headDim: d)
                    }
                    let same = (0..<got.count).allSatisfy { got[$0].bitPattern == want[$0].bitPattern }
                    #expect(same, "\(isa) threads=\(threads) block=\(block): differs by \(relativeError(got, want))")
                }
            }
        }
    }
}

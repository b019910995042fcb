// Timings of decode-time attention over a KV cache, for `rollspec bench attention`: the
// queries of a verify attending together (each cached key and value read once for all of
// them) against one query at a time, in the same run.

import RollspecKernels

extension KernelBenchmark {
    /// One attention call's shape: `sequences` caches of `context` positions, each with `rows`
    /// new tokens, SmolLM2-135M's heads (9 query heads of 64 over 3 kv heads).
    public struct AttentionShape: Sendable, CustomStringConvertible {
        public var context: Int
        public var rows: Int
        public var sequences: Int
        public init(context: Int, rows: Int, sequences: Int = 1) {
            self.context = context
            self.rows = rows
            self.sequences = sequences
        }
        public var description: String {
            sequences == 1 ? "context \(context), \(rows) rows" : "\(sequences) sequences × \(rows), context \(context)"
        }
    }

    /// Seconds per call (one layer) with the queries together and one at a time.
    public struct AttentionRow: Sendable {
        public var shape: AttentionShape
        public var together: Double
        public var alone: Double
        /// How many times faster the queries are together (> 1: faster).
        public var speedup: Double { alone / together }
    }

    /// Times `attentionForward(segments:)` on each shape with `attentionQueryBlock` at its
    /// default and at 1, alternating `rounds` times and keeping each one's fastest, with the
    /// kernel pool's current threads.
    public static func attention(shapes: [AttentionShape], rounds: Int = 5, minSeconds: Double = 0.05) -> [AttentionRow] {
        let heads = 9, kvHeads = 3, d = 64, qDim = heads * d, kvDim = kvHeads * d
        let savedBlock = attentionQueryBlock
        defer { setAttentionQueryBlock(savedBlock) }
        return shapes.map { shape in
            let positions = shape.context + shape.rows, tokens = shape.rows * shape.sequences
            let caches = (0..<shape.sequences).map { s in
                (k: patterned(positions * kvDim, seed: 2 * s), v: patterned(positions * kvDim, seed: 2 * s + 1))
            }
            let query = patterned(tokens * qDim, seed: 99), out = FloatBuffer(count: tokens * qDim)
            let segments = caches.enumerated().map { s, cache in
                AttentionSegment(keys: cache.k.pointer, values: cache.v.pointer, startPosition: shape.context,
                                 n: shape.rows, row: s * shape.rows)
            }
            var best = (together: Double.infinity, alone: Double.infinity)
            // The segments hold the caches' pointers: keep the buffers alive while they run.
            withExtendedLifetime((caches, query, out)) {
            for _ in 0..<rounds {
                for block in [attentionQueryBlockMax, 1] {
                    setAttentionQueryBlock(block)
                    let t = time(copies: 1, minSeconds: minSeconds) { _ in
                        attentionForward(out.pointer, query.pointer, segments: segments, heads: heads, kvHeads: kvHeads,
                                         headDim: d)
                    }
                    if block == 1 { best.alone = min(best.alone, t) } else { best.together = min(best.together, t) }
                }
            }
            }
            return AttentionRow(shape: shape, together: best.together, alone: best.alone)
        }
    }

    /// Values in [-1, 1) that differ from position to position (no two rows alike).
    static func patterned(_ count: Int, seed: Int) -> FloatBuffer {
        let b = FloatBuffer(count: count)
        for i in 0..<count { b[i] = Float((i &* 7919 &+ seed &* 104_729) % 2003) / 1001.5 - 1 }
        return b
    }
}

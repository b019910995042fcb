// Causal scaled-dot-product attention with grouped-query heads over a KV cache.
// Legend: T new tokens, H query heads, KV key/value heads (H % KV == 0), D headDim,
// L cached positions (including the T new ones, already appended).

import CRollspecKernels
import Foundation

/// Reference attention. Token `t` sits at position `startPosition + t` and attends to cache
/// positions `0 ... startPosition + t`; query head `h` reads key/value head `h / (H / KV)`.
///
/// - Parameters:
///   - out: `[T, H * D]`.
///   - query: `[T, H * D]`, RoPE already applied.
///   - keys: `[L, KV * D]` cache rows, RoPE already applied.
///   - values: `[L, KV * D]` cache rows.
public func attentionForwardReference(
    _ out: UnsafeMutablePointer<Float>, _ query: UnsafePointer<Float>,
    keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
    startPosition: Int, n: Int, heads: Int, kvHeads: Int, headDim: Int
) {
    let group = heads / kvHeads
    let kvDim = kvHeads * headDim
    let scale = 1 / Double(headDim).squareRoot()
    for t in 0..<n {
        let last = startPosition + t
        for h in 0..<heads {
            let q = query + (t * heads + h) * headDim
            let kvh = h / group
            var scores = [Double](repeating: 0, count: last + 1)
            for p in 0...last {
                let k = keys + p * kvDim + kvh * headDim
                var dot: Double = 0
                for d in 0..<headDim { dot += Double(q[d]) * Double(k[d]) }
                scores[p] = dot * scale
            }
            let m = scores.max()!
            var sum: Double = 0
            for p in 0...last { scores[p] = exp(scores[p] - m); sum += scores[p] }
            let o = out + (t * heads + h) * headDim
            for d in 0..<headDim {
                var acc: Double = 0
                for p in 0...last { acc += scores[p] * Double(values[p * kvDim + kvh * headDim + d]) }
                o[d] = Float(acc / sum)
            }
        }
    }
}

/// Attention as in `attentionForwardReference`: the fast path used by the model. The
/// (token, head) pairs are split across the kernel thread pool when the context is long.
public func attentionForward(
    _ out: UnsafeMutablePointer<Float>, _ query: UnsafePointer<Float>,
    keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
    startPosition: Int, n: Int, heads: Int, kvHeads: Int, headDim: Int
) {
    precondition(heads % kvHeads == 0, "heads must be a multiple of kvHeads")
    rs_attention(
        out, query, keys, values, Int64(startPosition), Int64(n), Int64(heads), Int64(kvHeads),
        Int64(headDim))
}

/// What a KV cache holds its keys and values as.
public enum CacheElement: Sendable, Equatable {
    /// float32, as the forward pass computes them.
    case float32
    /// Rounded to bfloat16 (nearest, ties to even) as they are written, and widened exactly as
    /// attention reads them: half the bytes a decode step reads from the cache, which in a
    /// rollout batch at a few hundred positions is more than the weights.
    case bfloat16

    /// Bytes per element.
    public var bytes: Int { self == .float32 ? 4 : 2 }
}

/// One sequence's part of `attentionForward(_:_:segments:heads:kvHeads:headDim:)`: its own
/// cache, the cache position of its first new token, and that token's row in query and out.
/// `lastKey` and `lastValue` (`[KV * D]` of the cache's element), when given, stand at position
/// `startPosition + n − 1` in place of the cache's rows there: a token-tree candidate that
/// shares its position with the chain's token attends over the chain before it and over itself.
public struct AttentionSegment {
    /// `[L, KV * D]` of `element`.
    public var keys: UnsafeRawPointer
    /// `[L, KV * D]` of `element`.
    public var values: UnsafeRawPointer
    public var element: CacheElement
    public var startPosition: Int
    public var n: Int
    public var row: Int
    public var lastKey: UnsafeRawPointer?
    public var lastValue: UnsafeRawPointer?

    public init(keys: UnsafeRawPointer, values: UnsafeRawPointer, element: CacheElement, startPosition: Int, n: Int,
                row: Int, lastKey: UnsafeRawPointer? = nil, lastValue: UnsafeRawPointer? = nil) {
        precondition((lastKey == nil) == (lastValue == nil), "a last key comes with its value")
        self.keys = keys
        self.values = values
        self.element = element
        self.startPosition = startPosition
        self.n = n
        self.row = row
        self.lastKey = lastKey
        self.lastValue = lastValue
    }

    /// A segment over a float32 cache.
    public init(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, startPosition: Int, n: Int, row: Int,
                lastKey: UnsafePointer<Float>? = nil, lastValue: UnsafePointer<Float>? = nil) {
        self.init(keys: UnsafeRawPointer(keys), values: UnsafeRawPointer(values), element: .float32,
                  startPosition: startPosition, n: n, row: row,
                  lastKey: lastKey.map { UnsafeRawPointer($0) }, lastValue: lastValue.map { UnsafeRawPointer($0) })
    }
}

/// `attentionForward` for a batch of sequences in one parallel pass: each segment's `n` new
/// tokens sit at rows `row ..< row + n` of `query` and `out` and attend over its own cache;
/// other rows are left alone. Gives the same bits as one call per segment.
public func attentionForward(
    _ out: UnsafeMutablePointer<Float>, _ query: UnsafePointer<Float>,
    segments: [AttentionSegment], heads: Int, kvHeads: Int, headDim: Int
) {
    precondition(heads % kvHeads == 0, "heads must be a multiple of kvHeads")
    let parts = segments.map {
        rs_attention_segment(keys: $0.keys, values: $0.values, start: Int64($0.startPosition), n: Int64($0.n),
                             row: Int64($0.row), last_key: $0.lastKey, last_value: $0.lastValue,
                             bf16: $0.element == .bfloat16 ? 1 : 0)
    }
    parts.withUnsafeBufferPointer {
        rs_attention_segments(out, query, $0.baseAddress, Int64($0.count), Int64(heads), Int64(kvHeads), Int64(headDim))
    }
}

/// Most queries (a verify's tokens × the query heads of one kv head, over one cache) that
/// attend together, each cached key and value read once for all of them (AVX-512). The bits
/// do not depend on it; 1 computes one query at a time, the baseline of `bench attention`.
/// Process-wide.
public var attentionQueryBlock: Int { Int(rs_attention_get_block()) }

/// Sets `attentionQueryBlock`, clamped to 1 ... `attentionQueryBlockMax`.
public func setAttentionQueryBlock(_ queries: Int) { rs_attention_set_block(Int32(clamping: queries)) }

/// The default and largest `attentionQueryBlock`.
public let attentionQueryBlockMax = Int(RS_ATTENTION_BLOCK)

// MARK: Training (packed sequences) and backward
// Legend: N rows of S packed sequences, sequence s owning rows offsets[s] ..< offsets[s+1];
// each token attends causally within its own sequence (positions restart at 0).

/// Reference training attention: like `attentionForwardReference` with `startPosition = 0`
/// for each packed sequence, and also the softmax log-sum-exp the backward needs.
///
/// - Parameters:
///   - out: `[N, H * D]`.
///   - lse: `[N, H]` log Σ_u exp(q·k_u/√D) of each (token, head).
///   - query: `[N, H * D]`, RoPE applied.
///   - keys, values: `[N, KV * D]`, keys with RoPE applied.
///   - offsets: `S + 1` row offsets, from 0 to N.
public func attentionTrainingForwardReference(
    _ out: UnsafeMutablePointer<Float>, _ lse: UnsafeMutablePointer<Float>,
    _ query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
    offsets: [Int], heads: Int, kvHeads: Int, headDim: Int
) {
    let group = heads / kvHeads, qDim = heads * headDim, kvDim = kvHeads * headDim
    let scale = 1 / Double(headDim).squareRoot()
    for s in 0..<offsets.count - 1 {
        let r0 = offsets[s], len = offsets[s + 1] - r0
        for t in 0..<len {
            for h in 0..<heads {
                let q = query + (r0 + t) * qDim + h * headDim
                let kvh = h / group
                var scores = [Double](repeating: 0, count: t + 1)
                for u in 0...t {
                    var dot: Double = 0
                    for d in 0..<headDim { dot += Double(q[d]) * Double(keys[(r0 + u) * kvDim + kvh * headDim + d]) }
                    scores[u] = dot * scale
                }
                let m = scores.max()!
                let sum = scores.reduce(0) { $0 + exp($1 - m) }
                lse[(r0 + t) * heads + h] = Float(m + log(sum))
                for d in 0..<headDim {
                    var acc: Double = 0
                    for u in 0...t { acc += exp(scores[u] - m) / sum * Double(values[(r0 + u) * kvDim + kvh * headDim + d]) }
                    out[(r0 + t) * qDim + h * headDim + d] = Float(acc)
                }
            }
        }
    }
}

/// Training attention as in the reference, parallel over (sequence, head).
public func attentionTrainingForward(
    _ out: UnsafeMutablePointer<Float>, _ lse: UnsafeMutablePointer<Float>,
    _ query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
    offsets: [Int], heads: Int, kvHeads: Int, headDim: Int
) {
    precondition(heads % kvHeads == 0, "heads must be a multiple of kvHeads")
    let seq = offsets.map(Int64.init)
    rs_attention_train_forward(
        out, lse, query, keys, values, seq, Int64(offsets.count - 1), Int64(heads), Int64(kvHeads), Int64(headDim))
}

/// Reference backward of training attention, in double, recomputing the probabilities
/// P = softmax(q·kᵀ/√D): `dValues_u += P·dOut`, `dS = P·(dOut·v_u − dOut·out)`,
/// `dQuery += dS·k_u/√D`, `dKeys_u += dS·q/√D`. The query heads of a group sum into their kv
/// head. All three gradients accumulate.
///
/// - Parameters:
///   - dQuery: `[N, H * D]`.
///   - dKeys, dValues: `[N, KV * D]`.
///   - dOut, out: `[N, H * D]`; `out` is the forward output.
public func attentionBackwardReference(
    _ dQuery: UnsafeMutablePointer<Float>, _ dKeys: UnsafeMutablePointer<Float>,
    _ dValues: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>,
    _ query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
    out: UnsafePointer<Float>, offsets: [Int], heads: Int, kvHeads: Int, headDim: Int
) {
    let group = heads / kvHeads, qDim = heads * headDim, kvDim = kvHeads * headDim
    let scale = 1 / Double(headDim).squareRoot()
    for s in 0..<offsets.count - 1 {
        let r0 = offsets[s], len = offsets[s + 1] - r0
        for t in 0..<len {
            for h in 0..<heads {
                let qi = (r0 + t) * qDim + h * headDim
                let kvh = h / group
                func k(_ u: Int, _ d: Int) -> Double { Double(keys[(r0 + u) * kvDim + kvh * headDim + d]) }
                func v(_ u: Int, _ d: Int) -> Double { Double(values[(r0 + u) * kvDim + kvh * headDim + d]) }
                var p = (0...t).map { u in
                    (0..<headDim).reduce(0.0) { $0 + Double(query[qi + $1]) * k(u, $1) } * scale
                }
                let m = p.max()!
                p = p.map { exp($0 - m) }
                let sum = p.reduce(0, +)
                p = p.map { $0 / sum }
                var di: Double = 0
                for d in 0..<headDim { di += Double(dOut[qi + d]) * Double(out[qi + d]) }
                for u in 0...t {
                    var dp: Double = 0
                    for d in 0..<headDim {
                        dp += Double(dOut[qi + d]) * v(u, d)
                        dValues[(r0 + u) * kvDim + kvh * headDim + d] += Float(p[u] * Double(dOut[qi + d]))
                    }
                    let ds = p[u] * (dp - di) * scale
                    for d in 0..<headDim {
                        dQuery[qi + d] += Float(ds * k(u, d))
                        dKeys[(r0 + u) * kvDim + kvh * headDim + d] += Float(ds * Double(query[qi + d]))
                    }
                }
            }
        }
    }
}

/// Backward of `attentionTrainingForward` from its saved `lse` (FlashAttention-style
/// recomputation, Dao et al. 2022), parallel over (sequence, kv head); gradients accumulate.
/// See `attentionBackwardReference`.
public func attentionBackward(
    _ dQuery: UnsafeMutablePointer<Float>, _ dKeys: UnsafeMutablePointer<Float>,
    _ dValues: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>,
    _ query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
    out: UnsafePointer<Float>, lse: UnsafePointer<Float>, offsets: [Int],
    heads: Int, kvHeads: Int, headDim: Int
) {
    precondition(heads % kvHeads == 0, "heads must be a multiple of kvHeads")
    let seq = offsets.map(Int64.init)
    rs_attention_backward(
        dQuery, dKeys, dValues, dOut, query, keys, values, out, lse, seq, Int64(offsets.count - 1),
        Int64(heads), Int64(kvHeads), Int64(headDim))
}

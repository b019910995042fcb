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

// Numerically stable softmax over the last axis. Legend: N rows, V entries per row.

import CRollspecKernels
import Foundation

/// Reference softmax of `n` rows of `dim` entries; `out` may alias `input`.
public func softmaxForwardReference(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, n: Int, dim: Int
) {
    for r in 0..<n {
        var m = -Float.infinity
        for c in 0..<dim { m = max(m, input[r * dim + c]) }
        var sum: Double = 0
        for c in 0..<dim { sum += exp(Double(input[r * dim + c] - m)) }
        for c in 0..<dim { out[r * dim + c] = Float(exp(Double(input[r * dim + c] - m)) / sum) }
    }
}

/// Softmax of `n` rows of `dim` entries; `out` may alias `input`.
public func softmaxForward(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, n: Int, dim: Int
) {
    rs_softmax(out, input, Int64(n), Int64(dim))
}

// MARK: Backward

/// Reference softmax backward (Jacobian-vector product), in double:
/// `dInput = probs ⊙ (dOut − Σ dOut⊙probs)` per row; written, not accumulated.
public func softmaxBackwardReference(
    _ dInput: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>,
    _ probs: UnsafePointer<Float>, n: Int, dim: Int
) {
    for r in 0..<n {
        var dot: Double = 0
        for c in 0..<dim { dot += Double(dOut[r * dim + c]) * Double(probs[r * dim + c]) }
        for c in 0..<dim {
            dInput[r * dim + c] = Float(Double(probs[r * dim + c]) * (Double(dOut[r * dim + c]) - dot))
        }
    }
}

/// Softmax backward as in `softmaxBackwardReference` (losses use the fused
/// `softmaxCrossEntropyBackward` instead; this one serves general use and tests).
public func softmaxBackward(
    _ dInput: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>,
    _ probs: UnsafePointer<Float>, n: Int, dim: Int
) {
    for r in 0..<n {
        let dot = dotProduct(dOut + r * dim, probs + r * dim, count: dim)
        for c in 0..<dim { dInput[r * dim + c] = probs[r * dim + c] * (dOut[r * dim + c] - dot) }
    }
}

/// Reference fused softmax + cross-entropy, in double: `probs[N, V] = softmax(logits)`,
/// `losses[r] = −log probs[r, targets[r]]`; rows with a negative target get loss 0.
public func softmaxCrossEntropyForwardReference(
    _ losses: UnsafeMutablePointer<Float>, _ probs: UnsafeMutablePointer<Float>,
    _ logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, n: Int, vocab: Int
) {
    for r in 0..<n {
        let z = logits + r * vocab
        var m = -Double.infinity
        for c in 0..<vocab { m = max(m, Double(z[c])) }
        var sum: Double = 0
        for c in 0..<vocab { sum += exp(Double(z[c]) - m) }
        for c in 0..<vocab { probs[r * vocab + c] = Float(exp(Double(z[c]) - m) / sum) }
        let t = Int(targets[r])
        losses[r] = t < 0 ? 0 : Float(m + log(sum) - Double(z[t]))
    }
}

/// Fused softmax + cross-entropy forward as in `softmaxCrossEntropyForwardReference`; rows
/// are split across the kernel thread pool.
public func softmaxCrossEntropyForward(
    _ losses: UnsafeMutablePointer<Float>, _ probs: UnsafeMutablePointer<Float>,
    _ logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, n: Int, vocab: Int
) {
    rs_softmax_xent_forward(losses, probs, logits, targets, Int64(n), Int64(vocab))
}

/// Reference fused backward: `dLogits[r] = dLosses[r] · (probs[r] − onehot(targets[r]))`,
/// zero rows where the target is negative; written, not accumulated.
public func softmaxCrossEntropyBackwardReference(
    _ dLogits: UnsafeMutablePointer<Float>, _ probs: UnsafePointer<Float>,
    targets: UnsafePointer<Int32>, dLosses: UnsafePointer<Float>, n: Int, vocab: Int
) {
    for r in 0..<n {
        let t = Int(targets[r])
        let g = t < 0 ? 0 : Double(dLosses[r])
        for c in 0..<vocab { dLogits[r * vocab + c] = Float(g * Double(probs[r * vocab + c])) }
        if t >= 0 { dLogits[r * vocab + t] -= Float(g) }
    }
}

/// Fused softmax + cross-entropy backward as in the reference; `dLogits` may alias `probs`.
public func softmaxCrossEntropyBackward(
    _ dLogits: UnsafeMutablePointer<Float>, _ probs: UnsafePointer<Float>,
    targets: UnsafePointer<Int32>, dLosses: UnsafePointer<Float>, n: Int, vocab: Int
) {
    rs_softmax_xent_backward(dLogits, probs, targets, dLosses, Int64(n), Int64(vocab))
}

// MARK: Row statistics (one row of logits: sampling, logprobs, top-k)

/// The max, the first index holding it and the log-sum-exp of one row at a temperature.
public struct RowLogSumExp: Sendable, Equatable {
    public var max: Float
    public var argmax: Int
    /// log Σ_i exp(scale · x_i), computed as scale·max + log Σ_i exp(scale·(x_i − max)).
    public var logSumExp: Double
    /// log Σ_i exp(scale·(x_i − max)): what `exponentiateShifted` sums to, as a log.
    public var logSumShifted: Double

    /// log softmax(scale · x)[i] for the row these statistics were taken of.
    public func logSoftmax(_ x: UnsafePointer<Float>, at i: Int, scale: Float = 1) -> Double {
        Double((x[i] - max) * scale) - logSumShifted
    }
}

/// Max, argmax and log-sum-exp of `x[0 ..< count]` scaled by `scale` (> 0; 1/T for a
/// temperature T). Sums in double. The one log-sum-exp the model, the samplers and the losses use.
public func rowLogSumExp(_ x: UnsafePointer<Float>, count: Int, scale: Float = 1) -> RowLogSumExp {
    let s = rs_row_logsumexp(x, Int64(count), scale)
    return RowLogSumExp(max: s.max, argmax: Int(s.argmax), logSumExp: Double(s.max) * Double(scale) + s.log_sum,
                        logSumShifted: s.log_sum)
}

/// Reference twin of `rowLogSumExp`, all in double.
public func rowLogSumExpReference(_ x: UnsafePointer<Float>, count: Int, scale: Float = 1) -> RowLogSumExp {
    var best = 0
    for i in 1..<max(count, 1) where x[i] > x[best] { best = i }
    let m = x[best]
    var sum: Double = 0
    for i in 0..<count { sum += exp(Double(x[i] - m) * Double(scale)) }
    return RowLogSumExp(max: m, argmax: best, logSumExp: Double(m) * Double(scale) + log(sum), logSumShifted: log(sum))
}

/// Writes `out[i] = exp(scale·(x[i] − max))` (the unnormalised softmax a sampler draws from) and
/// returns their sum, accumulated in double. `out` may alias `x`.
@discardableResult
public func exponentiateShifted(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int,
                                scale: Float, max: Float) -> Double {
    rs_exp_shifted(out, x, Int64(count), scale, max)
}

/// Indices of the `k` largest of `x[0 ..< count]`, largest first; ties keep the lower index first
/// (as greedy decoding picks).
public func topKIndices(_ x: UnsafePointer<Float>, count: Int, k: Int) -> [Int] {
    let k = min(k, count)
    guard k > 0 else { return [] }
    var out = [Int32](repeating: 0, count: k)
    rs_top_k(&out, x, Int64(count), Int32(k))
    return out.map(Int.init)
}

/// Reference twin of `topKIndices`: a full stable sort.
public func topKIndicesReference(_ x: UnsafePointer<Float>, count: Int, k: Int) -> [Int] {
    Array((0..<count).sorted { x[$0] != x[$1] ? x[$0] > x[$1] : $0 < $1 }.prefix(k))
}

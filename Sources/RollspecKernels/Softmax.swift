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

import Foundation
import RollspecKernels

/// The GRPO loss and its diagnostics.
public struct PolicyGradientResult: @unchecked Sendable {
    /// The loss, its gradient and per-row terms (as for every loss).
    public var result: LossResult
    /// Mean ratio exp(logp − logp_old) over counted rows.
    public var meanRatio: Float
    /// Fraction of counted rows where the clipped term was the active one (zero gradient).
    public var clipFraction: Float
    /// Mean k3 KL estimate to the reference over counted rows (0 without a reference).
    public var meanKL: Float
    /// `[R]` log softmax(z_r)[a_r] of the current logits (0 for rows that do not count).
    public var logprobs: [Float]
}

extension Loss {
    /// The GRPO policy-gradient loss (Shao et al. 2024, DeepSeekMath §4.1): PPO's clipped
    /// surrogate (Schulman et al. 2017) with a per-token advantage, minus a KL penalty to a
    /// reference policy estimated with k3 (Schulman 2020, "Approximating KL divergence").
    ///
    /// Per counted row r with sampled token a_r and logp_r = log softmax(z_r)[a_r]:
    /// ratio = exp(logp − logp_old), obj = min(ratio·A, clip(ratio, 1−ε, 1+ε)·A),
    /// k3 = exp(ref − logp) − (ref − logp) − 1, ℓ_r = −obj + β·k3; the loss is the mean over
    /// counted tokens (scaled by `rowWeights`). The gradient flows through logp only
    /// (dlogp/dz = onehot(a) − softmax(z)); where the clipped term is active it is zero.
    ///
    /// - Parameters:
    ///   - logits: `[R, V]` current policy logits.
    ///   - tokens: `[R]` sampled tokens.
    ///   - advantages: `[R]` per-token advantage (GRPO: the sequence's group-normalised reward).
    ///   - oldLogprobs: `[R]` logprobs of `tokens` under the sampling policy.
    ///   - referenceLogprobs: `[R]` logprobs under the reference policy, or nil for no penalty.
    ///   - clipEpsilon: ε.
    ///   - klCoefficient: β.
    ///   - gradientInto: storage for `dLogits`, reused from pass to pass (a view of it, valid
    ///     until its next use); nil allocates it.
    public static func policyGradient(
        logits: FloatBuffer, vocab: Int, tokens: [Int], advantages: [Float], oldLogprobs: [Float],
        referenceLogprobs: [Float]? = nil, clipEpsilon: Float = 0.2, klCoefficient: Float = 0,
        mask: [Bool]? = nil, rowWeights: [Float]? = nil, gradientInto: ReusableBuffer? = nil
    ) -> PolicyGradientResult {
        let rows = logits.count / vocab
        precondition(tokens.count == rows && advantages.count == rows && oldLogprobs.count == rows,
                     "tokens, advantages and oldLogprobs need one entry per logits row")
        precondition(referenceLogprobs == nil || referenceLogprobs!.count == rows)
        let (scales, counted, count) = rowScales(rows: rows, mask: mask, rowWeights: rowWeights)
        let targets = (0..<rows).map { r -> Int32 in
            precondition(!counted[r] || (tokens[r] >= 0 && tokens[r] < vocab), "token \(tokens[r]) outside vocabulary")
            return counted[r] ? Int32(tokens[r]) : -1
        }
        // One fused pass gives softmax(z) and −logp per row; another writes the gradient
        // dℓ/dz = dℓ/dlogp · (onehot(a) − q) = −dℓ/dlogp · (q − onehot(a)) over q in place.
        // Every row of q is written (rows that do not count too), so it starts unzeroed.
        let q = gradientInto?.view(count: rows * vocab) ?? FloatBuffer(count: rows * vocab) { _ in }
        var negLogp = [Float](repeating: 0, count: rows)
        softmaxCrossEntropyForward(&negLogp, q.pointer, logits.pointer, targets: targets, n: rows, vocab: vocab)
        var losses = [Float](repeating: 0, count: rows), dNegLogp = [Float](repeating: 0, count: rows)
        var loss: Double = 0, ratioSum: Double = 0, klSum: Double = 0, clipped = 0
        let eps = Double(clipEpsilon), beta = Double(klCoefficient)
        for r in 0..<rows where counted[r] {
            let logp = -Double(negLogp[r])
            let adv = Double(advantages[r])
            let ratio = exp(logp - Double(oldLogprobs[r]))
            let unclipped = ratio * adv, clippedTerm = min(max(ratio, 1 - eps), 1 + eps) * adv
            // d obj / d logp: ratio·A when the unclipped term is the minimum, else 0.
            let active = unclipped <= clippedTerm
            if !active { clipped += 1 }
            var term = -min(unclipped, clippedTerm)
            var dLogp = active ? -ratio * adv : 0
            if let ref = referenceLogprobs {
                let u = Double(ref[r]) - logp
                let k3 = exp(u) - u - 1
                klSum += k3
                if beta != 0 {
                    term += beta * k3
                    dLogp += beta * (1 - exp(u))
                }
            }
            losses[r] = Float(term)
            loss += Double(scales[r]) * term
            ratioSum += ratio
            dNegLogp[r] = -Float(dLogp) * scales[r]
        }
        softmaxCrossEntropyBackward(q.pointer, q.pointer, targets: targets, dLosses: dNegLogp, n: rows, vocab: vocab)
        let n = Float(max(count, 1))
        return PolicyGradientResult(
            result: LossResult(loss: Float(loss), dLogits: q, rowLosses: losses, count: count),
            meanRatio: Float(ratioSum) / n, clipFraction: Float(clipped) / n, meanKL: Float(klSum) / n,
            logprobs: negLogp.map { -$0 })
    }

    /// `[R]` log softmax(z_r)[tokens[r]] of each row of `logits` (`[R, V]`), by the fused kernel.
    public static func tokenLogprobs(logits: FloatBuffer, vocab: Int, tokens: [Int]) -> [Float] {
        let rows = logits.count / vocab
        precondition(tokens.count == rows, "one token per logits row")
        let q = FloatBuffer(count: rows * vocab) { _ in }  // written in full
        var negLogp = [Float](repeating: 0, count: rows)
        softmaxCrossEntropyForward(&negLogp, q.pointer, logits.pointer, targets: tokens.map { Int32($0) }, n: rows, vocab: vocab)
        return negLogp.map { -$0 }
    }
}

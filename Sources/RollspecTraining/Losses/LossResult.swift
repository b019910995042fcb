// Losses on rows of logits. Legend: R logit rows, V vocab.
//
// Every loss is a mean over the rows that count (`mask`, default all rows), each row's term
// optionally multiplied by `rowWeights[r]`:  loss = Σ_{r counted} w_r · ℓ_r / #counted.
// Each returns the loss, ∂loss/∂logits and the unweighted per-row terms (0 for rows that do
// not count), so that a trainer can combine losses and report each one.

import RollspecKernels

/// A loss value and its gradient with respect to the logits.
public struct LossResult: @unchecked Sendable {
    /// Σ_{r counted} w_r · ℓ_r / `count`.
    public var loss: Float
    /// `[R, V]` ∂loss/∂logits; zero rows for rows that do not count.
    public var dLogits: FloatBuffer
    /// `[R]` unweighted ℓ_r (0 for rows that do not count).
    public var rowLosses: [Float]
    /// Number of rows that counted.
    public var count: Int

    /// Mean of `rowLosses` over counted rows, without the row weights.
    public var unweightedMean: Float {
        count == 0 ? 0 : rowLosses.reduce(0, +) / Float(count)
    }
}

/// One recorded probability of a target model's top-k distribution at one position.
public typealias TopKProbability = (token: Int32, prob: Float)

/// The losses used for training: cross-entropy, distillation KL, GRPO policy gradient.
public enum Loss {
    /// Which rows count and their weights, resolved against `rows`.
    static func rowScales(rows: Int, mask: [Bool]?, rowWeights: [Float]?) -> (scales: [Float], counted: [Bool], count: Int) {
        precondition(mask == nil || mask!.count == rows, "mask has \(mask!.count) rows, logits \(rows)")
        precondition(rowWeights == nil || rowWeights!.count == rows, "rowWeights has \(rowWeights!.count) rows, logits \(rows)")
        let counted = mask ?? [Bool](repeating: true, count: rows)
        let count = counted.filter { $0 }.count
        let scales = (0..<rows).map { r in
            counted[r] && count > 0 ? (rowWeights?[r] ?? 1) / Float(count) : 0
        }
        return (scales, counted, count)
    }

    /// Log-sum-exp of one row of `logits` (`rowLogSumExp`, summed in double).
    static func logSumExp(logits: UnsafePointer<Float>, vocab: Int) -> Double {
        rowLogSumExp(logits, count: vocab).logSumExp
    }
}

import Foundation

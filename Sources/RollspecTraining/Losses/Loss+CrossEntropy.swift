import RollspecKernels

extension Loss {
    /// Cross-entropy of the logits against target token ids: ℓ_r = −log softmax(z_r)[targets[r]].
    ///
    /// - Parameters:
    ///   - logits: `[R, V]`.
    ///   - targets: `[R]` token ids.
    ///   - mask: `[R]` rows that count (default all).
    ///   - rowWeights: `[R]` per-row weights (default 1).
    ///   - storage: where the gradient goes, reused from call to call (a view of it); nil
    ///     allocates it.
    /// - Returns: loss = Σ w_r ℓ_r / #counted and dLogits = w_r (softmax − onehot) / #counted.
    public static func crossEntropy(
        logits: FloatBuffer, vocab: Int, targets: [Int], mask: [Bool]? = nil, rowWeights: [Float]? = nil,
        into storage: ReusableBuffer? = nil
    ) -> LossResult {
        let rows = logits.count / vocab
        precondition(targets.count == rows, "targets has \(targets.count) rows, logits \(rows)")
        let (scales, counted, count) = rowScales(rows: rows, mask: mask, rowWeights: rowWeights)
        let t32 = (0..<rows).map { r -> Int32 in
            precondition(!counted[r] || (targets[r] >= 0 && targets[r] < vocab), "target \(targets[r]) outside vocabulary")
            return counted[r] ? Int32(targets[r]) : -1
        }
        var losses = [Float](repeating: 0, count: rows)
        // Written in full by the fused forward.
        let dLogits = storage?.view(count: rows * vocab) ?? FloatBuffer(count: rows * vocab) { _ in }
        t32.withUnsafeBufferPointer { t in
            losses.withUnsafeMutableBufferPointer { l in
                softmaxCrossEntropyForward(l.baseAddress!, dLogits.pointer, logits.pointer, targets: t.baseAddress!, n: rows, vocab: vocab)
            }
            scales.withUnsafeBufferPointer { s in
                softmaxCrossEntropyBackward(dLogits.pointer, dLogits.pointer, targets: t.baseAddress!, dLosses: s.baseAddress!, n: rows, vocab: vocab)
            }
        }
        var loss: Double = 0
        for r in 0..<rows { loss += Double(scales[r]) * Double(losses[r]) }
        return LossResult(loss: Float(loss), dLogits: dLogits, rowLosses: losses, count: count)
    }
}

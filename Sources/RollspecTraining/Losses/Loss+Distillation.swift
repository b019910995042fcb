import Foundation
import RollspecKernels

/// How a distillation loss treats a target distribution recorded as its top-k probabilities.
public enum TopKTreatment: String, Codable, Sendable {
    /// p̃ = top-k probabilities renormalised to sum 1 (zero elsewhere);
    /// ℓ = KL(p̃ ‖ q) = Σ_k p̃_x log(p̃_x / q_x) with q the model's full softmax.
    /// ∂ℓ/∂z = q − p̃. The draft is pulled towards the target's head only; this matches the
    /// acceptance estimate `Σ_x min(p̃(x), q(x))`.
    case renormalized
    /// The k recorded probabilities as they are plus one residual bucket holding the rest of
    /// both distributions: r = 1 − Σ_k p_x against Q = Σ_{y∉k} q_y;
    /// ℓ = Σ_k p_x log(p_x / q_x) + r log(r / Q), a true KL between the two (k+1)-outcome
    /// coarsenings. ∂ℓ/∂z_j = q_j − p_j for j in the top k, q_j − r·q_j/Q elsewhere.
    case residualBucket
}

extension Loss {
    /// Forward KL(p ‖ q) of the model's q = softmax(logits) from a target given by its logits,
    /// p = softmax(targetLogits), with no logarithm per entry:
    /// ℓ_r = Σ_x p (log p − log q) = Σ_x p (t_x − z_x) + lse(z) − lse(t).
    ///
    /// - Parameters:
    ///   - logits: `[R, V]` model logits.
    ///   - targetLogits: `[R, V]` the target's logits.
    ///   - storage: where the gradient goes, reused from call to call (a view of it, valid until
    ///     its next use); nil allocates it. A draft's step makes `[R, V]` of them, tens of MB,
    ///     and fresh pages cost the kernel's zeroing.
    /// - Returns: ℓ_r; ∂ℓ_r/∂z = q − p, scaled as in `LossResult`.
    public static func distillation(
        logits: FloatBuffer, vocab: Int, targetLogits: FloatBuffer,
        mask: [Bool]? = nil, rowWeights: [Float]? = nil, into storage: ReusableBuffer? = nil
    ) -> LossResult {
        let rows = logits.count / vocab
        precondition(targetLogits.count == logits.count, "target logits must be [R, V] like the logits")
        let (scales, counted, count) = rowScales(rows: rows, mask: mask, rowWeights: rowWeights)
        let q = storage?.view(count: rows * vocab) ?? FloatBuffer(count: rows * vocab)
        softmaxForward(q.pointer, logits.pointer, n: rows, dim: vocab)
        let p = FloatBuffer(count: vocab)
        var losses = [Float](repeating: 0, count: rows)
        var loss: Double = 0
        for r in 0..<rows {
            let z = logits.pointer + r * vocab, t = targetLogits.pointer + r * vocab, qr = q.pointer + r * vocab
            guard counted[r] else { memset(qr, 0, vocab * 4); continue }
            softmaxForward(p.pointer, t, n: 1, dim: vocab)
            let cross = Double(dotProduct(p.pointer, t, count: vocab)) - Double(dotProduct(p.pointer, z, count: vocab))
            let kl = max(0, cross + logSumExp(logits: z, vocab: vocab) - logSumExp(logits: t, vocab: vocab))
            losses[r] = Float(kl)
            loss += Double(scales[r]) * kl
            let s = scales[r]
            for x in 0..<vocab { qr[x] = s * (qr[x] - p[x]) }
        }
        return LossResult(loss: Float(loss), dLogits: q, rowLosses: losses, count: count)
    }

    /// Forward KL from a target recorded as top-k probabilities per row (see `TopKTreatment`).
    ///
    /// - Parameters:
    ///   - logits: `[R, V]` model logits.
    ///   - topK: `[R]` lists of (token, probability); an empty list makes the row not count.
    public static func distillation(
        logits: FloatBuffer, vocab: Int, topK: [[TopKProbability]], treatment: TopKTreatment = .renormalized,
        mask: [Bool]? = nil, rowWeights: [Float]? = nil
    ) -> LossResult {
        let rows = logits.count / vocab
        precondition(topK.count == rows, "topK has \(topK.count) rows, logits \(rows)")
        let effectiveMask = (0..<rows).map { (mask?[$0] ?? true) && !topK[$0].isEmpty }
        let (scales, counted, count) = rowScales(rows: rows, mask: effectiveMask, rowWeights: rowWeights)
        let q = FloatBuffer(count: rows * vocab) { softmaxForward($0, logits.pointer, n: rows, dim: vocab) }
        var losses = [Float](repeating: 0, count: rows)
        var loss: Double = 0
        for r in 0..<rows {
            let z = logits.pointer + r * vocab, qr = q.pointer + r * vocab
            guard counted[r] else { memset(qr, 0, vocab * 4); continue }
            let lse = logSumExp(logits: z, vocab: vocab)
            let entries = topK[r].map { (token: Int($0.token), prob: Double(max($0.prob, 0))) }
            let mass = entries.reduce(0) { $0 + $1.prob }
            var kl: Double = 0
            let s = scales[r]
            switch treatment {
            case .renormalized:
                for e in entries where e.prob > 0 {
                    let pt = e.prob / mass
                    kl += pt * (log(pt) - (Double(z[e.token]) - lse))
                }
                for x in 0..<vocab { qr[x] *= s }
                for e in entries { qr[e.token] -= s * Float(e.prob / mass) }
            case .residualBucket:
                let residual = max(0, 1 - mass)
                // Q = Σ_{y∉k} q_y summed directly (1 − Σ_k q loses precision when Q is tiny).
                let saved = entries.map { qr[$0.token] }
                for e in entries { qr[e.token] = 0 }
                var rest: Double = 0
                for x in 0..<vocab { rest += Double(qr[x]) }
                for (e, v) in zip(entries, saved) { qr[e.token] = v }
                rest = max(rest, 1e-30)
                for e in entries where e.prob > 0 { kl += e.prob * (log(e.prob) - (Double(z[e.token]) - lse)) }
                if residual > 0 { kl += residual * log(residual / rest) }
                let restScale = Float(1 - residual / rest)
                for x in 0..<vocab { qr[x] *= s * restScale }
                for (e, v) in zip(entries, saved) { qr[e.token] = s * (v - Float(e.prob)) }
            }
            losses[r] = Float(kl)
            loss += Double(s) * kl
        }
        return LossResult(loss: Float(loss), dLogits: q, rowLosses: losses, count: count)
    }

    /// Expected acceptance of each row under speculative sampling (Leviathan et al. 2023):
    /// Σ_x min(p(x), q(x)) with q = softmax(logits) the draft and p the target's top-k
    /// renormalised (zero outside the k tokens).
    /// - Returns: `[R]`; rows with an empty list get `nil`.
    public static func expectedAcceptance(logits: FloatBuffer, vocab: Int, topK: [[TopKProbability]]) -> [Float?] {
        let rows = logits.count / vocab
        let q = FloatBuffer(count: vocab)
        return (0..<rows).map { r in
            guard !topK[r].isEmpty else { return nil }
            softmaxForward(q.pointer, logits.pointer + r * vocab, n: 1, dim: vocab)
            let mass = topK[r].reduce(Float(0)) { $0 + max($1.prob, 0) }
            return topK[r].reduce(Float(0)) { $0 + min(max($1.prob, 0) / mass, q[Int($1.token)]) }
        }
    }
}

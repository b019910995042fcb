import Foundation
import RollspecKernels
import RollspecModel
import RollspecTraining
import Testing

/// Each loss's dLogits against finite differences of its own loss value, plus hand-checked values.
@Suite struct LossTests {
    static let vocab = 7, rows = 4
    static func logits() -> FloatBuffer { randomBuffer(rows * vocab, seed: 31, scale: 1.5) }

    @Test func crossEntropyMaskedMean() {
        let z = Self.logits()
        let targets = [2, 0, 6, 3], mask = [true, false, true, true], weights: [Float] = [1, 1, 0.5, 2]
        let r = Loss.crossEntropy(logits: z, vocab: Self.vocab, targets: targets, mask: mask, rowWeights: weights)
        #expect(r.count == 3)
        #expect(r.rowLosses[1] == 0)
        // Hand check of row 0: −log softmax(z_0)[2].
        let z0 = (0..<Self.vocab).map { Double(z[$0]) }
        let ce0 = log(z0.reduce(0) { $0 + exp($1) }) - z0[2]
        #expect(abs(Double(r.rowLosses[0]) - ce0) < 1e-5)
        let res = GradientChecker.check(parameter: z, analytic: r.dLogits) {
            Double(Loss.crossEntropy(logits: z, vocab: Self.vocab, targets: targets, mask: mask, rowWeights: weights).loss)
        }
        #expect(res.passes(tolerance: 1e-2), "\(res)")
        for v in 0..<Self.vocab { #expect(r.dLogits[Self.vocab + v] == 0) }
    }

    @Test func distillationFromTargetLogits() {
        let z = Self.logits()
        let t = randomBuffer(Self.rows * Self.vocab, seed: 32, scale: 1)
        let r = Loss.distillation(logits: z, vocab: Self.vocab, targetLogits: t)
        // Against the definition, Σ p log(p / q), summed in Double from the two softmaxes.
        let p = FloatBuffer(count: z.count), q = FloatBuffer(count: z.count)
        softmaxForward(p.pointer, t.pointer, n: Self.rows, dim: Self.vocab)
        softmaxForward(q.pointer, z.pointer, n: Self.rows, dim: Self.vocab)
        for row in 0..<Self.rows {
            let kl = (0..<Self.vocab).reduce(0.0) { acc, x in
                let i = row * Self.vocab + x
                return acc + Double(p[i]) * (log(Double(p[i])) - log(Double(q[i])))
            }
            #expect(abs(Double(r.rowLosses[row]) - kl) < 1e-5, "row \(row)")
        }
        // KL(p‖p) = 0.
        #expect(abs(Loss.distillation(logits: z, vocab: Self.vocab, targetLogits: z).loss) < 1e-6)
        let res = GradientChecker.check(parameter: z, analytic: r.dLogits) {
            Double(Loss.distillation(logits: z, vocab: Self.vocab, targetLogits: t).loss)
        }
        #expect(res.passes(tolerance: 1e-2), "\(res)")
        // Reused storage gives the same figures.
        let storage = ReusableBuffer(step: 64)
        _ = Loss.distillation(logits: t, vocab: Self.vocab, targetLogits: z, into: storage)
        let again = Loss.distillation(logits: z, vocab: Self.vocab, targetLogits: t, into: storage)
        #expect(again.rowLosses == r.rowLosses)
        #expect((0..<z.count).allSatisfy { again.dLogits[$0] == r.dLogits[$0] })
    }

    static let topK: [[TopKProbability]] = [
        [(3, 0.6), (1, 0.2), (5, 0.1)], [], [(0, 0.9)], [(6, 0.5), (2, 0.45)],
    ]

    @Test(arguments: [TopKTreatment.renormalized, .residualBucket])
    func distillationTopK(_ treatment: TopKTreatment) {
        let z = Self.logits()
        let r = Loss.distillation(logits: z, vocab: Self.vocab, topK: Self.topK, treatment: treatment)
        #expect(r.count == 3)
        #expect(r.rowLosses.allSatisfy { $0 >= -1e-6 })
        let res = GradientChecker.check(parameter: z, analytic: r.dLogits) {
            Double(Loss.distillation(logits: z, vocab: Self.vocab, topK: Self.topK, treatment: treatment).loss)
        }
        #expect(res.passes(tolerance: 1e-2), "\(res)")
        // Hand check of row 2 (one entry, p = 0.9): renormalised → −log q_0;
        // residual bucket → 0.9·log(0.9/q_0) + 0.1·log(0.1/(1 − q_0)).
        let row = (0..<Self.vocab).map { Double(z[2 * Self.vocab + $0]) }
        let q0 = exp(row[0]) / row.reduce(0) { $0 + exp($1) }
        let expected = treatment == .renormalized ? -log(q0) : 0.9 * log(0.9 / q0) + 0.1 * log(0.1 / (1 - q0))
        #expect(abs(Double(r.rowLosses[2]) - expected) < 1e-5)
    }

    @Test func expectedAcceptance() {
        // Uniform draft over 4 tokens against top-k {0: 0.5, 1: 0.25} → renormalised {2/3, 1/3}:
        // Σ min(p, q) = min(2/3, 1/4) + min(1/3, 1/4) = 1/2.
        let z = FloatBuffer(count: 4)
        let a = Loss.expectedAcceptance(logits: z, vocab: 4, topK: [[(0, 0.5), (1, 0.25)]])
        #expect(abs(a[0]! - 0.5) < 1e-6)
    }

    @Test func policyGradient() {
        let z = Self.logits()
        let tokens = [1, 4, 0, 6], advantages: [Float] = [1.5, -0.7, 0.8, -1.2]
        // Current logprobs, and old ones chosen so the ratios are 1.05 (inside), 0.5 (A<0,
        // below 1−ε: clipped), 1.6 (A>0, above 1+ε: clipped) and 0.9 (inside).
        var logp: [Float] = []
        for (r, a) in tokens.enumerated() {
            let row = (0..<Self.vocab).map { Double(z[r * Self.vocab + $0]) }
            logp.append(Float(row[a] - log(row.reduce(0) { $0 + exp($1) })))
        }
        let ratios: [Float] = [1.05, 0.5, 1.6, 0.9]
        let old = zip(logp, ratios).map { $0 - log($1) }
        let ref = logp.map { $0 - 0.3 }
        let run = { (beta: Float) in
            Loss.policyGradient(logits: z, vocab: Self.vocab, tokens: tokens, advantages: advantages, oldLogprobs: old,
                                referenceLogprobs: ref, clipEpsilon: 0.2, klCoefficient: beta)
        }
        let plain = run(0)
        #expect(abs(plain.clipFraction - 0.5) < 1e-6)
        // Clipped rows have zero gradient; loss = −mean(min(ratio·A, clip(ratio)·A)).
        for v in 0..<Self.vocab { #expect(plain.result.dLogits[Self.vocab + v] == 0 && plain.result.dLogits[2 * Self.vocab + v] == 0) }
        let expected = -(1.05 * 1.5 + 0.8 * -0.7 + 1.2 * 0.8 + 0.9 * -1.2) / 4
        #expect(abs(Double(plain.result.loss) - expected) < 1e-4)
        // k3 of u = −0.3: e^u − u − 1.
        #expect(abs(Double(plain.meanKL) - (exp(-0.3) + 0.3 - 1)) < 1e-5)
        for beta: Float in [0, 0.1] {
            let r = run(beta)
            // h = 1e-2 (the default): the loss is computed in float32 by the fused kernel, whose rounding
            // (~1e-7 of the loss) puts ~5e-5 of noise into a difference quotient at h = 1e-3.
            let res = GradientChecker.check(parameter: z, analytic: r.result.dLogits, step: 1e-2) {
                Double(run(beta).result.loss)
            }
            #expect(res.passes(tolerance: 1e-2), "β=\(beta): \(res)")
        }
    }
}

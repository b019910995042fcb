import Foundation
import RollspecKernels
import RollspecModel
import RollspecSpeculation
import Testing

/// Several candidates for one position, drawn from the draft without replacement and verified
/// by recursive rejection sampling: the emitted token must be distributed exactly as the
/// target's, and a variant that forgets to take the rejected candidate's mass out of the residual
/// must be caught.
@Suite struct CandidateVerificationTests {
    static func distribution(_ weights: [Double]) -> TokenDistribution {
        let total = weights.reduce(0, +)
        return TokenDistribution(tokens: weights.indices.map { Int32($0) }, probabilities: weights.map { Float($0 / total) })
    }

    /// Draws `n` tokens through `candidates` candidates from q and returns the counts per token.
    static func counts(p: TokenDistribution, q: TokenDistribution, candidates: Int, n: Int, variant: RejectionSampler.Variant,
                       seed: UInt64, vocabSize: Int? = nil) -> [Int] {
        var random = RandomSource(seed: seed)
        let sampler = RejectionSampler(variant: variant)
        var counts = [Int](repeating: 0, count: vocabSize ?? p.tokens.count)
        for _ in 0..<n {
            let c = q.sampleWithoutReplacement(candidates, random: &random)
            counts[sampler.verify(candidates: c, draft: q, target: p, vocabSize: counts.count, random: &random).token] += 1
        }
        return counts
    }

    /// Pearson's chi-square statistic of `counts` against probabilities `p`.
    static func chiSquare(_ counts: [Int], _ p: [Double]) -> Double {
        let n = Double(counts.reduce(0, +))
        return zip(counts, p).reduce(0) { acc, e in
            let expected = n * e.1
            return expected > 0 ? acc + (Double(e.0) - expected) * (Double(e.0) - expected) / expected : acc
        }
    }

    static let p = distribution([0.30, 0.25, 0.15, 0.10, 0.08, 0.05, 0.04, 0.03])
    static let q = distribution([0.05, 0.10, 0.30, 0.25, 0.02, 0.08, 0.15, 0.05])

    // 7 degrees of freedom: the 0.999 quantile of chi-square is 24.3.
    @Test(arguments: [1, 2, 3, 5, 8])
    func theEmittedTokenIsDistributedAsTheTarget(candidates: Int) {
        let c = Self.counts(p: Self.p, q: Self.q, candidates: candidates, n: 40_000, variant: .exact, seed: UInt64(candidates))
        let x2 = Self.chiSquare(c, Self.p.probabilities.map(Double.init))
        #expect(x2 < 24.3, "\(candidates) candidates: chi-square \(x2), counts \(c)")
    }

    /// A draft whose head covers only some tokens (zeros elsewhere, as a restricted head gives),
    /// or whose distribution is truncated (its tokens most likely first), against a target
    /// truncated by top-p with mass where the draft has none: the residual outside the draft's
    /// support is drawn in proportion to the target.
    @Test(arguments: [1, 2, 4])
    func aDraftOfRestrictedSupportKeepsTheTargetsLaw(candidates: Int) {
        let p = TokenDistribution(tokens: [3, 0, 5, 1, 6, 2], probabilities: [0.30, 0.22, 0.18, 0.12, 0.10, 0.08])
        let restricted = Self.distribution([0.40, 0.05, 0.25, 0.30, 0, 0, 0, 0])
        let truncated = TokenDistribution(tokens: [2, 0, 3, 1], probabilities: [0.45, 0.30, 0.15, 0.10])
        let expected = (0..<8).map { Double(p.probability(of: $0)) }
        for (name, q) in [("restricted", restricted), ("truncated", truncated)] {
            let c = Self.counts(p: p, q: q, candidates: candidates, n: 40_000, variant: .exact, seed: UInt64(10 + candidates),
                               vocabSize: 8)
            // Tokens 4 and 7 have no mass: 5 degrees of freedom, whose 0.999 quantile is 20.5.
            let x2 = Self.chiSquare(c, expected)
            #expect(x2 < 20.5 && c[4] == 0 && c[7] == 0, "\(name), \(candidates) candidates: chi-square \(x2), counts \(c)")
        }
    }

    @Test func keepingTheTargetAfterARejectionIsCaught() {
        let c = Self.counts(p: Self.p, q: Self.q, candidates: 3, n: 40_000, variant: .keepTargetOnRejection, seed: 9)
        let x2 = Self.chiSquare(c, Self.p.probabilities.map(Double.init))
        #expect(x2 > 100, "the broken variant passed: chi-square \(x2)")
    }

    @Test func moreCandidatesAcceptMoreOften() {
        var rates: [Double] = []
        for m in [1, 2, 4] {
            var random = RandomSource(seed: 3)
            var accepted = 0
            for _ in 0..<20_000 {
                let c = Self.q.sampleWithoutReplacement(m, random: &random)
                if RejectionSampler().verify(candidates: c, draft: Self.q, target: Self.p, vocabSize: 8, random: &random).accepted != nil {
                    accepted += 1
                }
            }
            rates.append(Double(accepted) / 20_000)
        }
        // One candidate: the acceptance of speculative sampling, Σ min(p, q).
        let single = zip(Self.p.probabilities, Self.q.probabilities).reduce(0.0) { $0 + Double(min($1.0, $1.1)) }
        #expect(abs(rates[0] - single) < 0.015 && rates[1] > rates[0] + 0.05 && rates[2] > rates[1], "\(rates), Σ min(p, q) = \(single)")
    }

    @Test func sampleWithoutReplacementDrawsTheFirstFromQAndNeverRepeats() {
        var random = RandomSource(seed: 4)
        var firsts = [Int](repeating: 0, count: 8)
        for _ in 0..<40_000 {
            let s = Self.q.sampleWithoutReplacement(4, random: &random)
            #expect(Set(s).count == 4)
            firsts[s[0]] += 1
        }
        #expect(Self.chiSquare(firsts, Self.q.probabilities.map(Double.init)) < 24.3, "\(firsts)")
    }

    @Test func aPointMassTargetAcceptsTheCandidateEqualToIt() {
        var random = RandomSource(seed: 1)
        let greedy = TokenDistribution(tokens: [5], probabilities: [1])
        #expect(RejectionSampler().verify(candidates: [2, 5, 1], draft: Self.q, target: greedy, vocabSize: 8, random: &random)
                == CandidateVerification(accepted: 1, token: 5))
        #expect(RejectionSampler().verify(candidates: [2, 1], draft: Self.q, target: greedy, vocabSize: 8, random: &random)
                == CandidateVerification(accepted: nil, token: 5))
    }
}

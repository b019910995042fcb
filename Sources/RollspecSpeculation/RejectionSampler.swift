import RollspecModel

/// What verifying one draft decided.
public struct Verification: Sendable, Equatable {
    /// Draft tokens accepted, a prefix of the draft (0...k).
    public var acceptedCount: Int
    /// The token emitted after the accepted ones: drawn from the residual on a rejection, or
    /// the bonus token from the target's next distribution when every draft token was accepted.
    public var nextToken: Int
    /// True when all k were accepted and `nextToken` is the bonus.
    public var isBonus: Bool
}

/// Lossless speculative sampling (Leviathan et al. 2023, Algorithm 1; Chen et al. 2023).
///
/// Draft token x_i is accepted with probability min(1, p_i(x_i) / q_i(x_i)); on the first
/// rejection the next token is drawn from norm(max(0, p_i − q_i)) and the rest of the draft is
/// dropped; when all k are accepted a bonus token is drawn from p_{k+1}. The emitted tokens are
/// then distributed exactly as if drawn from p one by one. A point-mass draft (q_i(x_i) = 1) is
/// the special case: accept with probability p_i(x_i), else draw from p_i without x_i. Under
/// greedy decoding p_i is a point mass too, so this is exact match with the target's argmax.
public struct RejectionSampler: Sendable {
    /// Deliberately wrong variants exist only so that the statistical tests can show they
    /// catch them. Production code uses `.exact`.
    public enum Variant: Sendable, Equatable {
        case exact
        /// Broken: on rejection, draw from p instead of the residual max(0, p − q).
        case resampleFromTarget
        /// Broken: accept with min(1, factor · p/q).
        case perturbedRatio(Double)
        /// Broken, several candidates per position: after a rejected candidate, test the next
        /// against p itself instead of the residual max(0, p − q).
        case keepTargetOnRejection
    }

    public var variant: Variant

    public init(variant: Variant = .exact) { self.variant = variant }

    /// Verifies `draft` against the target's distributions.
    ///
    /// - Parameters:
    ///   - draft: k tokens and their draft distributions (or point masses).
    ///   - target: k + 1 distributions: `target[i]` is the target's distribution for the token
    ///     at draft position i (after the same sampling transforms as the draft), `target[k]`
    ///     the one after the whole draft.
    ///   - vocabSize: V, for the residual.
    ///   - random: the sequence's random stream.
    public func verify(draft: Draft, target: [TokenDistribution], vocabSize: Int,
                       random: inout RandomSource) -> Verification {
        precondition(target.count == draft.tokens.count + 1, "need k + 1 target distributions")
        return verify(draft: draft, target: { target[$0] }, vocabSize: vocabSize, random: &random)
    }

    /// As above, with the target's distributions built on demand: positions after the first
    /// rejection are never looked at, so they need not be computed.
    public func verify(draft: Draft, target: (Int) -> TokenDistribution, vocabSize: Int,
                       random: inout RandomSource) -> Verification {
        let k = draft.tokens.count
        for i in 0..<k {
            let targetHere = target(i)
            let x = draft.tokens[i]
            let p = Double(targetHere.probability(of: x))
            let q = draft.draftProbability(at: i)
            var ratio = q > 0 ? p / q : 0
            if case .perturbedRatio(let f) = variant { ratio *= f }
            if random.nextUnit() < min(1, ratio) { continue }
            let next = variant == .resampleFromTarget
                ? targetHere.sample(uniform: random.nextUnit()).token
                : residualSample(p: targetHere, draft: draft, at: i, vocabSize: vocabSize, random: &random)
            return Verification(acceptedCount: i, nextToken: next, isBonus: false)
        }
        return Verification(acceptedCount: k, nextToken: target(k).sample(uniform: random.nextUnit()).token,
                            isBonus: true)
    }

    /// Draws from norm(max(0, p − q)) for draft position `i`.
    private func residualSample(p: TokenDistribution, draft: Draft, at i: Int, vocabSize: Int,
                                random: inout RandomSource) -> Int {
        var residual = p.dense(vocabSize: vocabSize)
        if let q = draft.distributions?[i] {
            for (t, qp) in zip(q.tokens, q.probabilities) {
                residual[Int(t)] = max(0, residual[Int(t)] - Double(qp))
            }
        } else {
            residual[draft.tokens[i]] = 0  // point mass: max(0, p − δ_x) removes x only
        }
        let total = residual.reduce(0, +)
        // A rejection implies p(x) < q(x), so the residual has positive mass; rounding can
        // leave it at ~0 only when p ≈ q, where drawing from p is the same law.
        guard total > 1e-12 else { return p.sample(uniform: random.nextUnit()).token }
        return Self.draw(residual, uniform: random.nextUnit(), total: total)
    }
}

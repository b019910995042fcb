import Foundation
import RollspecModel

/// What verifying several candidates for one position decided.
public struct CandidateVerification: Sendable, Equatable {
    /// The index in `candidates` of the one accepted, or nil when all were rejected.
    public var accepted: Int?
    /// The token emitted: the accepted candidate, or a draw from the final residual.
    public var token: Int

    public init(accepted: Int?, token: Int) {
        self.accepted = accepted
        self.token = token
    }
}

/// What verifying a draft's token tree decided.
public struct TreeVerification: Sendable, Equatable {
    /// Chain tokens accepted, a prefix of the chain.
    public var chainAccepted: Int
    /// The index in `Draft.alternatives` of the candidate accepted after them, if one was.
    public var alternative: Int?
    /// The tokens emitted, in order.
    public var tokens: [Int]
    /// For each emitted token, the verify pass's row whose distribution it was drawn from.
    public var rows: [Int]

    /// Draft tokens accepted, an accepted alternative included (what speculation statistics count).
    public var acceptedCount: Int { chainAccepted + (alternative == nil ? 0 : 1) }
}

extension RejectionSampler {
    /// Recursive rejection sampling over several candidates for one position, drawn from the
    /// draft's distribution q without replacement (SpecInfer, Miao et al. 2024, multi-step
    /// speculative sampling; the without-replacement form of Jeon et al. 2024, "Recursive
    /// Speculative Decoding", Algorithm 2).
    ///
    /// With p₁ = p and q₁ = q, candidate cᵢ is accepted with probability min(1, pᵢ(cᵢ)/qᵢ(cᵢ)).
    /// On rejection p₍ᵢ₊₁₎ = norm(max(0, pᵢ − qᵢ)) and q₍ᵢ₊₁₎ = qᵢ without cᵢ, renormalised. When
    /// every candidate is rejected, the token is drawn from the last residual. The emitted token
    /// is then distributed exactly as p, however many candidates there are, provided they were
    /// drawn from q in order without replacement (`Draft.sampleWithoutReplacement`). A point
    /// mass p (greedy decoding) accepts the first candidate equal to its token.
    ///
    /// - Parameters:
    ///   - candidates: distinct tokens, in the order they were drawn.
    ///   - q: the draft's distribution they were drawn from, after the same temperature,
    ///     top-k and top-p as `p`.
    ///   - p: the target's distribution at this position.
    public func verify(candidates: [Int], draft q: TokenDistribution, target p: TokenDistribution, vocabSize: Int,
                       random: inout RandomSource) -> CandidateVerification {
        if p.tokens.count == 1 {  // a point mass: exact match, whatever q is
            let token = Int(p.tokens[0])
            return CandidateVerification(accepted: candidates.firstIndex(of: token), token: token)
        }
        var pi = p.dense(vocabSize: vocabSize), qi = q.dense(vocabSize: vocabSize)
        for (i, c) in candidates.enumerated() {
            guard qi[c] > 0 else { break }  // not a draw from q: nothing more to test
            var ratio = pi[c] / qi[c]
            if case .perturbedRatio(let f) = variant { ratio *= f }
            if random.nextUnit() < min(1, ratio) { return CandidateVerification(accepted: i, token: c) }
            if variant != .keepTargetOnRejection {
                var total = 0.0
                for t in 0..<vocabSize {
                    pi[t] = max(0, pi[t] - qi[t])
                    total += pi[t]
                }
                // Rounding can leave ~0 only when pᵢ ≈ qᵢ, where drawing from pᵢ is the same law.
                if total <= 1e-12 { pi = p.dense(vocabSize: vocabSize); total = 1 }
                for t in 0..<vocabSize { pi[t] /= total }
            }
            let left = 1 - qi[c]
            qi[c] = 0
            guard left > 1e-12 else { break }
            for t in 0..<vocabSize { qi[t] /= left }
        }
        if variant == .resampleFromTarget { return CandidateVerification(accepted: nil, token: p.sample(uniform: random.nextUnit()).token) }
        return CandidateVerification(accepted: nil, token: Self.draw(pi, uniform: random.nextUnit()))
    }

    /// Verifies a draft's token tree: its chain, and at each chained position the candidates
    /// beside it (`Draft.alternatives`), depth by depth with `verify(candidates:)`.
    ///
    /// While the chain's token is accepted the walk goes deeper. When another candidate is
    /// accepted it is emitted with a token drawn from the target's distribution after it (its
    /// own row in the verify pass), and the walk stops; when none is, the residual's draw is
    /// emitted. Each emitted token is distributed as the target's given the ones before it, as
    /// long as each depth's candidates were drawn from the draft's distribution there without
    /// replacement, the chain's first (`DraftTreeBuilder`).
    ///
    /// - Parameter target: the target's distribution from row r of the verify pass: rows
    ///   `0...k` follow the pending token and the chain's k tokens, row `1 + k + a` follows
    ///   alternative a.
    public func verify(tree draft: Draft, target: (Int) -> TokenDistribution, vocabSize: Int,
                       random: inout RandomSource) -> TreeVerification {
        let k = draft.tokens.count
        for depth in 0..<k {
            let beside = draft.alternatives.indices.filter { draft.alternatives[$0].position == depth + 1 }
            let candidates = [draft.tokens[depth]] + beside.map { draft.alternatives[$0].token }
            let q = draft.distributions?[depth] ?? TokenDistribution(tokens: [Int32(draft.tokens[depth])], probabilities: [1])
            let v = verify(candidates: candidates, draft: q, target: target(depth), vocabSize: vocabSize, random: &random)
            switch v.accepted {
            case 0:
                continue
            case let j?:
                let a = beside[j - 1], row = 1 + k + a
                let after = target(row).sample(uniform: random.nextUnit()).token
                return TreeVerification(chainAccepted: depth, alternative: a,
                                        tokens: Array(draft.tokens.prefix(depth)) + [v.token, after], rows: Array(0...depth) + [row])
            case nil:
                return TreeVerification(chainAccepted: depth, alternative: nil,
                                        tokens: Array(draft.tokens.prefix(depth)) + [v.token], rows: Array(0...depth))
            }
        }
        return TreeVerification(chainAccepted: k, alternative: nil,
                                tokens: draft.tokens + [target(k).sample(uniform: random.nextUnit()).token], rows: Array(0...k))
    }

    /// Inverse-CDF draw from a dense distribution (the last positive entry takes rounding).
    static func draw(_ weights: [Double], uniform u: Double, total: Double? = nil) -> Int {
        let total = total ?? weights.reduce(0, +)
        var acc = 0.0, last = 0
        for (t, w) in weights.enumerated() where w > 0 {
            acc += w
            last = t
            if u * total < acc { return t }
        }
        return last
    }
}

extension TokenDistribution {
    /// `count` distinct tokens drawn from this distribution in order, without replacement (or
    /// all it has, if fewer): each by inverse CDF over the mass the earlier ones left. One
    /// pass over the surviving tokens per draw, with no logarithms (Gumbel-top-k needs two per
    /// token), which matters at T > 0 where all V tokens survive.
    public func sampleWithoutReplacement(_ count: Int, random: inout RandomSource) -> [Int] {
        var drawn: [Int] = []  // indices into `tokens`, kept sorted for the scan's skips
        var tokensDrawn: [Int] = []
        var left = probabilities.reduce(0.0) { $0 + Double($1) }
        for _ in 0..<min(count, tokens.count) {
            let u = random.nextUnit() * left
            var acc = 0.0, pick = -1, skip = 0
            for i in tokens.indices {
                if skip < drawn.count, drawn[skip] == i { skip += 1; continue }
                let p = Double(probabilities[i])
                guard p > 0 else { continue }
                pick = i  // rounding can leave acc a hair under u: the last one takes it
                acc += p
                if u < acc { break }
            }
            guard pick >= 0 else { break }
            left -= Double(probabilities[pick])
            drawn.insert(pick, at: drawn.firstIndex { $0 > pick } ?? drawn.count)
            tokensDrawn.append(Int(tokens[pick]))
        }
        return tokensDrawn
    }
}

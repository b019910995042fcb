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
        // The residuals differ from p only where q has mass (a draft with a restricted head
        // covers 8,190 of 49,152 tokens): they are kept over q's support, and p's mass outside
        // it as one number, since the residual there stays p rescaled.
        let support = Support(q)
        var ps = support.gather(p, vocabSize: vocabSize), qs = support.probabilities
        let outsideMass = max(0, p.probabilities.reduce(0.0) { $0 + Double($1) } - ps.reduce(0, +))
        var outside = outsideMass
        for (i, c) in candidates.enumerated() {
            guard let j = support.index(of: c), qs[j] > 0 else { break }  // not a draw from q: nothing more to test
            var ratio = ps[j] / qs[j]
            if case .perturbedRatio(let f) = variant { ratio *= f }
            if random.nextUnit() < min(1, ratio) { return CandidateVerification(accepted: i, token: c) }
            if variant != .keepTargetOnRejection {
                var total = outside
                for k in ps.indices {
                    ps[k] = max(0, ps[k] - qs[k])
                    total += ps[k]
                }
                // Rounding can leave ~0 only when pᵢ ≈ qᵢ, where drawing from pᵢ is the same law.
                if total <= 1e-12 { ps = support.gather(p, vocabSize: vocabSize); outside = outsideMass; total = ps.reduce(outside, +) }
                for k in ps.indices { ps[k] /= total }
                outside /= total
            }
            let left = 1 - qs[j]
            qs[j] = 0
            guard left > 1e-12 else { break }
            for k in qs.indices { qs[k] /= left }
        }
        if variant == .resampleFromTarget { return CandidateVerification(accepted: nil, token: p.sample(uniform: random.nextUnit()).token) }
        // Draw from the last residual: q's support by its weights, the rest in proportion to p.
        let inside = ps.reduce(0, +)
        let x = random.nextUnit() * (inside + outside)
        if x < inside || outside <= 0 {
            return CandidateVerification(accepted: nil, token: support.tokens[Self.draw(ps, uniform: x / max(inside, .leastNonzeroMagnitude), total: inside)])
        }
        return CandidateVerification(accepted: nil, token: support.drawOutside(p, uniform: (x - inside) / outside, vocabSize: vocabSize))
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

/// The tokens a draft distribution gives mass to, for verifying candidates over them only.
private struct Support {
    /// In q's order.
    let tokens: [Int]
    let probabilities: [Double]
    /// `tokens` ascend (an untruncated q), so a token's place is found by bisection.
    let ascending: Bool

    init(_ q: TokenDistribution) {
        var tokens: [Int] = [], probabilities: [Double] = [], ascending = true
        tokens.reserveCapacity(q.tokens.count)
        probabilities.reserveCapacity(q.tokens.count)
        for (t, w) in zip(q.tokens, q.probabilities) where w > 0 {
            if let last = tokens.last, Int(t) < last { ascending = false }
            tokens.append(Int(t))
            probabilities.append(Double(w))
        }
        (self.tokens, self.probabilities, self.ascending) = (tokens, probabilities, ascending)
    }

    func index(of token: Int) -> Int? {
        guard ascending else { return tokens.firstIndex(of: token) }
        var lo = 0, hi = tokens.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if tokens[mid] < token { lo = mid + 1 } else { hi = mid }
        }
        return lo < tokens.count && tokens[lo] == token ? lo : nil
    }

    /// p at each of `tokens`.
    func gather(_ p: TokenDistribution, vocabSize: Int) -> [Double] {
        var out = [Double](repeating: 0, count: tokens.count)
        var dense: [Float]?  // for a truncated p, whose tokens are not in id order
        for (k, t) in tokens.enumerated() {
            if t < p.tokens.count, Int(p.tokens[t]) == t {
                out[k] = Double(p.probabilities[t])
            } else {
                if dense == nil {
                    var d = [Float](repeating: 0, count: vocabSize)
                    for (u, w) in zip(p.tokens, p.probabilities) { d[Int(u)] = w }
                    dense = d
                }
                out[k] = Double(dense![t])
            }
        }
        return out
    }

    /// A draw by inverse CDF from p restricted to the tokens outside this support.
    func drawOutside(_ p: TokenDistribution, uniform u: Double, vocabSize: Int) -> Int {
        var member = [Bool](repeating: false, count: vocabSize)
        for t in tokens { member[t] = true }
        var total = 0.0
        for (t, w) in zip(p.tokens, p.probabilities) where !member[Int(t)] { total += Double(w) }
        var acc = 0.0, last = -1
        for (t, w) in zip(p.tokens, p.probabilities) where w > 0 && !member[Int(t)] {
            acc += Double(w)
            last = Int(t)
            if u * total < acc { return last }
        }
        return last >= 0 ? last : Int(p.tokens[0])
    }
}

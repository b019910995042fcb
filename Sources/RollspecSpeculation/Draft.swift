import RollspecModel

/// The one small type where proposers and the verifier meet: k proposed tokens and, for a
/// model draft, the distribution each was drawn from.
public struct Draft: Sendable, Equatable {
    public var tokens: [Int]
    /// `q_i`, the distribution `tokens[i]` was drawn from, after the same temperature / top-k /
    /// top-p as the target. nil: every token was proposed deterministically (a point mass),
    /// as the suffix index does.
    public var distributions: [TokenDistribution]?
    /// Which proposer made it (for statistics).
    public var proposer: ProposerKind
    /// Further candidates in place of `tokens[i]`, verified beside the chain in the same pass (a
    /// token tree one branch deep). `Alternative.position` is i + 1, the place in the verified
    /// segment `[pending] + tokens`. Under greedy decoding they are the draft's runner-ups; at
    /// T > 0 they must be draws from `distributions[i]` without replacement after `tokens[i]`,
    /// in their order here (`DraftTreeBuilder`), for `RejectionSampler.verify(tree:)` to be
    /// exact. When one is accepted, a token drawn from the target after it comes with it.
    public var alternatives: [Alternative] = []

    public init(tokens: [Int], distributions: [TokenDistribution]? = nil, proposer: ProposerKind) {
        precondition(distributions == nil || distributions!.count == tokens.count)
        self.tokens = tokens
        self.distributions = distributions
        self.proposer = proposer
    }

    public static func empty(_ proposer: ProposerKind) -> Draft { Draft(tokens: [], proposer: proposer) }

    public var isEmpty: Bool { tokens.isEmpty }

    /// `q_i(token)`: 1 for a point-mass proposal.
    func draftProbability(at i: Int) -> Double {
        guard let distributions else { return 1 }
        return Double(distributions[i].probability(of: tokens[i]))
    }
}

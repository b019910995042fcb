import Foundation
import RollspecKernels
import RollspecModel

/// The shape of the token tree a model draft proposes: a chain, and beside each chained token
/// further candidates for its place (`Draft.alternatives`), verified in the same target pass.
public enum DraftTreeShape: Sendable, Equatable {
    /// Only the chain.
    case chain
    /// `counts[i]` further candidates beside chain token i (positions past the list get none).
    case fixed([Int])
    /// Shaped by the draft's own probabilities (as EAGLE-2, Li et al. 2024): `rows` verified rows
    /// in all, counting the pending token's. The chain grows while the draft's probability of
    /// all of it stays at or above `extendThreshold`; the rows left go to the candidates most
    /// likely to be needed (the chain's probability up to their place times their own).
    case shaped(rows: Int, extendThreshold: Float)

    /// This shape with at most `budget` verified rows (the pending token's included): a shaped
    /// tree shrinks, down to a bare chain; a fixed or chain shape is left as it is.
    public func limited(toRows budget: Int) -> DraftTreeShape {
        guard case .shaped(let rows, let threshold) = self else { return self }
        return .shaped(rows: max(2, min(rows, budget)), extendThreshold: threshold)
    }

    /// Most rows the tree can add beside the chain.
    var isChain: Bool {
        switch self {
        case .chain: true
        case .fixed(let counts): counts.allSatisfy { $0 == 0 }
        case .shaped: false
        }
    }
}

/// Builds one draft's tree a depth at a time, for any proposer that drafts from distributions.
///
/// Greedy decoding offers the draft's runner-ups (its next most likely tokens): the target's
/// token is accepted wherever it is among them. At T > 0 every depth's candidates are drawn from
/// the draft's distribution q *without replacement*, the chain's token first, so
/// that recursive rejection sampling over them is exact (`RejectionSampler.verify(tree:)`). How
/// many candidates a depth keeps may depend on the chain and on q, never on which tokens the
/// extra draws turned out to be: a shaped tree values its j-th extra candidate at a depth by q's
/// j-th largest probability after the chain's token, not by the drawn token's own.
struct DraftTreeBuilder {
    let shape: DraftTreeShape
    let sampling: SamplingParameters
    /// The tokens the draft's head can give (ascending), when it is restricted to some
    /// (`LlamaModel.outputVocabulary`): every depth is ranked, or its distribution built, over
    /// them only (`headLogits`).
    let outputVocabulary: [Int32]?
    private(set) var tokens: [Int] = []
    private(set) var distributions: [TokenDistribution] = []
    /// Per depth, the extra candidates in order, with what a shaped tree values them at.
    private var offered: [[(value: Float, token: Int)]] = []
    /// The draft's probability of the whole chain so far (greedy: at temperature 1).
    private(set) var chainProbability: Float = 1
    /// Scratch for greedy shaping, one entry per token the head can give.
    private var softmax: FloatBuffer?

    init(shape: DraftTreeShape, sampling: SamplingParameters, outputVocabulary: [Int32]? = nil) {
        self.shape = shape
        self.sampling = sampling
        self.outputVocabulary = outputVocabulary
    }

    /// One depth drawn but not yet in the tree: its chain token, the draft's probability of it
    /// (q after the sampling transforms; under greedy, its top probability at temperature 1),
    /// and the extra candidates.
    struct Depth {
        var token: Int
        var probability: Float
        var distribution: TokenDistribution
        fileprivate var offered: [(value: Float, token: Int)]
    }

    /// Draws the next depth from the draft's logits at it.
    mutating func draw(logits: UnsafePointer<Float>, vocabSize: Int, random: inout RandomSource) -> Depth {
        let extra: Int
        switch shape {
        case .chain: extra = 0
        case .fixed(let counts): extra = tokens.count < counts.count ? counts[tokens.count] : 0
        case .shaped(let rows, _): extra = rows - 2
        }
        if sampling.isGreedy {
            return headLogits(logits, vocabSize: vocabSize) { z, n, token in
                // One top-k pass gives the chain's token (greedy's point mass) and the runner-ups.
                let top = topKIndices(z, count: n, k: extra + 1)
                let q = TokenDistribution(tokens: [Int32(token(top[0]))], probabilities: [1])
                var probability: Float = 1
                var offered: [(value: Float, token: Int)] = top.dropFirst().map { (0, token($0)) }
                if case .shaped = shape {
                    let p = softmax.flatMap { $0.count == n ? $0 : nil } ?? FloatBuffer(count: n)
                    softmax = p
                    softmaxForward(p.pointer, z, n: 1, dim: n)
                    probability = p[top[0]]
                    offered = top.dropFirst().map { (chainProbability * p[$0], token($0)) }
                }
                return Depth(token: token(top[0]), probability: probability, distribution: q, offered: offered)
            }
        }
        let q = distribution(logits: logits, vocabSize: vocabSize)
        if extra == 0 {
            let (token, probability) = q.sample(uniform: random.nextUnit())
            return Depth(token: token, probability: probability, distribution: q, offered: [])
        }
        let drawn = q.sampleWithoutReplacement(extra + 1, random: &random)
        let probability = q.probability(of: drawn[0])
        // Values from q's ranked probabilities after the chain token, never the drawn tokens'.
        let top = q.probabilities.withUnsafeBufferPointer { topKIndices($0.baseAddress!, count: $0.count, k: extra + 1) }
        let ranked = top.filter { Int(q.tokens[$0]) != drawn[0] }.map { q.probabilities[$0] }
        let offered = drawn.dropFirst().enumerated().map { j, t in (chainProbability * ranked[j], t) }
        return Depth(token: drawn[0], probability: probability, distribution: q, offered: offered)
    }

    /// The draft's distribution q after the sampling transforms.
    private func distribution(logits: UnsafePointer<Float>, vocabSize: Int) -> TokenDistribution {
        headLogits(logits, vocabSize: vocabSize) { z, n, token in
            let q = TokenDistribution(logits: z, vocabSize: n, parameters: sampling)
            return n == vocabSize ? q : TokenDistribution(tokens: q.tokens.map { Int32(token(Int($0))) }, probabilities: q.probabilities)
        }
    }

    /// Runs `body` over the logits of the tokens the draft's head can give, with the token id of
    /// each entry. A restricted head gives −∞ to every other token, so its own entries alone
    /// give the same top-k, softmax and distribution, without passes over the whole vocabulary.
    private func headLogits<R>(_ logits: UnsafePointer<Float>, vocabSize: Int,
                               _ body: (UnsafePointer<Float>, Int, (Int) -> Int) -> R) -> R {
        guard let ids = outputVocabulary, ids.count < vocabSize else { return body(logits, vocabSize, { $0 }) }
        let gathered = ids.map { logits[Int($0)] }
        return gathered.withUnsafeBufferPointer { body($0.baseAddress!, ids.count, { Int(ids[$0]) }) }
    }

    /// Puts `depth` in the tree.
    mutating func append(_ depth: Depth) {
        tokens.append(depth.token)
        distributions.append(depth.distribution)
        offered.append(depth.offered)
        chainProbability *= depth.probability
    }

    /// A shaped tree stops its chain when no row is left beside it or it is unlikely to hold.
    var chainIsComplete: Bool {
        guard case .shaped(let rows, let threshold) = shape else { return false }
        return tokens.count + 1 >= rows || chainProbability < threshold
    }

    /// The draft: the chain with each depth's distribution, and the candidates the shape keeps.
    func draft(proposer: ProposerKind) -> Draft {
        var draft = Draft(tokens: tokens, distributions: distributions, proposer: proposer)
        var keep = offered.map(\.count)
        if case .shaped(let rows, _) = shape {
            // The rows left after the chain go to the best-valued candidates; values fall along
            // each depth's list, so every depth keeps a prefix of it.
            let slots = offered.enumerated().flatMap { d, list in list.enumerated().map { (value: $1.value, depth: d, j: $0) } }
            let best = slots.sorted { ($0.value, -$0.depth, -$0.j) > ($1.value, -$1.depth, -$1.j) }.prefix(max(0, rows - 1 - tokens.count))
            keep = offered.indices.map { d in best.filter { $0.depth == d }.count }
        }
        draft.alternatives = offered.enumerated().flatMap { d, list in
            list.prefix(keep[d]).map { Alternative(position: d + 1, token: $0.token) }
        }
        return draft
    }
}

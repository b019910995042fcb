import Foundation
import RollspecKernels
import RollspecModel

/// A proposer that reads the target's hidden states: the speculative generator hands it the
/// target's feature (final-norm hidden state) of every context position once the target has
/// run it, in order.
public protocol TargetFeatureConsumer: AnyObject {
    /// The target's features of the next `count` context positions, `[count, C]`.
    func observeTargetFeatures(_ rows: UnsafePointer<Float>, count: Int)
}

/// Proposes with a feature-level draft (EAGLE, Li et al. 2024).
///
/// Context positions `0 ..< n` with the last one pending: the target has run positions
/// `0 ..< n − 1` and handed over their features `f_0 … f_{n−2}`. Draft entry `p` is the pair
/// `(context[p + 1], f_p)`; entries built from the target's own features are kept across steps,
/// entries built from the draft's guesses are dropped after each verification and rebuilt from
/// the target's features (EAGLE's re-feeding). The last entry's logits give the first draft
/// token; each next step pairs the drafted token with the draft's guessed feature.
/// Like `DraftModelProposer`, it samples from its own distribution and returns it, so the
/// verifier stays exact at any temperature.
public final class FeatureDraftProposer: Proposer, TargetFeatureConsumer {
    public let name = "draft"
    public let model: FeatureDraftModel
    /// Under greedy decoding, how many runner-up tokens to offer at each drafted position,
    /// first position first (`Draft.alternatives`); positions past the list get none. Each is
    /// one more row in the target's verify pass, nearly free while the pass stays
    /// memory-bound (up to ~8 rows for SmolLM2 on 2 cores), not beyond.
    public var alternatives: [Int]
    /// Under greedy decoding, a tree shaped by the draft's own probabilities (as EAGLE-2, Li
    /// et al. 2024, does) in place of fixed counts: `treeRows` rows in all, counting the
    /// pending token's. The chain grows while the draft's probability that all of it is
    /// accepted stays at or above `extendThreshold`; the rows left go to the runner-ups most
    /// likely to be the target's token (the chain's probability up to their place times their
    /// own). 0: off (`alternatives` apply).
    public var treeRows: Int
    public var extendThreshold: Float
    private var cache: KVCache
    /// `[V]` the draft's probabilities at one position (tree shaping).
    private var probabilities: FloatBuffer?
    /// `[positions, C]` the target's features so far.
    private var features: [Float] = []
    /// Draft cache entries built from the target's features (the rest are guesses).
    private var built = 0

    public init(model: FeatureDraftModel, alternatives: [Int] = [], treeRows: Int = 0, extendThreshold: Float = 0.35) {
        precondition(treeRows == 0 || treeRows >= 2, "a tree needs the pending token's row and one more")
        self.model = model
        self.alternatives = alternatives
        self.treeRows = treeRows
        self.extendThreshold = extendThreshold
        self.cache = model.makeCache()
    }

    public func begin(prompt: [Int]) {
        cache = model.makeCache(capacity: prompt.count + 64)
        features = []
        features.reserveCapacity((prompt.count + 64) * model.config.hiddenSize)
        built = 0
    }

    public func observeTargetFeatures(_ rows: UnsafePointer<Float>, count: Int) {
        features.append(contentsOf: UnsafeBufferPointer(start: rows, count: count * model.config.hiddenSize))
    }

    public func propose(context: [Int], maxTokens: Int, sampling: SamplingParameters,
                        random: inout RandomSource) -> Draft {
        let dim = model.config.hiddenSize
        let n = context.count
        // Every position but the pending one must have its feature; otherwise stay silent.
        guard maxTokens > 0, n >= 2, features.count == (n - 1) * dim else { return .empty(name) }
        cache.truncate(to: built)
        var out = features.withUnsafeBufferPointer {
            model.forward(tokens: Array(context[(built + 1)..<n]), features: $0.baseAddress! + built * dim, cache: cache)
        }
        built = n - 1

        var tokens: [Int] = [], dists: [TokenDistribution] = []
        let vocab = model.config.vocabSize
        var runnersUp: [Alternative] = []
        let shaped = sampling.isGreedy && treeRows > 0
        // Shaped tree: every runner-up seen, valued by its probability of being the target's
        // token; and the probability that the whole chain so far is accepted.
        var candidates: [(value: Float, alternative: Alternative)] = []
        var chainProbability: Float = 1
        while true {
            if shaped {
                let p = probabilities ?? FloatBuffer(count: vocab)
                probabilities = p
                softmaxForward(p.pointer, out.row(0), n: 1, dim: vocab)
                let top = TopKProbabilities.largest(out.row(0), vocabSize: vocab, count: treeRows - 1)
                let position = tokens.count + 1
                for t in top.dropFirst() {
                    candidates.append((chainProbability * p[t], Alternative(position: position, token: t)))
                }
                chainProbability *= p[top[0]]
            } else if sampling.isGreedy, tokens.count < alternatives.count, alternatives[tokens.count] > 0 {
                let position = tokens.count + 1
                runnersUp += TopKProbabilities.largest(out.row(0), vocabSize: vocab, count: alternatives[tokens.count] + 1).dropFirst()
                    .map { Alternative(position: position, token: $0) }
            }
            let q = TokenDistribution(logits: out.row(0), vocabSize: vocab, parameters: sampling)
            let token = sampling.isGreedy ? Int(q.tokens[0]) : q.sample(uniform: random.nextUnit()).token
            tokens.append(token)
            dists.append(q)
            if tokens.count == maxTokens { break }
            if shaped, tokens.count + 1 >= treeRows || chainProbability < extendThreshold { break }
            // The draft's guess of the feature at the position it just predicted.
            let previous = out
            out = withExtendedLifetime(previous) {
                model.forward(tokens: [token], features: previous.features!.pointer + (previous.featureRows[0].upperBound - 1) * dim,
                              cache: cache)
            }
        }
        if shaped {
            runnersUp = candidates.sorted { $0.value > $1.value }.prefix(treeRows - 1 - tokens.count).map(\.alternative)
        }
        var draft = Draft(tokens: tokens, distributions: dists, proposer: name)
        draft.alternatives = runnersUp
        return draft
    }
}

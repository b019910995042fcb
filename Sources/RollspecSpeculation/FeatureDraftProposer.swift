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
public final class FeatureDraftProposer: TreeProposer, TargetFeatureConsumer {
    public let kind = ProposerKind.draft
    public let model: FeatureDraftModel
    /// The token tree it proposes beside its chain, at any temperature (`DraftTreeBuilder`).
    /// Each further candidate is one more row in the target's verify pass, nearly free while
    /// the pass stays memory-bound (up to ~8 rows for SmolLM2 on 2 cores), not beyond.
    public var tree: DraftTreeShape
    /// Set per step by the generator: the rows the controller pays for (`TreeProposer`).
    public var rowBudget: Int?
    private var cache: KVCache
    /// `[positions, C]` the target's features so far.
    private var features: [Float] = []
    /// Draft cache entries built from the target's features (the rest are guesses).
    private var built = 0

    public init(model: FeatureDraftModel, tree: DraftTreeShape = .chain) {
        if case .shaped(let rows, _) = tree { precondition(rows >= 2, "a tree needs the pending token's row and one more") }
        self.model = model
        self.tree = tree
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
        guard maxTokens > 0, n >= 2, features.count == (n - 1) * dim else { return .empty(kind) }
        cache.truncate(to: built)
        var out = features.withUnsafeBufferPointer {
            model.forward(tokens: Array(context[(built + 1)..<n]), features: $0.baseAddress! + built * dim, cache: cache)
        }
        built = n - 1

        var builder = DraftTreeBuilder(shape: rowBudget.map { tree.limited(toRows: $0) } ?? tree, sampling: sampling,
                                       outputVocabulary: model.body.outputVocabulary)
        while true {
            let depth = builder.draw(logits: out.row(0), vocabSize: model.config.vocabSize, random: &random)
            builder.append(depth)
            if builder.tokens.count == maxTokens || builder.chainIsComplete { break }
            // The draft's guess of the feature at the position it just predicted.
            let previous = out
            out = withExtendedLifetime(previous) {
                model.forward(tokens: [depth.token], features: previous.features!.pointer + (previous.featureRows[0].upperBound - 1) * dim,
                              cache: cache)
            }
        }
        return builder.draft(proposer: kind)
    }
}

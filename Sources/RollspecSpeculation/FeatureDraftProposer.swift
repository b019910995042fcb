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
public final class FeatureDraftProposer: TreeProposer, TargetFeatureConsumer, BatchDrafting {
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

    public var batchKey: ObjectIdentifier { ObjectIdentifier(model) }

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

    /// Drafts for several sequences that share this draft model, one draft pass per depth:
    /// first each sequence's pairs built from the target's features since its last draft,
    /// then each chain still growing (`BatchDrafting`).
    public static func propose(together requests: [DraftRequest], random: inout [RandomSource]) -> [Draft] {
        precondition(random.count == requests.count, "one random stream per request")
        let proposers = members(of: requests)
        guard let model = proposers.first?.model else { return [] }
        let dim = model.config.hiddenSize
        // Every position but the pending one must have its feature; otherwise stay silent.
        let live = requests.indices.filter { r in
            let n = requests[r].context.count
            return requests[r].maxTokens > 0 && n >= 2 && proposers[r].features.count == (n - 1) * dim
        }
        // First the pairs built from the target's features since each proposer's last draft
        // (the guesses of that draft are dropped: EAGLE's re-feeding).
        var segments: [ForwardSegment] = []
        var known: [Float] = []
        for r in live {
            let p = proposers[r], n = requests[r].context.count
            p.cache.truncate(to: p.built)
            segments.append(ForwardSegment(tokens: Array(requests[r].context[(p.built + 1)..<n]), cache: p.cache))
            known.append(contentsOf: p.features[(p.built * dim)...])
            p.built = n - 1
        }
        let first = segments.isEmpty ? nil : known.withUnsafeBufferPointer { model.forward(segments, features: $0.baseAddress!) }
        // Then each drafted token paired with the draft's guess of the feature at the position
        // it predicted.
        return growTogether(requests, proposers: proposers, live: live, first: first,
                            outputVocabulary: model.body.outputVocabulary, vocabSize: model.config.vocabSize,
                            random: &random) { grow, logits in
            var guesses: [Float] = []
            for g in grow {
                let last = logits.featureRows[g.slot].upperBound - 1
                guesses.append(contentsOf: UnsafeBufferPointer(start: logits.features!.pointer + last * dim, count: dim))
            }
            return guesses.withUnsafeBufferPointer {
                model.forward(grow.map { ForwardSegment(tokens: [$0.token], cache: proposers[$0.request].cache) },
                              features: $0.baseAddress!)
            }
        }
    }
}

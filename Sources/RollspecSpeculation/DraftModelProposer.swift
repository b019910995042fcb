import Foundation
import RollspecKernels
import RollspecModel

/// Proposes with a small Llama-family draft model that shares the target's vocabulary.
///
/// The draft keeps its own KV cache in step with the context: before proposing it drops the
/// rows of tokens that were rejected (anything past the longest common prefix of what it has
/// seen and the current context) and runs the new tokens in one pass. It proposes by sampling
/// from its own distributions, processed by the same temperature / top-k / top-p as the
/// target, and returns them with the draft so that the verifier can use q exactly.
/// Drafting stops early when the draft's probability of its own choice falls below
/// `confidenceThreshold` (a cheap signal that the rest would be rejected). Beside its chain it
/// can offer further candidates per position, its next most likely tokens under greedy decoding
/// and draws without replacement at T > 0 (`tree`, see `DraftTreeBuilder`).
public final class DraftModelProposer: TreeProposer, BatchDrafting {
    public let kind = ProposerKind.draft
    public let model: LlamaModel
    public var confidenceThreshold: Float
    public var tree: DraftTreeShape
    /// Set per step by the generator: the rows the controller pays for (`TreeProposer`).
    public var rowBudget: Int?
    private var cache: KVCache
    /// The tokens whose keys and values are in `cache`, in order.
    private var seen: [Int] = []

    public var batchKey: ObjectIdentifier { ObjectIdentifier(model) }

    public init(model: LlamaModel, confidenceThreshold: Float = 0, tree: DraftTreeShape = .chain) {
        if case .shaped(let rows, _) = tree { precondition(rows >= 2, "a tree needs the pending token's row and one more") }
        self.model = model
        self.confidenceThreshold = confidenceThreshold
        self.tree = tree
        self.cache = model.makeCache()
    }

    public func begin(prompt: [Int]) {
        cache = model.makeCache(capacity: prompt.count + 64)
        seen = []
    }

    /// Drafts for several sequences that share this draft model, one pass per depth: first
    /// each sequence's tokens since the common prefix of what its cache holds and its context,
    /// then each chain still growing (`BatchDrafting`). A sequence's chain stops where its own
    /// confidence falls below its proposer's threshold.
    public static func propose(together requests: [DraftRequest], random: inout [RandomSource]) -> [Draft] {
        precondition(random.count == requests.count, "one random stream per request")
        let proposers = members(of: requests)
        guard let model = proposers.first?.model else { return [] }
        let live = requests.indices.filter { requests[$0].maxTokens > 0 && !requests[$0].context.isEmpty }
        // Roll each cache back to the common prefix, then catch up on the new tokens.
        var segments: [ForwardSegment] = []
        for r in live {
            let p = proposers[r], context = requests[r].context
            var common = 0
            let limit = min(p.seen.count, context.count - 1)
            while common < limit && p.seen[common] == context[common] { common += 1 }
            p.cache.truncate(to: common)
            p.seen.removeLast(p.seen.count - common)
            segments.append(ForwardSegment(tokens: Array(context[common...]), cache: p.cache))
            p.seen += context[common...]
        }
        let vocab = model.config.vocabSize
        return growTogether(requests, proposers: proposers, live: live,
                            first: segments.isEmpty ? nil : model.forward(segments, logits: .last),
                            outputVocabulary: model.outputVocabulary, vocabSize: vocab, random: &random,
                            keeps: { r, depth, logits in
                                // Confidence of the draft in its own pick (its top probability when greedy).
                                let p = proposers[r]
                                guard p.confidenceThreshold > 0 else { return true }
                                let confidence = requests[r].sampling.isGreedy ? topProbability(logits, vocabSize: vocab) : depth.probability
                                return confidence >= p.confidenceThreshold
                            }) { grow, _ in
            for g in grow { proposers[g.request].seen.append(g.token) }
            return model.forward(grow.map { ForwardSegment(tokens: [$0.token], cache: proposers[$0.request].cache) }, logits: .last)
        }
    }

    /// The draft's probability of its most likely token, at temperature 1: one pass over the
    /// logits gives the argmax and the log-sum-exp together.
    private static func topProbability(_ logits: UnsafePointer<Float>, vocabSize: Int) -> Float {
        let row = rowLogSumExp(logits, count: vocabSize)
        guard row.argmax >= 0 else { return 0 }  // NaN logits: no confidence (as NaN compared before)
        return expf(Float(row.logSoftmax(logits, at: row.argmax)))
    }
}

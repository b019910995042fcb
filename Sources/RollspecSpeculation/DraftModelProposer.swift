import Foundation
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
public final class DraftModelProposer: TreeProposer {
    public let kind = ProposerKind.draft
    public let model: LlamaModel
    public var confidenceThreshold: Float
    public var tree: DraftTreeShape
    /// Set per step by the generator: the rows the controller pays for (`TreeProposer`).
    public var rowBudget: Int?
    private var cache: KVCache
    /// The tokens whose keys and values are in `cache`, in order.
    private var seen: [Int] = []

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

    public func propose(context: [Int], maxTokens: Int, sampling: SamplingParameters,
                       random: inout RandomSource) -> Draft {
        guard maxTokens > 0, !context.isEmpty else { return .empty(kind) }
        // Roll back to the common prefix, then catch up on the new tokens in one pass.
        var common = 0
        let limit = min(seen.count, context.count - 1)
        while common < limit && seen[common] == context[common] { common += 1 }
        cache.truncate(to: common)
        seen.removeLast(seen.count - common)
        let newTokens = Array(context[common...])
        var logits = model.forward([ForwardSegment(tokens: newTokens, cache: cache)], logits: .last).rowArray(0)
        seen += newTokens

        var builder = DraftTreeBuilder(shape: rowBudget.map { tree.limited(toRows: $0) } ?? tree, sampling: sampling,
                                       outputVocabulary: model.outputVocabulary)
        while true {
            let depth = logits.withUnsafeBufferPointer {
                builder.draw(logits: $0.baseAddress!, vocabSize: model.config.vocabSize, random: &random)
            }
            if confidenceThreshold > 0, !builder.tokens.isEmpty {
                // Confidence of the draft in its own pick (its top probability when greedy).
                let confidence = sampling.isGreedy ? topProbability(logits) : depth.probability
                if confidence < confidenceThreshold { break }
            }
            builder.append(depth)
            if builder.tokens.count == maxTokens || builder.chainIsComplete { break }
            logits = model.decode(depth.token, cache: cache)
            seen.append(depth.token)
        }
        return builder.draft(proposer: kind)
    }

    /// The draft's probability of its most likely token, at temperature 1.
    private func topProbability(_ logits: [Float]) -> Float {
        let best = logits.indices.max { logits[$0] < logits[$1] }!
        return logits.withUnsafeBufferPointer { expf(logSoftmax($0.baseAddress!, vocabSize: $0.count, at: best)) }
    }
}

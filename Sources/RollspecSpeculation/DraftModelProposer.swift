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
/// `confidenceThreshold` (a cheap signal that the rest would be rejected).
public final class DraftModelProposer: Proposer {
    public let name = "draft"
    public let model: LlamaModel
    public var confidenceThreshold: Float
    private var cache: KVCache
    /// The tokens whose keys and values are in `cache`, in order.
    private var seen: [Int] = []

    public init(model: LlamaModel, confidenceThreshold: Float = 0) {
        self.model = model
        self.confidenceThreshold = confidenceThreshold
        self.cache = model.makeCache()
    }

    public func begin(prompt: [Int]) {
        cache = model.makeCache(capacity: prompt.count + 64)
        seen = []
    }

    public func propose(context: [Int], maxTokens: Int, sampling: SamplingParameters,
                       random: inout RandomSource) -> Draft {
        guard maxTokens > 0, !context.isEmpty else { return .empty(name) }
        // Roll back to the common prefix, then catch up on the new tokens in one pass.
        var common = 0
        let limit = min(seen.count, context.count - 1)
        while common < limit && seen[common] == context[common] { common += 1 }
        cache.truncate(to: common)
        seen.removeLast(seen.count - common)
        let newTokens = Array(context[common...])
        var logits = model.forward([ForwardSegment(tokens: newTokens, cache: cache)], logits: .last).rowArray(0)
        seen += newTokens

        var tokens: [Int] = [], dists: [TokenDistribution] = []
        let vocab = model.config.vocabSize
        while true {
            let q = logits.withUnsafeBufferPointer {
                TokenDistribution(logits: $0.baseAddress!, vocabSize: vocab, parameters: sampling)
            }
            let (token, prob) = sampling.isGreedy ? (Int(q.tokens[0]), Float(1)) : q.sample(uniform: random.nextUnit())
            if confidenceThreshold > 0, !tokens.isEmpty {
                // Confidence of the draft in its own pick (its top probability when greedy).
                let confidence = sampling.isGreedy ? topProbability(logits) : prob
                if confidence < confidenceThreshold { break }
            }
            tokens.append(token)
            dists.append(q)
            if tokens.count == maxTokens { break }
            logits = model.decode(token, cache: cache)
            seen.append(token)
        }
        return Draft(tokens: tokens, distributions: dists, proposer: name)
    }

    /// The draft's probability of its most likely token, at temperature 1.
    private func topProbability(_ logits: [Float]) -> Float {
        let best = logits.indices.max { logits[$0] < logits[$1] }!
        return logits.withUnsafeBufferPointer { expf(logSoftmax($0.baseAddress!, vocabSize: $0.count, at: best)) }
    }
}

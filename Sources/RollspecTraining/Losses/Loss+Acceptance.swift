import Foundation
import RollspecKernels
import RollspecModel

/// The draft's probability of the token that actually followed one position of a sequence.
public struct NextTokenProbability: Sendable, Equatable {
    /// Index of the example in the batch.
    public var example: Int
    /// Position i of the example: the probability is of `tokens[i + 1]`.
    public var position: Int
    /// q(tokens[i + 1]) under the example's sampling (temperature, top-k, top-p; temperature 1
    /// when none is given); 0 when the draft cannot propose that token (outside its output
    /// vocabulary, or cut by top-k / top-p).
    public var probability: Float

    public init(example: Int, position: Int, probability: Float) {
        self.example = example
        self.position = position
        self.probability = probability
    }
}

extension Loss {
    /// The acceptance rate speculative sampling would have, estimated from tokens the policy
    /// sampled: E_{x~p}[min(1, q(x)/p(x))] = Σ_x min(p(x), q(x)), the probability that the
    /// verifier accepts a token the draft proposes (Leviathan et al. 2023), with the sum over the
    /// vocabulary replaced by the mean over samples x ~ p.
    ///
    /// This is what a trajectory can support: it records the policy's probability of the token
    /// it sampled (its logprob), not the policy's whole distribution. The mean of q(x) over the
    /// same samples, E_p[q], is not the acceptance rate: it is Σ p·q, which is below Σ min(p, q)
    /// whenever p is spread out (a draft equal to the policy scores Σ p², not 1).
    ///
    /// - Parameters:
    ///   - draftProbabilities: q(x) of each sampled token.
    ///   - logprobs: log p(x) of the same tokens, as the policy reported when sampling.
    /// - Returns: the mean of min(1, q/p); 0 when there are no samples.
    ///
    /// q and p must be distributions at the same sampling: trajectories record log p under the
    /// temperature, top-k and top-p they were sampled with, and `nextTokenProbabilities` takes the
    /// same per example (`draftProbabilities`). A draft scored at temperature 1 against samples
    /// at 0.7 would be compared with another distribution than the one the verifier uses.
    public static func sampledAcceptance(draftProbabilities q: [Float], logprobs: [Float]) -> Double {
        precondition(q.count == logprobs.count, "\(q.count) draft probabilities for \(logprobs.count) logprobs")
        guard !q.isEmpty else { return 0 }
        var total = 0.0
        for (qx, lp) in zip(q, logprobs) {
            let p = exp(Double(lp))
            // p = 0 cannot have been sampled; a logprob of -inf would only come from a bad record.
            total += p > 0 ? min(1, Double(qx) / p) : 0
        }
        return total / Double(q.count)
    }
}

extension Loss {
    /// The draft's probability of each row's next token under that row's sampling, built as the
    /// rejection sampler builds the draft's distribution (`TokenDistribution`).
    ///
    /// - Parameters:
    ///   - logits: `[rows, width]` the draft's logits.
    ///   - columns: the next token's column in each row; nil when the draft cannot propose it.
    ///   - sampling: each row's temperature, top-k and top-p.
    public static func draftProbabilities(logits: FloatBuffer, width: Int, columns: [Int?],
                                          sampling: [SamplingParameters]) -> [Float] {
        precondition(columns.count == sampling.count && logits.count >= columns.count * width)
        return columns.indices.map { r in
            guard let j = columns[r] else { return 0 }
            return TokenDistribution(logits: logits.pointer + r * width, vocabSize: width, parameters: sampling[r])
                .probability(of: j)
        }
    }
}

import Foundation
import RollspecKernels

/// A token drawn by a `Sampler`, with its log-probability.
public struct SampledToken: Equatable, Sendable {
    public var token: Int
    /// `log p(token)` under the distribution the token was drawn from: after temperature,
    /// top-k and top-p, renormalised. For greedy decoding (a point mass) it is the model's own
    /// log-softmax at temperature 1 instead, which is what an RL learner wants to see.
    public var logprob: Float

    public init(token: Int, logprob: Float) {
        self.token = token
        self.logprob = logprob
    }

    /// `token` with the logprob every generation path reports for it (plain sampling,
    /// speculative verification, trees): log `distribution`(token) when sampling, the log-softmax
    /// of `logits` at temperature 1 when greedy. `distribution` is the one `parameters` build
    /// over `logits`. The GRPO learner's update computes the same quantity in training
    /// (log softmax(z / T)), which is why it refuses top-k and top-p (`JobConfig.validate`).
    public init(token: Int, drawnFrom distribution: TokenDistribution, logits: UnsafePointer<Float>, vocabSize: Int,
                parameters: SamplingParameters) {
        self.token = token
        logprob = parameters.isGreedy
            ? logSoftmax(logits, vocabSize: vocabSize, at: token)
            : Float(log(Double(distribution.probability(of: token))))
    }
}

/// Draws tokens from logits under fixed `SamplingParameters`, from a seeded random stream:
/// the same seed and the same logits give the same tokens.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    public var random: RandomSource

    public init(parameters: SamplingParameters) {
        self.parameters = parameters
        self.random = RandomSource(seed: parameters.seed)
    }

    /// Draws one token from `logits` (`V` floats).
    public mutating func sample(logits: UnsafePointer<Float>, vocabSize: Int) -> SampledToken {
        let dist = TokenDistribution(logits: logits, vocabSize: vocabSize, parameters: parameters)
        let token = parameters.isGreedy ? Int(dist.tokens[0]) : dist.sample(uniform: random.nextUnit()).token
        return SampledToken(token: token, drawnFrom: dist, logits: logits, vocabSize: vocabSize, parameters: parameters)
    }

    public mutating func sample(logits: [Float]) -> SampledToken {
        logits.withUnsafeBufferPointer { sample(logits: $0.baseAddress!, vocabSize: $0.count) }
    }
}

/// `log softmax(logits)[token]` at temperature 1 (the sum in double, by `rowLogSumExp`).
public func logSoftmax(_ logits: UnsafePointer<Float>, vocabSize: Int, at token: Int) -> Float {
    Float(rowLogSumExp(logits, count: vocabSize).logSoftmax(logits, at: token))
}

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
        if parameters.isGreedy {
            let token = Int(dist.tokens[0])
            return SampledToken(token: token, logprob: logSoftmax(logits, vocabSize: vocabSize, at: token))
        }
        let (token, p) = dist.sample(uniform: random.nextUnit())
        return SampledToken(token: token, logprob: Float(log(Double(p))))
    }

    public mutating func sample(logits: [Float]) -> SampledToken {
        logits.withUnsafeBufferPointer { sample(logits: $0.baseAddress!, vocabSize: $0.count) }
    }
}

/// `log softmax(logits)[token]` at temperature 1 (the sum in double, by `rowLogSumExp`).
public func logSoftmax(_ logits: UnsafePointer<Float>, vocabSize: Int, at token: Int) -> Float {
    Float(rowLogSumExp(logits, count: vocabSize).logSoftmax(logits, at: token))
}

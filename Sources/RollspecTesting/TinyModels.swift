import Foundation
import RollspecKernels
import RollspecModel

/// Small random-weight models for tests: fast to build, with distributions peaked enough to be
/// interesting (embeddings at unit scale, projections at 1/sqrt(fan-in)).
public enum TinyModels {
    /// A Llama config with grouped-query attention and a tied head.
    public static func llamaConfig(vocab: Int = 64, hidden: Int = 32, layers: Int = 2,
                                   heads: Int = 4, kvHeads: Int = 2, ffn: Int = 48,
                                   tied: Bool = true, bias: Bool = false) -> LlamaConfig {
        LlamaConfig(modelType: bias ? "qwen2" : "llama", vocabSize: vocab, hiddenSize: hidden,
                    intermediateSize: ffn, numHiddenLayers: layers, numAttentionHeads: heads,
                    numKeyValueHeads: kvHeads, rmsNormEps: 1e-5, ropeTheta: 10000,
                    tieWordEmbeddings: tied, attentionBias: bias)
    }

    /// Random weights for `config`, reproducible from `seed` (`LlamaWeights.random`).
    public static func randomWeights(config: LlamaConfig, seed: UInt64 = 0, scale: Float = 1) -> LlamaWeights {
        LlamaWeights.random(config: config, seed: seed, projectionScale: scale)
    }

    public static func randomModel(config: LlamaConfig = llamaConfig(), seed: UInt64 = 0) -> LlamaModel {
        LlamaModel(weights: randomWeights(config: config, seed: seed))
    }

    /// A random feature-level (EAGLE) draft for `target`: `layers` random decoder layers of the
    /// target's shape, a random `fc`, and the target's embedding and head.
    public static func randomFeatureDraft(target: LlamaWeights, layers: Int = 1, seed: UInt64 = 0) -> FeatureDraftWeights {
        var config = target.config
        config.numHiddenLayers = layers
        var body = randomWeights(config: config, seed: seed)
        body.embedding = target.embedding
        body.lmHead = target.lmHead
        let dim = config.hiddenSize
        var rng = RandomSource(seed: seed &+ 1)
        let fc = FloatBuffer(count: dim * 2 * dim), bias = FloatBuffer(count: dim)
        for i in 0..<fc.count { fc[i] = rng.nextGaussian() / Float(2 * dim).squareRoot() }
        return FeatureDraftWeights(fc: fc, fcBias: bias, body: body)
    }
}

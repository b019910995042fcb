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

    /// Random weights for `config`, reproducible from `seed`.
    public static func randomWeights(config: LlamaConfig, seed: UInt64 = 0, scale: Float = 1) -> LlamaWeights {
        var rng = RandomSource(seed: seed)
        var tensors: [String: FloatBuffer] = [:]
        for (name, shape) in LlamaWeights.expectedTensors(for: config) {
            let count = shape.reduce(1, *)
            let std: Float
            if name.hasSuffix("norm.weight") {
                std = 0.1
            } else if name.hasSuffix(".bias") {
                std = 0.3
            } else if name == "model.embed_tokens.weight" {
                std = 1
            } else {
                std = scale / Float(shape[1]).squareRoot()
            }
            let buffer = FloatBuffer(count: count)
            for i in 0..<count {
                buffer[i] = std * gaussian(&rng) + (name.hasSuffix("norm.weight") ? 1 : 0)
            }
            tensors[name] = buffer
        }
        return LlamaWeights(config: config, tensors: tensors)
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
        for i in 0..<fc.count { fc[i] = gaussian(&rng) / Float(2 * dim).squareRoot() }
        return FeatureDraftWeights(fc: fc, fcBias: bias, body: body)
    }

    /// A standard normal draw (Box–Muller).
    public static func gaussian(_ rng: inout RandomSource) -> Float {
        let u1 = max(rng.nextUnit(), 1e-300), u2 = rng.nextUnit()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

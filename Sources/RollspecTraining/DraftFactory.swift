import Foundation
import RollspecKernels
import RollspecModel

/// Builds small Llama-family draft models that share a target's vocabulary.
public enum DraftFactory {
    /// A draft config with the target's vocabulary, RoPE, norm epsilon and bias setting.
    /// Unset sizes default to the target's.
    public static func config(
        target: LlamaConfig, layers: Int, hiddenSize: Int? = nil, intermediateSize: Int? = nil,
        heads: Int? = nil, kvHeads: Int? = nil, headDim: Int? = nil, tieWordEmbeddings: Bool? = nil
    ) -> LlamaConfig {
        let h = heads ?? target.numAttentionHeads
        var c = LlamaConfig(
            modelType: target.modelType, vocabSize: target.vocabSize, hiddenSize: hiddenSize ?? target.hiddenSize,
            intermediateSize: intermediateSize ?? target.intermediateSize, numHiddenLayers: layers,
            numAttentionHeads: h, numKeyValueHeads: kvHeads ?? min(target.numKeyValueHeads, h),
            headDim: headDim ?? (hiddenSize.map { $0 / h } ?? target.headDim), rmsNormEps: target.rmsNormEps,
            ropeTheta: target.ropeTheta, tieWordEmbeddings: tieWordEmbeddings ?? target.tieWordEmbeddings,
            attentionBias: target.attentionBias, maxPositionEmbeddings: target.maxPositionEmbeddings,
            bosTokenId: target.bosTokenId, eosTokenId: target.eosTokenId)
        c.modelType = target.modelType
        return c
    }

    /// Fresh weights: matrices and embedding ~ N(0, std²), the residual-stream outputs
    /// (o_proj, down_proj) scaled by 1/√(2·layers) (GPT-2, Radford et al. 2019), norms 1,
    /// biases 0. Reproducible from `seed`. A start for training, small and flat; the random
    /// weights of tests and built-in policies (`LlamaWeights.random`) are peaked on purpose.
    public static func scratch(config: LlamaConfig, seed: UInt64 = 0, std: Float = 0.02) -> LlamaWeights {
        var rng = RandomSource(seed: seed)
        var tensors: [String: FloatBuffer] = [:]
        let residualScale = 1 / Float(2 * max(config.numHiddenLayers, 1)).squareRoot()
        for (name, shape) in LlamaWeights.expectedTensors(for: config) {
            let buffer = FloatBuffer(count: shape.reduce(1, *))
            if name.hasSuffix("norm.weight") {
                for i in 0..<buffer.count { buffer[i] = 1 }
            } else if !name.hasSuffix(".bias") {
                let s = name.hasSuffix("o_proj.weight") || name.hasSuffix("down_proj.weight") ? std * residualScale : std
                for i in 0..<buffer.count { buffer[i] = s * rng.nextGaussian() }
            }
            tensors[name] = buffer
        }
        return LlamaWeights(config: config, tensors: tensors)
    }

    /// A draft made of a subset of the target's layers (e.g. `[0, 15, 29]` → 3 layers), with
    /// the target's embedding, final norm and head copied. Every tensor is a copy, so training
    /// the draft leaves the target alone.
    public static func fromTarget(_ target: LlamaWeights, layers: [Int]) -> LlamaWeights {
        precondition(!layers.isEmpty && layers.allSatisfy { $0 >= 0 && $0 < target.config.numHiddenLayers },
                     "layers must be indices of the target's \(target.config.numHiddenLayers) layers")
        var config = target.config
        config.numHiddenLayers = layers.count
        var tensors: [String: FloatBuffer] = [:]
        let source = Dictionary(target.namedTensors.map { ($0.name, $0.buffer) }, uniquingKeysWith: { a, _ in a })
        for (name, _) in LlamaWeights.expectedTensors(for: config) {
            var from = name
            if name.hasPrefix("model.layers.") {
                let rest = name.dropFirst("model.layers.".count)
                let dot = rest.firstIndex(of: ".")!
                from = "model.layers.\(layers[Int(rest[..<dot])!])" + rest[dot...]
            }
            tensors[name] = source[from]!.copy()
        }
        return LlamaWeights(config: config, tensors: tensors)
    }

    /// A feature-level draft (EAGLE) over `target`: the given target layers and a copy of its
    /// final norm as the body, the target's embedding and head shared (not copied), and `fc`
    /// set to `[embeddingScale · I | featureScale · I]` so that the first layer starts from the
    /// sum of the token's embedding and the previous feature, each brought to a similar size.
    public static func featureDraft(_ target: LlamaWeights, layers: [Int], embeddingScale: Float = 1,
                                    featureScale: Float = 1) -> FeatureDraftWeights {
        precondition(!layers.isEmpty && layers.allSatisfy { $0 >= 0 && $0 < target.config.numHiddenLayers },
                     "layers must be indices of the target's \(target.config.numHiddenLayers) layers")
        let copy = fromTarget(target, layers: layers)
        var body = copy
        body.embedding = target.embedding
        body.lmHead = target.lmHead
        let dim = target.config.hiddenSize
        let fc = FloatBuffer(count: dim * 2 * dim), bias = FloatBuffer(count: dim)
        for i in 0..<dim {
            fc[i * 2 * dim + i] = embeddingScale
            fc[i * 2 * dim + dim + i] = featureScale
        }
        return FeatureDraftWeights(fc: fc, fcBias: bias, body: body)
    }

    /// Names of the tensors a draft shares with its target and usually keeps frozen: the
    /// embedding, the final norm and (untied) the head.
    public static func sharedTensorNames(_ config: LlamaConfig) -> Set<String> {
        var names: Set<String> = ["model.embed_tokens.weight", "model.norm.weight"]
        if !config.tieWordEmbeddings { names.insert("lm_head.weight") }
        return names
    }
}

import Foundation
import RollspecClient
import RollspecKernels
import RollspecModel

/// Tiny seeded random Llama models over the byte vocabulary (259 = 256 bytes + `ByteTokenizer`'s
/// three specials), so that a whole job runs without downloading anything.
public enum BuiltinModels {
    public static let vocabSize = 256 + 3

    /// The stand-in policy: 2 layers, width 32.
    public static func policyConfig() -> LlamaConfig {
        LlamaConfig(modelType: "llama", vocabSize: vocabSize, hiddenSize: 32, intermediateSize: 64,
                    numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, rmsNormEps: 1e-5,
                    ropeTheta: 10000, tieWordEmbeddings: true, attentionBias: false)
    }

    /// The config of a built-in policy (`models.policy`): `builtin` is the tiny one above;
    /// `builtin-small` (4 layers, width 256, ~3.3M parameters) is big enough that a decode
    /// step costs more than the bus and bookkeeping around it, so speculation can pay.
    public static func policyConfig(_ policy: BuiltinPolicy) -> LlamaConfig {
        switch policy {
        case .tiny: policyConfig()
        case .small:
            LlamaConfig(modelType: "llama", vocabSize: vocabSize, hiddenSize: 256, intermediateSize: 688,
                        numHiddenLayers: 4, numAttentionHeads: 8, numKeyValueHeads: 4, rmsNormEps: 1e-5,
                        ropeTheta: 10000, tieWordEmbeddings: true, attentionBias: false)
        }
    }

    /// The stand-in draft: 1 layer, width 32.
    public static func draftConfig() -> LlamaConfig {
        var c = policyConfig()
        c.numHiddenLayers = 1
        return c
    }

    /// Random weights for `config`, reproducible from `seed` (unit embeddings, projections at
    /// 1/sqrt(fan-in), norms near 1).
    public static func randomWeights(config: LlamaConfig, seed: UInt64) -> LlamaWeights {
        LlamaWeights.random(config: config, seed: seed)
    }
}

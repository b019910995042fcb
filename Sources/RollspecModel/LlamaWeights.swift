import RollspecKernels

/// The weights of one decoder layer, in the Hugging Face layout (`nn.Linear` rows are outputs).
/// Legend: C hidden size, Q = heads · headDim, K = kvHeads · headDim, F intermediate size.
public struct LlamaLayerWeights: @unchecked Sendable {
    /// `[C]` `input_layernorm.weight`
    public var attentionNorm: FloatBuffer
    /// `[Q, C]` `self_attn.q_proj.weight`
    public var wq: FloatBuffer
    /// `[K, C]` `self_attn.k_proj.weight`
    public var wk: FloatBuffer
    /// `[K, C]` `self_attn.v_proj.weight`
    public var wv: FloatBuffer
    /// `[Q]`, `[K]`, `[K]` q/k/v biases (Qwen2), nil for Llama.
    public var bq: FloatBuffer?
    public var bk: FloatBuffer?
    public var bv: FloatBuffer?
    /// `[C, Q]` `self_attn.o_proj.weight`
    public var wo: FloatBuffer
    /// `[C]` `post_attention_layernorm.weight`
    public var ffnNorm: FloatBuffer
    /// `[F, C]` `mlp.gate_proj.weight`
    public var wGate: FloatBuffer
    /// `[F, C]` `mlp.up_proj.weight`
    public var wUp: FloatBuffer
    /// `[C, F]` `mlp.down_proj.weight`
    public var wDown: FloatBuffer

    public init(
        attentionNorm: FloatBuffer, wq: FloatBuffer, wk: FloatBuffer, wv: FloatBuffer,
        bq: FloatBuffer?, bk: FloatBuffer?, bv: FloatBuffer?, wo: FloatBuffer,
        ffnNorm: FloatBuffer, wGate: FloatBuffer, wUp: FloatBuffer, wDown: FloatBuffer
    ) {
        self.attentionNorm = attentionNorm
        self.wq = wq; self.wk = wk; self.wv = wv
        self.bq = bq; self.bk = bk; self.bv = bv
        self.wo = wo; self.ffnNorm = ffnNorm
        self.wGate = wGate; self.wUp = wUp; self.wDown = wDown
    }
}

/// All weights of a Llama-family model, as `Float32`, in the Hugging Face layout.
/// Legend: V vocab, C hidden size.
public struct LlamaWeights: @unchecked Sendable {
    public var config: LlamaConfig
    /// `[V, C]` `model.embed_tokens.weight`
    public var embedding: FloatBuffer
    public var layers: [LlamaLayerWeights]
    /// `[C]` `model.norm.weight`
    public var finalNorm: FloatBuffer
    /// `[V, C]` `lm_head.weight`; the same buffer as `embedding` when tied.
    public var lmHead: FloatBuffer

    public init(config: LlamaConfig, embedding: FloatBuffer, layers: [LlamaLayerWeights],
                finalNorm: FloatBuffer, lmHead: FloatBuffer) {
        self.config = config
        self.embedding = embedding
        self.layers = layers
        self.finalNorm = finalNorm
        self.lmHead = lmHead
    }

    /// The HF tensor names and shapes this config requires, in a stable order.
    public static func expectedTensors(for config: LlamaConfig) -> [(name: String, shape: [Int])] {
        let c = config.hiddenSize, v = config.vocabSize, f = config.intermediateSize
        let q = config.numAttentionHeads * config.headDim, k = config.numKeyValueHeads * config.headDim
        var out: [(String, [Int])] = [("model.embed_tokens.weight", [v, c])]
        for i in 0..<config.numHiddenLayers {
            let p = "model.layers.\(i)."
            out.append((p + "input_layernorm.weight", [c]))
            out.append((p + "self_attn.q_proj.weight", [q, c]))
            out.append((p + "self_attn.k_proj.weight", [k, c]))
            out.append((p + "self_attn.v_proj.weight", [k, c]))
            if config.attentionBias {
                out.append((p + "self_attn.q_proj.bias", [q]))
                out.append((p + "self_attn.k_proj.bias", [k]))
                out.append((p + "self_attn.v_proj.bias", [k]))
            }
            out.append((p + "self_attn.o_proj.weight", [c, q]))
            out.append((p + "post_attention_layernorm.weight", [c]))
            out.append((p + "mlp.gate_proj.weight", [f, c]))
            out.append((p + "mlp.up_proj.weight", [f, c]))
            out.append((p + "mlp.down_proj.weight", [c, f]))
        }
        out.append(("model.norm.weight", [c]))
        if !config.tieWordEmbeddings { out.append(("lm_head.weight", [v, c])) }
        return out
    }

    /// Builds the weights from a name → buffer map holding exactly `expectedTensors(for:)`
    /// (the checkpoint loaders check names and shapes before calling this).
    public init(config: LlamaConfig, tensors: [String: FloatBuffer]) {
        func t(_ name: String) -> FloatBuffer { tensors[name]! }
        self.config = config
        embedding = t("model.embed_tokens.weight")
        layers = (0..<config.numHiddenLayers).map { i in
            let p = "model.layers.\(i)."
            return LlamaLayerWeights(
                attentionNorm: t(p + "input_layernorm.weight"),
                wq: t(p + "self_attn.q_proj.weight"), wk: t(p + "self_attn.k_proj.weight"),
                wv: t(p + "self_attn.v_proj.weight"),
                bq: tensors[p + "self_attn.q_proj.bias"], bk: tensors[p + "self_attn.k_proj.bias"],
                bv: tensors[p + "self_attn.v_proj.bias"],
                wo: t(p + "self_attn.o_proj.weight"), ffnNorm: t(p + "post_attention_layernorm.weight"),
                wGate: t(p + "mlp.gate_proj.weight"), wUp: t(p + "mlp.up_proj.weight"),
                wDown: t(p + "mlp.down_proj.weight"))
        }
        finalNorm = t("model.norm.weight")
        lmHead = config.tieWordEmbeddings ? embedding : t("lm_head.weight")
    }

    /// Every tensor rounded to bfloat16 (nearest, ties to even) and held as float32; a tied
    /// head stays tied. A tensor that holds bfloat16 values already (a BF16 checkpoint, as a
    /// learner publishes to bfloat16 workers) is shared, not copied, as a float32 model shares
    /// its weights.
    public func roundedToBFloat16() -> LlamaWeights {
        var tensors = [String: FloatBuffer]()
        for (name, buffer) in namedTensors { tensors[name] = buffer.isBFloat16Exact ? buffer : buffer.roundedToBFloat16() }
        return LlamaWeights(config: config, tensors: tensors)
    }

    /// The weights as an HF name → buffer map (tied head omitted), the inverse of `init(config:tensors:)`.
    public var namedTensors: [(name: String, buffer: FloatBuffer)] {
        var out: [(String, FloatBuffer)] = [("model.embed_tokens.weight", embedding)]
        for (i, l) in layers.enumerated() {
            let p = "model.layers.\(i)."
            out.append((p + "input_layernorm.weight", l.attentionNorm))
            out.append((p + "self_attn.q_proj.weight", l.wq))
            out.append((p + "self_attn.k_proj.weight", l.wk))
            out.append((p + "self_attn.v_proj.weight", l.wv))
            if let bq = l.bq, let bk = l.bk, let bv = l.bv {
                out.append((p + "self_attn.q_proj.bias", bq))
                out.append((p + "self_attn.k_proj.bias", bk))
                out.append((p + "self_attn.v_proj.bias", bv))
            }
            out.append((p + "self_attn.o_proj.weight", l.wo))
            out.append((p + "post_attention_layernorm.weight", l.ffnNorm))
            out.append((p + "mlp.gate_proj.weight", l.wGate))
            out.append((p + "mlp.up_proj.weight", l.wUp))
            out.append((p + "mlp.down_proj.weight", l.wDown))
        }
        out.append(("model.norm.weight", finalNorm))
        if !config.tieWordEmbeddings { out.append(("lm_head.weight", lmHead)) }
        return out
    }
}

extension LlamaWeights {
    /// Random weights for `config`, reproducible from `seed`: embeddings at unit scale,
    /// projections at `projectionScale`/sqrt(fan-in), norms at 1 ± 0.1, biases at 0.3. The one
    /// random initialiser of the built-in policies, the tests' tiny models and fresh drafts.
    public static func random(config: LlamaConfig, seed: UInt64, projectionScale: Float = 1) -> LlamaWeights {
        var rng = RandomSource(seed: seed)
        var tensors: [String: FloatBuffer] = [:]
        for (name, shape) in expectedTensors(for: config) {
            let isNorm = name.hasSuffix("norm.weight")
            let std: Float = isNorm ? 0.1
                : name.hasSuffix(".bias") ? 0.3
                : name == "model.embed_tokens.weight" ? 1
                : projectionScale / Float(shape[1]).squareRoot()
            let buffer = FloatBuffer(count: shape.reduce(1, *))
            for i in 0..<buffer.count { buffer[i] = std * rng.nextGaussian() + (isNorm ? 1 : 0) }
            tensors[name] = buffer
        }
        return LlamaWeights(config: config, tensors: tensors)
    }
}

import Foundation
import RollspecKernels

extension LlamaConfig {
    /// The config of a llama.cpp GGUF model, from its `{arch}.*` metadata
    /// (llama.cpp `docs/gguf.md`, "LLM"), where `arch` is `general.architecture`.
    ///
    /// The head is tied when the file has no `output.weight`; q/k/v biases are present when it
    /// has `blk.0.attn_q.bias`.
    /// - Throws: `ModelError.unsupported` for other architectures, RoPE scaling or partial
    ///   rotary dimensions; `ModelError.malformedCheckpoint` naming a missing or mistyped key.
    public init(gguf: GGUFFile) throws {
        let file = gguf.url.path
        func fail(_ reason: String) -> ModelError { .malformedCheckpoint(file: file, tensor: nil, reason: reason) }
        guard let arch = gguf.metadata["general.architecture"]?.stringValue else {
            throw fail("missing metadata key 'general.architecture'")
        }
        guard arch == "llama" || arch == "qwen2" else {
            throw ModelError.unsupported("\(file): GGUF architecture '\(arch)' (rollspec loads llama and qwen2)")
        }
        // Each size key is checked against its range as it is read: a forged value is named
        // before it is used for anything (a head dimension, an allocation).
        let ranges = ["embedding_length": "hidden_size", "feed_forward_length": "intermediate_size", "block_count": "num_hidden_layers",
                      "attention.head_count": "num_attention_heads", "attention.head_count_kv": "num_key_value_heads",
                      "attention.key_length": "head_dim", "rope.dimension_count": "head_dim", "vocab_size": "vocab_size",
                      "context_length": "max_position_embeddings"]
        func int(_ key: String) throws -> Int? {
            guard let value = gguf.metadata["\(arch).\(key)"] else { return nil }
            guard let v = value.intValue else { throw fail("metadata key '\(arch).\(key)' is \(value), not an integer") }
            if let name = ranges[key], let most = LlamaConfig.maxima[name], !(0...most).contains(v) {
                throw fail("metadata key '\(arch).\(key)' is \(v), outside 0...\(most)")
            }
            return v
        }
        func required(_ key: String) throws -> Int {
            guard let v = try int(key) else { throw fail("missing metadata key '\(arch).\(key)'") }
            return v
        }
        func float(_ key: String) throws -> Float? {
            guard let value = gguf.metadata["\(arch).\(key)"] else { return nil }
            guard let v = value.doubleValue else { throw fail("metadata key '\(arch).\(key)' is \(value), not a number") }
            return Float(v)
        }

        let hidden = try required("embedding_length")
        let heads = try required("attention.head_count")
        guard heads > 0 else { throw fail("metadata key '\(arch).attention.head_count' must be positive") }
        let headDim = try int("attention.key_length") ?? hidden / heads
        if let rotary = try int("rope.dimension_count"), rotary != headDim {
            throw ModelError.unsupported("\(file): partial rotary embeddings (rope.dimension_count \(rotary) ≠ head dim \(headDim))")
        }
        if let scaling = gguf.metadata["\(arch).rope.scaling.type"]?.stringValue, scaling != "none" {
            throw ModelError.unsupported("\(file): RoPE scaling '\(scaling)'")
        }
        let vocab = try int("vocab_size")
            ?? gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count
            ?? gguf.info(named: "token_embd.weight")?.shape.first
        guard let vocab else { throw fail("cannot tell the vocabulary size (no '\(arch).vocab_size', token list or token_embd.weight)") }

        self.init(
            modelType: arch, vocabSize: vocab, hiddenSize: hidden,
            intermediateSize: try required("feed_forward_length"),
            numHiddenLayers: try required("block_count"),
            numAttentionHeads: heads, numKeyValueHeads: try int("attention.head_count_kv") ?? heads,
            headDim: headDim,
            rmsNormEps: try float("attention.layer_norm_rms_epsilon") ?? 1e-5,
            ropeTheta: try float("rope.freq_base") ?? 10000,
            tieWordEmbeddings: gguf.info(named: "output.weight") == nil,
            attentionBias: gguf.info(named: "blk.0.attn_q.bias") != nil,
            maxPositionEmbeddings: try int("context_length") ?? 2048,
            bosTokenId: gguf.metadata["tokenizer.ggml.bos_token_id"]?.intValue,
            eosTokenId: gguf.metadata["tokenizer.ggml.eos_token_id"]?.intValue)
        do { try validate() } catch ModelError.invalidConfig(let why) {
            throw ModelError.invalidConfig("\(file): \(why)")
        }
    }
}

extension GGUFFile {
    /// GGUF block component → Hugging Face module path inside `model.layers.N.`.
    private static let layerNames: [String: String] = [
        "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
        "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    ]
    private static let globalNames: [String: String] = [
        "token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    ]

    /// The Hugging Face name of a llama.cpp tensor name (`blk.3.attn_q.weight` →
    /// `model.layers.3.self_attn.q_proj.weight`), nil for tensors with no counterpart
    /// (`rope_freqs.weight`, …).
    public static func huggingFaceName(for name: String) -> String? {
        if let global = globalNames[name] { return global }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0,
              String(layer) == parts[1], let module = layerNames[String(parts[2])],
              parts[3] == "weight" || parts[3] == "bias" else { return nil }
        return "model.layers.\(layer).\(module).\(parts[3])"
    }

    /// Loads a tensor in the Hugging Face layout: dequantized, shape reversed to PyTorch order,
    /// and for the `llama` architecture the rows of Q and K (weights and biases) put back in
    /// Hugging Face order.
    ///
    /// llama.cpp's `convert_hf_to_gguf.py` permutes those rows so that its interleaved RoPE
    /// (pairs `2i, 2i+1`) computes what HF's rotate-half RoPE (pairs `i, i + d/2`) does:
    /// `w.reshape(n_head, 2, d/2, cols).swapaxes(1, 2)`. Qwen2 files are not permuted.
    /// - Parameters:
    ///   - name: the GGUF tensor name.
    ///   - config: supplies the architecture and the head counts (heads for Q, kv heads for K).
    public func huggingFaceTensor(named name: String, config: LlamaConfig) throws -> (shape: [Int], data: FloatBuffer) {
        let (shape, data) = try tensor(named: name)
        guard config.modelType == "llama", let hf = Self.huggingFaceName(for: name) else { return (shape, data) }
        let heads: Int
        if hf.contains(".self_attn.q_proj.") { heads = config.numAttentionHeads }
        else if hf.contains(".self_attn.k_proj.") { heads = config.numKeyValueHeads }
        else { return (shape, data) }
        let rows = shape.first ?? 0
        guard heads > 0, rows % (2 * heads) == 0 else {
            throw ModelError.tensorMismatch(
                file: url.path, reason: "tensor '\(name)' has \(rows) rows, not a multiple of 2 × \(heads) heads")
        }
        return (shape, Self.unpermuteRows(data, rows: rows, heads: heads))
    }

    /// Inverts llama.cpp's Q/K row permutation: HF row `h·d + j·d/2 + i` is GGUF row
    /// `h·d + 2i + j` (d = rows / heads, i < d/2, j ∈ {0, 1}).
    static func unpermuteRows(_ source: FloatBuffer, rows: Int, heads: Int) -> FloatBuffer {
        let out = FloatBuffer(count: source.count)
        guard rows > 0 else { return out }
        let cols = source.count / rows, headDim = rows / heads, half = headDim / 2
        for h in 0..<heads {
            for j in 0..<2 {
                for i in 0..<half {
                    let hfRow = h * headDim + j * half + i, ggufRow = h * headDim + 2 * i + j
                    (out.pointer + hfRow * cols).update(from: source.pointer + ggufRow * cols, count: cols)
                }
            }
        }
        return out
    }
}

import Foundation

/// Hyper-parameters of a Llama-family decoder (Llama, Qwen2, SmolLM), decoded from a Hugging
/// Face `config.json`.
///
/// Qwen2 differs from Llama only in having biases on the q/k/v projections; `attentionBias`
/// covers both (`model_type == "qwen2"` implies it when the file does not say).
public struct LlamaConfig: Codable, Equatable, Sendable {
    public var modelType: String
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    /// Per-head width; HF derives it as `hidden_size / num_attention_heads` when absent.
    public var headDim: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var tieWordEmbeddings: Bool
    /// q/k/v projections carry biases (Qwen2).
    public var attentionBias: Bool
    public var maxPositionEmbeddings: Int
    public var bosTokenId: Int?
    public var eosTokenId: Int?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim"
        case rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias"
        case maxPositionEmbeddings = "max_position_embeddings"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
        case ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters"
        case architectures
    }

    /// transformers 5 writes the rotary settings as `rope_parameters`, with `rope_theta` inside.
    private struct RopeParameters: Decodable {
        var ropeType: String?
        var ropeTheta: Float?
        enum CodingKeys: String, CodingKey {
            case ropeType = "rope_type"
            case ropeTheta = "rope_theta"
        }
    }

    public init(
        modelType: String = "llama", vocabSize: Int, hiddenSize: Int, intermediateSize: Int,
        numHiddenLayers: Int, numAttentionHeads: Int, numKeyValueHeads: Int, headDim: Int? = nil,
        rmsNormEps: Float = 1e-5, ropeTheta: Float = 10000, tieWordEmbeddings: Bool = true,
        attentionBias: Bool = false, maxPositionEmbeddings: Int = 2048,
        bosTokenId: Int? = nil, eosTokenId: Int? = nil
    ) {
        self.modelType = modelType
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim ?? hiddenSize / numAttentionHeads
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "llama"
        guard ["llama", "qwen2", "mistral"].contains(modelType) else {
            throw DecodingError.dataCorruptedError(
                forKey: .modelType, in: c,
                debugDescription: "model_type '\(modelType)' is not a supported Llama-family architecture (llama, qwen2, mistral)")
        }
        if c.contains(.ropeScaling), (try? c.decodeNil(forKey: .ropeScaling)) == false {
            throw DecodingError.dataCorruptedError(
                forKey: .ropeScaling, in: c, debugDescription: "rope_scaling is not supported yet")
        }
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim) ?? hiddenSize / numAttentionHeads
        rmsNormEps = try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? 1e-6
        // Read from either place: a theta left at the default 10000 because it sat inside
        // `rope_parameters` would be another model, sampled from with nothing refused.
        let parameters = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
        if let type = parameters?.ropeType, type != "default" {
            throw DecodingError.dataCorruptedError(
                forKey: .ropeParameters, in: c, debugDescription: "rope_parameters.rope_type '\(type)' is not supported yet (only 'default')")
        }
        let topTheta = try c.decodeIfPresent(Float.self, forKey: .ropeTheta)
        if let topTheta, let nested = parameters?.ropeTheta, topTheta != nested {
            throw DecodingError.dataCorruptedError(
                forKey: .ropeTheta, in: c, debugDescription: "rope_theta (\(topTheta)) and rope_parameters.rope_theta (\(nested)) differ")
        }
        ropeTheta = topTheta ?? parameters?.ropeTheta ?? 10000
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? true
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? (modelType == "qwen2")
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        bosTokenId = try? c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        // eos_token_id may be a list in newer configs; the first entry is the primary one.
        if let one = try? c.decodeIfPresent(Int.self, forKey: .eosTokenId) {
            eosTokenId = one
        } else {
            eosTokenId = (try? c.decodeIfPresent([Int].self, forKey: .eosTokenId))?.first
        }
        try validate()
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(modelType, forKey: .modelType)
        try c.encode([modelType == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"], forKey: .architectures)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(attentionBias, forKey: .attentionBias)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        try c.encodeIfPresent(eosTokenId, forKey: .eosTokenId)
    }

    /// The largest size a config may state, by its Hugging Face key: well past any model this
    /// runs, and small enough that a forged header is refused before anything is allocated.
    public static let maxima: [String: Int] = [
        "vocab_size": 1 << 22, "hidden_size": 1 << 16, "intermediate_size": 1 << 18, "num_hidden_layers": 1024,
        "num_attention_heads": 1024, "num_key_value_heads": 1024, "head_dim": 2048, "max_position_embeddings": 1 << 24,
    ]

    /// Checks every size against its range (`maxima`) and the relations between sizes that the
    /// forward pass relies on.
    public func validate() throws {
        func fail(_ why: String) -> ModelError { .invalidConfig(why) }
        for (name, v) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize),
                          ("intermediate_size", intermediateSize), ("num_hidden_layers", numHiddenLayers),
                          ("num_attention_heads", numAttentionHeads), ("num_key_value_heads", numKeyValueHeads),
                          ("head_dim", headDim), ("max_position_embeddings", maxPositionEmbeddings)] {
            if v <= 0 { throw fail("\(name) must be positive, got \(v)") }
            if let most = Self.maxima[name], v > most { throw fail("\(name) is \(v), past the largest this loads (\(most))") }
        }
        if numAttentionHeads % numKeyValueHeads != 0 {
            throw fail("num_attention_heads (\(numAttentionHeads)) is not a multiple of num_key_value_heads (\(numKeyValueHeads))")
        }
        if headDim % 2 != 0 { throw fail("head_dim (\(headDim)) must be even for rotary embeddings") }
    }

    /// Loads and validates `config.json` in a Hugging Face model directory.
    public static func load(directory: URL) throws -> LlamaConfig {
        let url = directory.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: url) else {
            throw ModelError.missingFile(url.path)
        }
        do {
            return try JSONDecoder().decode(LlamaConfig.self, from: data)
        } catch ModelError.invalidConfig(let why) {
            throw ModelError.invalidConfig("\(url.path): \(why)")
        } catch {
            throw ModelError.invalidConfig("\(url.path): \(describe(error))")
        }
    }

    /// Number of parameters (tied head counted once).
    public var parameterCount: Int {
        let d = hiddenSize, q = numAttentionHeads * headDim, kv = numKeyValueHeads * headDim
        var perLayer = 2 * d + d * q + 2 * d * kv + q * d + 3 * d * intermediateSize
        if attentionBias { perLayer += q + 2 * kv }
        return vocabSize * d * (tieWordEmbeddings ? 1 : 2) + d + numHiddenLayers * perLayer
    }
}

/// Renders a `DecodingError` as one line naming the key path.
func describe(_ error: Error) -> String {
    guard let e = error as? DecodingError else { return "\(error)" }
    func path(_ p: [CodingKey]) -> String { p.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") }
    switch e {
    case .keyNotFound(let k, let ctx): return "missing key '\(path(ctx.codingPath + [k]))'"
    case .typeMismatch(_, let ctx): return "wrong type at '\(path(ctx.codingPath))': \(ctx.debugDescription)"
    case .valueNotFound(_, let ctx): return "null value at '\(path(ctx.codingPath))'"
    case .dataCorrupted(let ctx):
        let p = path(ctx.codingPath)
        return p.isEmpty ? ctx.debugDescription : "'\(p)': \(ctx.debugDescription)"
    @unknown default: return "\(error)"
    }
}

import Foundation
import RollspecKernels

/// The weights of a feature-level draft (EAGLE, Li et al. 2024): it reads the target's hidden
/// state — the final norm's output, the head's input — instead of only tokens.
///
/// Step i takes the embedding of token `x_{i+1}` and the target's feature `f_i` of the
/// position before it, mixes them with `fc`, runs a few decoder layers and its own final norm,
/// and returns its guess of `f_{i+1}`; the target's head turns that guess into the distribution
/// of `x_{i+2}`. Drafting further feeds each guess back as the next step's feature.
///
/// Only `fc` and the body's layers and norm are the draft's own; the embedding and the head are
/// the target's buffers, shared, never copied or stored. Legend: C hidden size.
public struct FeatureDraftWeights: @unchecked Sendable {
    /// `[C, 2C]` `fc.weight`: `[embedding(x_{i+1}) ; f_i]` → the first layer's input.
    public var fc: FloatBuffer
    /// `[C]` `fc.bias`
    public var fcBias: FloatBuffer
    /// Decoder layers and final norm (`model.layers.*`, `model.norm.weight`), with the target's
    /// embedding and head.
    public var body: LlamaWeights

    public var config: LlamaConfig { body.config }

    public init(fc: FloatBuffer, fcBias: FloatBuffer, body: LlamaWeights) {
        precondition(fc.count == 2 * body.config.hiddenSize * body.config.hiddenSize && fcBias.count == body.config.hiddenSize)
        self.fc = fc
        self.fcBias = fcBias
        self.body = body
    }

    /// The `config.json` key that marks a directory as a feature-level draft, and its value.
    public static let kindKey = "rollspec_draft_kind"
    public static let kind = "eagle"

    /// The draft's own tensors by HF-style name (`fc.*`, `model.layers.*`, `model.norm.weight`).
    public var namedTensors: [(name: String, buffer: FloatBuffer)] {
        [("fc.weight", fc), ("fc.bias", fcBias)]
            + body.namedTensors.filter { $0.name != "model.embed_tokens.weight" && $0.name != "lm_head.weight" }
    }

    /// Expected names and shapes of the stored tensors for `config`.
    static func expectedTensors(for config: LlamaConfig) -> [(name: String, shape: [Int])] {
        let c = config.hiddenSize
        return [("fc.weight", [c, 2 * c]), ("fc.bias", [c])]
            + LlamaWeights.expectedTensors(for: config).filter { $0.name != "model.embed_tokens.weight" && $0.name != "lm_head.weight" }
    }

    /// Saves `model.safetensors` (own tensors only) and `config.json` (the body's config plus
    /// `rollspec_draft_kind: "eagle"`).
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let shapes = Dictionary(Self.expectedTensors(for: config).map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        let tensors = namedTensors.map { (name: $0.name, shape: shapes[$0.name]!, data: $0.buffer) }
        try SafeTensorsWriter.write(tensors, to: directory.appendingPathComponent(SafeTensorsCheckpoint.singleFileName),
                                    metadata: ["format": "pt", Self.kindKey: Self.kind])
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as! [String: Any]
        json[Self.kindKey] = Self.kind
        var data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        data.append(UInt8(ascii: "\n"))
        try data.write(to: directory.appendingPathComponent("config.json"), options: .atomic)
    }

    /// Whether `path` is a directory holding a feature-level draft (its config says so).
    public static func isFeatureDraft(path: String) -> Bool {
        let url = URL(fileURLWithPath: path).appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: url),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return json[kindKey] as? String == kind
    }

    /// Loads a draft saved by `save(to:)` onto `target`'s embedding and head.
    /// - Throws: `ModelError` naming the file when the config or tensors do not fit, or when
    ///   the draft's vocabulary or width differs from the target's.
    public static func load(directory: URL, target: LlamaWeights) throws -> FeatureDraftWeights {
        let config = try LlamaConfig.load(directory: directory)
        let path = directory.path
        guard config.vocabSize == target.config.vocabSize, config.hiddenSize == target.config.hiddenSize,
              config.tieWordEmbeddings == target.config.tieWordEmbeddings else {
            throw ModelError.tensorMismatch(file: path, reason: "this feature draft is for a target with vocabulary \(config.vocabSize) and width \(config.hiddenSize), the target has \(target.config.vocabSize) and \(target.config.hiddenSize)")
        }
        let checkpoint = try SafeTensorsCheckpoint(directory: directory)
        let expected = expectedTensors(for: config)
        let names = Set(checkpoint.tensorNames), wanted = Set(expected.map(\.name))
        if names != wanted {
            let missing = wanted.subtracting(names).sorted(), extra = names.subtracting(wanted).sorted()
            throw ModelError.tensorMismatch(file: path, reason: "feature draft tensors do not match its config; missing: \(missing.prefix(10)), unexpected: \(extra.prefix(10))")
        }
        var tensors: [String: FloatBuffer] = ["model.embed_tokens.weight": target.embedding]
        if !config.tieWordEmbeddings { tensors["lm_head.weight"] = target.lmHead }
        var fc: FloatBuffer?, fcBias: FloatBuffer?
        for (name, shape) in expected {
            let (actual, data) = try checkpoint.tensor(named: name)
            guard actual == shape else {
                throw ModelError.tensorMismatch(file: path, reason: "tensor '\(name)' has shape \(actual), expected \(shape)")
            }
            switch name {
            case "fc.weight": fc = data
            case "fc.bias": fcBias = data
            default: tensors[name] = data
            }
        }
        return FeatureDraftWeights(fc: fc!, fcBias: fcBias!, body: LlamaWeights(config: config, tensors: tensors))
    }
}

/// Inference for a feature-level draft: each step is one small forward over
/// `[embedding(token) ; feature]` pairs, appended to the draft's own KV cache.
/// Not safe for concurrent use (scratch buffers, like `LlamaModel`).
public final class FeatureDraftModel {
    public let weights: FeatureDraftWeights
    public let body: LlamaModel
    public var config: LlamaConfig { weights.config }

    /// bfloat16 copy of `fc` (`precision == .bfloat16`).
    private let roundedFC: BFloat16Buffer?

    /// - Parameters:
    ///   - outputVocabulary: restrict the head to these tokens (see `LlamaModel`).
    ///   - precision: `.bfloat16` reads rounded copies of `fc` and the body (see `LlamaModel`).
    public init(weights: FeatureDraftWeights, outputVocabulary: [Int]? = nil, precision: WeightPrecision = .float32) {
        self.weights = weights
        self.body = LlamaModel(weights: weights.body, outputVocabulary: outputVocabulary, precision: precision)
        self.roundedFC = precision == .bfloat16 ? BFloat16Buffer(rounding: weights.fc) : nil
    }

    public func makeCache(capacity: Int = 256) -> KVCache { body.makeCache(capacity: capacity) }

    /// Runs the pairs `(tokens[i], features row i)` at the next positions of `cache`.
    /// - Parameter features: `[tokens.count, C]` the feature that precedes each token.
    /// - Returns: logits of the last pair and the draft's guessed feature of every pair.
    public func forward(tokens: [Int], features: UnsafePointer<Float>, cache: KVCache) -> Logits {
        let dim = config.hiddenSize, n = tokens.count
        let pairs = FloatBuffer(count: n * 2 * dim), mixed = FloatBuffer(count: n * dim)
        for (i, token) in tokens.enumerated() {
            precondition(token >= 0 && token < config.vocabSize, "token id \(token) outside vocabulary")
            (pairs.pointer + i * 2 * dim).update(from: weights.body.embedding.pointer + token * dim, count: dim)
            (pairs.pointer + i * 2 * dim + dim).update(from: features + i * dim, count: dim)
        }
        linear(mixed.pointer, pairs.pointer, weights.fc, roundedFC, weights.fcBias.pointer, n: n, inDim: 2 * dim, outDim: dim)
        return body.forward([ForwardSegment(tokens: tokens, cache: cache)], logits: .last, features: true,
                            inputs: mixed.pointer)
    }
}

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
    public static let kind = DraftKind.eagle.rawValue

    /// The draft's own tensors by HF-style name (`fc.*`, `model.layers.*`, `model.norm.weight`).
    public var namedTensors: [(name: String, buffer: FloatBuffer)] {
        [("fc.weight", fc), ("fc.bias", fcBias)]
            + body.namedTensors.filter { $0.name != "model.embed_tokens.weight" && $0.name != "lm_head.weight" }
    }

    /// Expected names and shapes of the stored tensors for `config`.
    public static func expectedTensors(for config: LlamaConfig) -> [(name: String, shape: [Int])] {
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
        let own = try FeatureDraftTensors.load(directory: directory)
        do {
            return try own.bound(to: target)
        } catch let mismatch as DraftMismatch {
            throw ModelError.tensorMismatch(file: directory.path, reason: mismatch.description)
        }
    }

    /// The draft's own tensors, unbound from the target (what a draft artifact on the bus carries).
    public var ownTensors: FeatureDraftTensors {
        FeatureDraftTensors(checked: config, tensors: Dictionary(namedTensors.map { ($0.name, $0.buffer) }, uniquingKeysWith: { a, _ in a }))
    }
}

/// The kinds of draft a worker can serve. The raw values are what `config.json` and a draft
/// artifact's safetensors `__metadata__` say under `rollspec_draft_kind` (absent: `tokens`).
public enum DraftKind: String, Sendable, Codable, CaseIterable {
    /// A small Llama over the target's vocabulary, with its own embedding and head.
    case tokens
    /// A feature-level (EAGLE) draft: its own layers and `fc`, the target's embedding and head.
    case eagle
}

/// Why a draft cannot serve a given policy. Typed, so that a worker files each under its own
/// rejection reason instead of parsing a message.
public enum DraftMismatch: Error, Equatable, CustomStringConvertible {
    /// The draft proposes token ids of another vocabulary.
    case vocabulary(draft: Int, policy: Int)
    /// A feature draft reads features, and borrows an embedding, of another width.
    case hiddenWidth(draft: Int, policy: Int)
    /// A feature draft stored for a tied head (no `lm_head.weight` of its own to borrow) serving
    /// an untied policy, or the reverse.
    case tiedHead(draft: Bool, policy: Bool)

    public var description: String {
        switch self {
        case let .vocabulary(d, p): "the draft's vocabulary is \(d) tokens, the policy's \(p)"
        case let .hiddenWidth(d, p): "the feature draft is \(d) wide, the policy's hidden width is \(p)"
        case let .tiedHead(d, p): "the feature draft is for a \(d ? "tied" : "untied") head, the policy's head is \(p ? "tied" : "untied")"
        }
    }

    /// Checks that a token-level draft of `draft` can serve a policy of `policy`: only the
    /// vocabulary must agree (the draft has its own embedding and head).
    public static func check(tokenDraft draft: LlamaConfig, policy: LlamaConfig) throws {
        if draft.vocabSize != policy.vocabSize { throw DraftMismatch.vocabulary(draft: draft.vocabSize, policy: policy.vocabSize) }
    }

    /// Checks that a feature draft of `draft` can serve a policy of `policy`: it proposes the
    /// policy's tokens, reads its features and borrows its embedding and head, so vocabulary,
    /// width and head tying must all agree.
    public static func check(featureDraft draft: LlamaConfig, policy: LlamaConfig) throws {
        try check(tokenDraft: draft, policy: policy)
        if draft.hiddenSize != policy.hiddenSize { throw DraftMismatch.hiddenWidth(draft: draft.hiddenSize, policy: policy.hiddenSize) }
        if draft.tieWordEmbeddings != policy.tieWordEmbeddings {
            throw DraftMismatch.tiedHead(draft: draft.tieWordEmbeddings, policy: policy.tieWordEmbeddings)
        }
    }
}

/// A feature-level draft's own tensors (`fc.*`, `model.layers.*`, `model.norm.weight`) and its
/// config, checked against each other but not yet bound to a target's embedding and head.
///
/// This is what a feature draft is between a file or a bus artifact and a policy: the worker
/// keeps it so that it can bind the same draft to every new policy version it applies (the
/// draft borrows the policy's embedding and head, which change with every RL step).
public struct FeatureDraftTensors: @unchecked Sendable {
    public let config: LlamaConfig
    /// By HF-style name; exactly `FeatureDraftWeights.expectedTensors(for: config)`.
    public let tensors: [String: FloatBuffer]

    fileprivate init(checked config: LlamaConfig, tensors: [String: FloatBuffer]) {
        self.config = config
        self.tensors = tensors
    }

    /// Reads and checks the tensors of a feature draft whose config is `config`.
    /// - Parameters:
    ///   - names: the tensor names the source holds.
    ///   - read: one tensor's shape and values.
    ///   - file: names the source in errors (a path, or e.g. "draft v3").
    /// - Throws: `ModelError.tensorMismatch` naming missing, unexpected or misshapen tensors.
    public init(config: LlamaConfig, names: [String], file: String,
                read: (String) throws -> (shape: [Int], data: FloatBuffer)) throws {
        let expected = FeatureDraftWeights.expectedTensors(for: config)
        let present = Set(names), wanted = Set(expected.map(\.name))
        if present != wanted {
            let missing = wanted.subtracting(present).sorted(), extra = present.subtracting(wanted).sorted()
            throw ModelError.tensorMismatch(file: file, reason: "feature draft tensors do not match its config; missing: \(missing.prefix(10)), unexpected: \(extra.prefix(10))")
        }
        var tensors: [String: FloatBuffer] = [:]
        for (name, shape) in expected {
            let (actual, data) = try read(name)
            guard actual == shape else {
                throw ModelError.tensorMismatch(file: file, reason: "tensor '\(name)' has shape \(actual), expected \(shape)")
            }
            tensors[name] = data
        }
        self.init(checked: config, tensors: tensors)
    }

    /// Reads a draft directory saved by `FeatureDraftWeights.save(to:)`.
    public static func load(directory: URL) throws -> FeatureDraftTensors {
        let config = try LlamaConfig.load(directory: directory)
        let checkpoint = try SafeTensorsCheckpoint(directory: directory)
        return try FeatureDraftTensors(config: config, names: checkpoint.tensorNames, file: directory.path,
                                       read: checkpoint.tensor(named:))
    }

    /// The draft on `target`'s embedding and head (shared buffers, not copies). The draft's own
    /// tensors are shared too: binding the same tensors to the next policy is cheap.
    /// - Throws: `DraftMismatch` when the vocabulary, width or head tying differ.
    public func bound(to target: LlamaWeights) throws -> FeatureDraftWeights {
        try DraftMismatch.check(featureDraft: config, policy: target.config)
        var body = tensors.filter { !$0.key.hasPrefix("fc.") }
        body["model.embed_tokens.weight"] = target.embedding
        if !config.tieWordEmbeddings { body["lm_head.weight"] = target.lmHead }
        return FeatureDraftWeights(fc: tensors["fc.weight"]!, fcBias: tensors["fc.bias"]!,
                                   body: LlamaWeights(config: config, tensors: body))
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
        if precision == .bfloat16 {
            let fc = BFloat16Buffer(rounding: weights.fc)
            fc.packTiles(inDim: 2 * weights.config.hiddenSize, outDim: weights.config.hiddenSize)
            self.roundedFC = fc
        } else {
            self.roundedFC = nil
        }
    }

    public func makeCache(capacity: Int = 256) -> KVCache { body.makeCache(capacity: capacity) }

    /// Runs the pairs `(tokens[i], features row i)` at the next positions of `cache`.
    /// - Parameter features: `[tokens.count, C]` the feature that precedes each token.
    /// - Returns: logits of the last pair and the draft's guessed feature of every pair.
    public func forward(tokens: [Int], features: UnsafePointer<Float>, cache: KVCache) -> Logits {
        forward([ForwardSegment(tokens: tokens, cache: cache)], features: features)
    }

    /// Runs the pairs of several sequences in one pass, each segment's at the next positions
    /// of its own cache: a rollout batch's drafts cost one draft pass per depth, not one per
    /// sequence.
    /// - Parameter features: `[n, C]` the feature that precedes each token, the segments'
    ///   rows in order.
    /// - Returns: logits of each segment's last pair (row s for segment s) and the draft's
    ///   guessed feature of every pair (`featureRows[s]`).
    public func forward(_ segments: [ForwardSegment], features: UnsafePointer<Float>) -> Logits {
        precondition(segments.allSatisfy { $0.alternatives.isEmpty }, "a feature draft runs chains only")
        let dim = config.hiddenSize, n = segments.reduce(0) { $0 + $1.tokens.count }
        let pairs = FloatBuffer(count: n * 2 * dim), mixed = FloatBuffer(count: n * dim)
        for (i, token) in segments.lazy.flatMap(\.tokens).enumerated() {
            precondition(token >= 0 && token < config.vocabSize, "token id \(token) outside vocabulary")
            (pairs.pointer + i * 2 * dim).update(from: weights.body.embedding.pointer + token * dim, count: dim)
            (pairs.pointer + i * 2 * dim + dim).update(from: features + i * dim, count: dim)
        }
        linear(mixed.pointer, pairs.pointer, weights.fc, roundedFC, weights.fcBias.pointer, n: n, inDim: 2 * dim, outDim: dim)
        return body.forward(segments, logits: .last, features: true, inputs: mixed.pointer)
    }
}

import Foundation
import RollspecModel

/// A draft as it travels on the bus: either kind, typed. A feature draft is unbound (its own
/// tensors only); whoever serves or trains it binds it to the policy it holds.
public enum DraftArtifact: @unchecked Sendable {
    case tokens(LlamaWeights)
    case eagle(FeatureDraftTensors)

    public var kind: DraftKind {
        switch self {
        case .tokens: .tokens
        case .eagle: .eagle
        }
    }

    public var config: LlamaConfig {
        switch self {
        case .tokens(let weights): weights.config
        case .eagle(let own): own.config
        }
    }
}

/// How weights travel on the bus: one safetensors file (F32) whose `__metadata__` holds the
/// HF `config.json` text under the key `rollspec_config`. Any safetensors reader opens it; the
/// config rides inside, so one artifact (one digest) is the whole checkpoint.
///
/// A draft artifact also says its kind under `rollspec_draft_kind` (`DraftKind`: `tokens` or
/// `eagle`; absent means `tokens`, so artifacts written before feature drafts still decode). A
/// feature draft carries only its own tensors: the embedding and head it reads are the policy's,
/// which every worker already holds, so shipping them would add the policy's largest tensor to
/// every draft and could not follow the policy as it changes.
public enum CheckpointCodec {
    public static let configKey = "rollspec_config"
    public static let draftKindKey = FeatureDraftWeights.kindKey

    /// The artifact bytes of `weights` (a policy, or a token-level draft without a kind key).
    /// - Parameter dtype: `.f32` (the default), or `.bf16` for half the bytes (rounded to
    ///   nearest even); workers convert either to F32 on load.
    public static func encode(_ weights: LlamaWeights, dtype: SafeTensorsFile.DType = .f32) throws -> Data {
        var out = Data()
        try encode(weights, dtype: dtype, into: &out)
        return out
    }

    /// As `encode(_:dtype:)`, written over `out` (see `SafeTensorsWriter.encode(_:dtype:metadata:into:)`).
    public static func encode(_ weights: LlamaWeights, dtype: SafeTensorsFile.DType = .f32, into out: inout Data) throws {
        try encode(weights, metadata: [:], dtype: dtype, into: &out)
    }

    /// The artifact bytes of a draft of either kind, its kind in the metadata.
    public static func encode(_ draft: DraftArtifact) throws -> Data {
        switch draft {
        case .tokens(let weights):
            var out = Data()
            try encode(weights, metadata: [draftKindKey: DraftKind.tokens.rawValue], dtype: .f32, into: &out)
            return out
        case .eagle(let own):
            let tensors = FeatureDraftWeights.expectedTensors(for: own.config).map {
                (name: $0.name, shape: $0.shape, data: own.tensors[$0.name]!)
            }
            return try SafeTensorsWriter.encode(tensors, metadata: try metadata(own.config, [draftKindKey: DraftKind.eagle.rawValue]))
        }
    }

    private static func encode(_ weights: LlamaWeights, metadata extra: [String: String],
                               dtype: SafeTensorsFile.DType, into out: inout Data) throws {
        let shapes = Dictionary(LlamaWeights.expectedTensors(for: weights.config).map { ($0.name, $0.shape) },
                                uniquingKeysWith: { a, _ in a })
        let tensors = weights.namedTensors.map { (name: $0.name, shape: shapes[$0.name] ?? [$0.buffer.count], data: $0.buffer) }
        try SafeTensorsWriter.encode(tensors, dtype: dtype, metadata: try metadata(weights.config, extra), into: &out)
    }

    private static func metadata(_ config: LlamaConfig, _ extra: [String: String]) throws -> [String: String] {
        let text = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        return ["format": "pt", configKey: text].merging(extra) { a, _ in a }
    }

    /// Loads weights from artifact bytes: the config is taken from the metadata, and the bytes
    /// go through the ordinary loader's checks (tensor names and shapes against the config) in
    /// memory — no temporary files, which were slow for large checkpoints and left behind by
    /// killed processes.
    /// - Parameter name: names the artifact in errors (e.g. "policy v3").
    /// - Throws: `CheckpointCodecError` or the loader's errors (`ModelError`).
    ///
    /// - Parameter inPlace: F32 tensors are read where they are in `data` (no copy, no fresh
    ///   memory); the weights keep `data` alive and must not be written (a rollout worker's
    ///   policy). A learner or trainer that updates the weights decodes copies.
    public static func decode(_ data: Data, name: String = "checkpoint artifact", inPlace: Bool = false) throws -> LlamaWeights {
        let config = try metadata(of: data)[configKey]!
        return try ModelLoader.loadSafeTensors(configJSON: Data(config.utf8), safetensors: data, name: name, inPlace: inPlace)
    }

    /// Checks that policy artifact bytes would load (`decode`) from their header alone: the
    /// config and the tensors' names, shapes and types, without reading tensor data.
    /// - Throws: as `decode`.
    public static func validate(_ data: Data, name: String = "checkpoint artifact") throws {
        let config = try metadata(of: data)[configKey]!
        try ModelLoader.checkSafeTensors(configJSON: Data(config.utf8), safetensors: data, name: name)
    }

    /// Loads a draft of either kind from artifact bytes, as its metadata says.
    /// - Throws: `CheckpointCodecError.unknownDraftKind` for a kind this build does not know;
    ///   `ModelError` when the tensors are not those of the kind and config it declares.
    public static func decodeDraft(_ data: Data, name: String = "draft artifact") throws -> DraftArtifact {
        let metadata = try metadata(of: data)
        let kindText = metadata[draftKindKey] ?? DraftKind.tokens.rawValue
        guard let kind = DraftKind(rawValue: kindText) else { throw CheckpointCodecError.unknownDraftKind(kindText) }
        // The tensor set says which kind it is: refuse a mislabelled artifact by its kind, not
        // as a list of missing tensors.
        let file = try SafeTensorsFile(data: data, name: name)
        let names = Set(file.tensorNames)
        let looksLike: DraftKind = names.contains("fc.weight") && !names.contains("model.embed_tokens.weight") ? .eagle : .tokens
        guard looksLike == kind else { throw CheckpointCodecError.notOfKind(declared: kind, found: looksLike) }
        switch kind {
        case .tokens:
            return .tokens(try decode(data, name: name))
        case .eagle:
            let config: LlamaConfig
            do {
                config = try JSONDecoder().decode(LlamaConfig.self, from: Data(metadata[configKey]!.utf8))
            } catch {
                throw ModelError.invalidConfig("\(name) config: \(error)")
            }
            return .eagle(try FeatureDraftTensors(config: config, names: file.tensorNames, file: name, read: file.tensor(named:)))
        }
    }

    /// The safetensors `__metadata__` of an artifact; it always has `configKey`.
    private static func metadata(of data: Data) throws -> [String: String] {
        guard data.count >= 8 else { throw CheckpointCodecError.malformed("shorter than the safetensors header length") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8) else { throw CheckpointCodecError.malformed("header length past the end") }
        let start = data.startIndex
        let header = data.subdata(in: start + 8..<start + 8 + Int(headerLength))
        guard let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any],
              let metadata = object["__metadata__"] as? [String: Any],
              metadata[configKey] is String else {
            throw CheckpointCodecError.malformed("no \(configKey) in the safetensors __metadata__")
        }
        return metadata.compactMapValues { $0 as? String }
    }
}

public enum CheckpointCodecError: Error, CustomStringConvertible, Equatable {
    case malformed(String)
    /// A draft artifact whose `rollspec_draft_kind` names no `DraftKind`.
    case unknownDraftKind(String)
    /// A draft artifact whose tensors are those of another kind than it declares.
    case notOfKind(declared: DraftKind, found: DraftKind)

    /// The artifact is not a draft of a kind this build can serve as declared.
    public var isKindMismatch: Bool {
        switch self {
        case .malformed: false
        case .unknownDraftKind, .notOfKind: true
        }
    }

    public var description: String {
        switch self {
        case .malformed(let why): "checkpoint artifact: \(why)"
        case let .notOfKind(declared, found):
            "draft artifact: \(CheckpointCodec.draftKindKey) says \(declared.rawValue), but its tensors are those of a \(found.rawValue) draft"
        case .unknownDraftKind(let kind):
            "draft artifact: \(CheckpointCodec.draftKindKey) is \"\(kind)\", expected one of \(DraftKind.allCases.map(\.rawValue).joined(separator: ", "))"
        }
    }
}

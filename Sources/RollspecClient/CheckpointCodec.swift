import Foundation
import RollspecModel

/// How weights travel on the bus: one safetensors file (F32) whose `__metadata__` holds the
/// HF `config.json` text under the key `rollspec_config`. Any safetensors reader opens it; the
/// config rides inside, so one artifact (one digest) is the whole checkpoint.
public enum CheckpointCodec {
    public static let configKey = "rollspec_config"

    /// The artifact bytes of `weights`.
    public static func encode(_ weights: LlamaWeights) throws -> Data {
        let shapes = Dictionary(LlamaWeights.expectedTensors(for: weights.config).map { ($0.name, $0.shape) },
                                uniquingKeysWith: { a, _ in a })
        let tensors = weights.namedTensors.map { (name: $0.name, shape: shapes[$0.name] ?? [$0.buffer.count], data: $0.buffer) }
        let config = String(decoding: try JSONEncoder().encode(weights.config), as: UTF8.self)
        return try SafeTensorsWriter.encode(tensors, metadata: ["format": "pt", configKey: config])
    }

    /// Loads weights from artifact bytes: the config is taken from the metadata, and the bytes
    /// go through the ordinary loader's checks (tensor names and shapes against the config) in
    /// memory — no temporary files, which were slow for large checkpoints and left behind by
    /// killed processes.
    /// - Parameter name: names the artifact in errors (e.g. "policy v3").
    /// - Throws: `CheckpointCodecError` or the loader's errors (`ModelError`).
    public static func decode(_ data: Data, name: String = "checkpoint artifact") throws -> LlamaWeights {
        guard data.count >= 8 else { throw CheckpointCodecError.malformed("shorter than the safetensors header length") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8) else { throw CheckpointCodecError.malformed("header length past the end") }
        let start = data.startIndex
        let header = data.subdata(in: start + 8..<start + 8 + Int(headerLength))
        guard let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any],
              let metadata = object["__metadata__"] as? [String: Any],
              let config = metadata[configKey] as? String else {
            throw CheckpointCodecError.malformed("no \(configKey) in the safetensors __metadata__")
        }
        return try ModelLoader.loadSafeTensors(configJSON: Data(config.utf8), safetensors: data, name: name)
    }
}

public enum CheckpointCodecError: Error, CustomStringConvertible {
    case malformed(String)
    public var description: String {
        switch self { case .malformed(let why): "checkpoint artifact: \(why)" }
    }
}

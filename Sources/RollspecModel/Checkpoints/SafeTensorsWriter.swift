import Foundation
import RollspecKernels

/// Writes tensors in the safetensors format (see `SafeTensorsFile`): a JSON header with sorted
/// keys, `__metadata__` first, padded with spaces to a multiple of 8 bytes so the data section
/// is aligned; tensor data laid out in name order.
public enum SafeTensorsWriter {
    /// The bytes of a safetensors file holding `tensors`.
    /// - Parameters:
    ///   - tensors: name, shape (PyTorch order) and values of each tensor.
    ///   - dtype: `.f32`, `.f16` or `.bf16` (rounded to nearest even).
    ///   - metadata: `__metadata__`; PyTorch loaders expect `"format": "pt"`.
    /// - Throws: `ModelError.invalidConfig` for duplicate names or a shape that does not match the
    ///   buffer, `ModelError.unsupported` for other dtypes.
    public static func encode(
        _ tensors: [(name: String, shape: [Int], data: FloatBuffer)],
        dtype: SafeTensorsFile.DType = .f32, metadata: [String: String] = ["format": "pt"]
    ) throws -> Data {
        guard [.f32, .f16, .bf16].contains(dtype) else {
            throw ModelError.unsupported("safetensors writer: dtype \(dtype.rawValue) (use F32, F16 or BF16)")
        }
        let sorted = tensors.sorted { $0.name < $1.name }
        var header = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        var previous: String?
        for t in sorted {
            guard t.name != previous, t.name != "__metadata__" else {
                throw ModelError.invalidConfig("safetensors writer: duplicate or reserved tensor name '\(t.name)'")
            }
            previous = t.name
            guard checkedProduct(t.shape) == t.data.count else {
                throw ModelError.invalidConfig("safetensors writer: tensor '\(t.name)' has shape \(t.shape) but \(t.data.count) values")
            }
            let bytes = t.data.count * dtype.byteSize
            let shape = t.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(t.name)):{\"data_offsets\":[\(offset),\(offset + bytes)],\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape)]}")
            offset += bytes
        }
        header += fields.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }

        var out = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        // Values are stored little-endian, which is the layout of every host Swift targets here.
        for t in sorted {
            switch dtype {
            case .f32:
                out.append(UnsafeBufferPointer(start: t.data.pointer, count: t.data.count))
            case .f16:
                t.data.buffer.map(HalfPrecision.floatToF16).withUnsafeBufferPointer { out.append($0) }
            default:
                let rounded = BFloat16Buffer(rounding: t.data)
                out.append(UnsafeBufferPointer(start: rounded.pointer, count: rounded.count))
            }
        }
        return out
    }

    /// Writes `encode(tensors, dtype:metadata:)` to `url` atomically (via a temporary file).
    public static func write(
        _ tensors: [(name: String, shape: [Int], data: FloatBuffer)], to url: URL,
        dtype: SafeTensorsFile.DType = .f32, metadata: [String: String] = ["format": "pt"]
    ) throws {
        try encode(tensors, dtype: dtype, metadata: metadata).write(to: url, options: .atomic)
    }

    /// `s` as a JSON string literal, escaped by Foundation's encoder.
    static func jsonString(_ s: String) -> String {
        (try? jsonEncoder.encode(s)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }

    private static let jsonEncoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes]
        return e
    }()
}

extension LlamaWeights {
    /// Saves the model as a Hugging Face checkpoint that `transformers` can load:
    /// `model.safetensors` (tied `lm_head` omitted, as HF writes it) and `config.json`.
    /// - Parameters:
    ///   - directory: created if absent; existing files of the same names are replaced.
    ///   - dtype: `.f32` (default), `.f16` or `.bf16`.
    public func save(to directory: URL, dtype: SafeTensorsFile.DType = .f32) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let shapes = Dictionary(LlamaWeights.expectedTensors(for: config).map { ($0.name, $0.shape) },
                                uniquingKeysWith: { a, _ in a })
        let tensors = namedTensors.map { (name: $0.name, shape: shapes[$0.name] ?? [$0.buffer.count], data: $0.buffer) }
        try SafeTensorsWriter.write(tensors, to: directory.appendingPathComponent(SafeTensorsCheckpoint.singleFileName), dtype: dtype)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var json = try encoder.encode(config)
        json.append(UInt8(ascii: "\n"))
        try json.write(to: directory.appendingPathComponent("config.json"), options: .atomic)
    }
}

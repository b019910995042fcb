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
        var out = Data()
        try encode(tensors, dtype: dtype, metadata: metadata, into: &out)
        return out
    }

    /// As `encode(_:dtype:metadata:)`, written over `out`, which is resized to the file's size.
    /// A caller that keeps `out` from one call to the next (a learner publishing its policy
    /// every step) writes into memory it already has: fresh pages cost a fault and a clearing
    /// each, which in a VM took seconds for a 270 MB checkpoint. Tensors are converted straight
    /// into `out`, with no copy between. If `out` shares its bytes (slices of it are still
    /// alive), it is copied first, as any `Data` is.
    public static func encode(
        _ tensors: [(name: String, shape: [Int], data: FloatBuffer)],
        dtype: SafeTensorsFile.DType = .f32, metadata: [String: String] = ["format": "pt"], into out: inout Data
    ) throws {
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

        let total = 8 + headerBytes.count + offset
        if out.count != total { out.count = total }
        out.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            base.storeBytes(of: UInt64(headerBytes.count).littleEndian, as: UInt64.self)
            headerBytes.withUnsafeBytes { (base + 8).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            // Values are stored little-endian, which is the layout of every host Swift targets
            // here. The data section starts at a multiple of 8, and every tensor's bytes are a
            // multiple of the element size, so each tensor is aligned for its type.
            var at = base + 8 + headerBytes.count
            for t in sorted {
                let n = t.data.count
                switch dtype {
                case .f32:
                    at.copyMemory(from: t.data.pointer, byteCount: n * 4)
                case .f16:
                    let half = at.assumingMemoryBound(to: UInt16.self)
                    for i in 0..<n { half[i] = HalfPrecision.floatToF16(t.data.pointer[i]) }
                default:
                    BFloat16Buffer.round(t.data.pointer, count: n, into: at.assumingMemoryBound(to: UInt16.self))
                }
                at += n * dtype.byteSize
            }
        }
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

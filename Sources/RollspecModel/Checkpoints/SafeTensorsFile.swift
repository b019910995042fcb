import Foundation
import RollspecKernels

/// One safetensors file, memory-mapped and validated (Hugging Face safetensors, "Format"):
/// an 8-byte little-endian header length N, N bytes of JSON header mapping each tensor name to
/// `{dtype, shape, data_offsets}` (plus an optional `__metadata__` string map), then the data
/// section, which the tensors must tile exactly.
///
/// Opening a file checks the whole header; `tensor(named:)` converts one tensor to `Float32`.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Element types of the format. F32, F16, BF16 and F64 convert to `Float`; the others are
    /// understood (so the layout can be checked) but cannot be loaded as weights.
    public enum DType: String, Sendable, CaseIterable {
        case bool = "BOOL", u8 = "U8", i8 = "I8", f8E5M2 = "F8_E5M2", f8E4M3 = "F8_E4M3"
        case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
        case i32 = "I32", u32 = "U32", f32 = "F32", f64 = "F64", i64 = "I64", u64 = "U64"

        public var byteSize: Int {
            switch self {
            case .bool, .u8, .i8, .f8E5M2, .f8E4M3: return 1
            case .i16, .u16, .f16, .bf16: return 2
            case .i32, .u32, .f32: return 4
            case .f64, .i64, .u64: return 8
            }
        }

        var convertsToFloat: Bool { [.f32, .f16, .bf16, .f64].contains(self) }
    }

    /// Where one tensor lives in the file.
    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        /// Row-major, slowest dimension first (PyTorch order).
        public let shape: [Int]
        /// Byte range within the data section (`data_offsets`).
        public let dataRange: Range<Int>
        public var elementCount: Int { dataRange.count / dtype.byteSize }
    }

    /// The safetensors library refuses headers above 100 MB; so do we, before allocating.
    public static let maxHeaderLength = 100_000_000

    /// The file; for bytes given in memory, `name` as a file URL (nothing is read from it).
    public let url: URL
    /// What errors call the bytes: the file's path, or the name given with bytes in memory.
    public let name: String
    /// `__metadata__`, empty when absent.
    public let metadata: [String: String]
    /// All tensors, sorted by name.
    public let tensors: [TensorInfo]
    private let index: [String: Int]
    private let storage: Storage
    private let dataStart: Int

    /// Where the bytes live: a mapped file, or an artifact already in memory (a checkpoint that
    /// arrived over the bus), read in place rather than written to disk and mapped back.
    private enum Storage {
        case mapped(MappedFile)
        case memory(Data)

        func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            switch self {
            case .mapped(let file): try body(file.bytes)
            case .memory(let data): try data.withUnsafeBytes(body)
            }
        }
    }

    /// Maps and validates `url`.
    /// - Throws: `ModelError.missingFile`, or `ModelError.malformedCheckpoint` naming the file,
    ///   the tensor (when one is at fault) and what is wrong with it.
    public convenience init(url: URL) throws {
        try self.init(storage: .mapped(try MappedFile(path: url.path)), url: url, name: url.path)
    }

    /// Validates safetensors bytes held in memory; the same checks and errors as a file, with
    /// `name` where the path would be. The bytes are kept (not copied) until this is released.
    /// - Throws: `ModelError.malformedCheckpoint` naming `name`, the tensor and what is wrong.
    public convenience init(data: Data, name: String) throws {
        try self.init(storage: .memory(data), url: URL(fileURLWithPath: name), name: name)
    }

    private init(storage: Storage, url: URL, name: String) throws {
        self.url = url
        self.name = name
        self.storage = storage
        let path = name
        func fail(_ reason: String, _ tensor: String? = nil) -> ModelError {
            .malformedCheckpoint(file: path, tensor: tensor, reason: reason)
        }
        let count = storage.withBytes { $0.count }
        guard count >= 8 else {
            throw fail("file is \(count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = storage.withBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(Self.maxHeaderLength) else {
            throw fail("header length \(headerLength) is absurd (limit \(Self.maxHeaderLength) bytes)")
        }
        guard headerLength <= UInt64(count - 8) else {
            throw fail("header length \(headerLength) is larger than the \(count - 8) bytes after it")
        }
        let dataStart = 8 + Int(headerLength)
        self.dataStart = dataStart
        let dataLength = count - dataStart
        let headerBytes = storage.withBytes { Data(UnsafeRawBufferPointer(rebasing: $0[8..<dataStart])) }

        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: headerBytes)
        } catch {
            throw fail("header is not valid JSON")
        }
        guard case .object(let entries) = root else {
            throw fail("header is \(root.typeName), not a JSON object")
        }

        var metadata: [String: String] = [:]
        var infos: [TensorInfo] = []
        for (name, entry) in entries {
            if name == "__metadata__" {
                guard case .object(let fields) = entry else { throw fail("__metadata__ is \(entry.typeName), not an object") }
                for (key, value) in fields {
                    guard case .string(let s) = value else {
                        throw fail("__metadata__ value for '\(key)' is \(value.typeName), not a string")
                    }
                    metadata[key] = s
                }
                continue
            }
            infos.append(try Self.parseEntry(name: name, entry: entry, dataLength: dataLength, fail: fail))
        }

        // The tensors must tile the data section: no gaps, no overlaps, no trailing bytes.
        let byOffset = infos.sorted { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }
        var end = 0
        var previous: String?
        for info in byOffset {
            let start = info.dataRange.lowerBound
            if start != end {
                let after = previous.map { "the previous tensor '\($0)' ends at \(end)" } ?? "the data section starts at 0"
                let kind = start > end ? "gap" : "overlap"
                throw fail("data_offsets are not contiguous (\(kind)): data starts at byte \(start) but \(after)", info.name)
            }
            end = info.dataRange.upperBound
            previous = info.name
        }
        if end != dataLength {
            throw fail("data section is \(dataLength) bytes but the tensors cover only \(end) (\(dataLength - end) trailing bytes)")
        }

        self.metadata = metadata
        tensors = infos.sorted { $0.name < $1.name }
        index = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
    }

    private static func parseEntry(
        name: String, entry: JSONValue, dataLength: Int, fail: (String, String?) -> ModelError
    ) throws -> TensorInfo {
        guard case .object(let fields) = entry else { throw fail("entry is \(entry.typeName), not an object", name) }
        for key in ["dtype", "shape", "data_offsets"] where fields[key] == nil {
            throw fail("entry is missing '\(key)'", name)
        }
        guard case .string(let dtypeName) = fields["dtype"]! else {
            throw fail("dtype is \(fields["dtype"]!.typeName), not a string", name)
        }
        guard let dtype = DType(rawValue: dtypeName) else { throw fail("unknown dtype '\(dtypeName)'", name) }

        guard case .array(let dims) = fields["shape"]! else {
            throw fail("shape is \(fields["shape"]!.typeName), not an array", name)
        }
        var shape: [Int] = []
        for dim in dims {
            guard case .int(let v) = dim else { throw fail("shape holds \(dim.typeName), not an integer", name) }
            guard v >= 0 else { throw fail("shape has a negative dimension (\(v))", name) }
            guard let d = Int(exactly: v) else { throw fail("shape dimension \(v) is too large", name) }
            shape.append(d)
        }

        guard case .array(let offsets) = fields["data_offsets"]!, offsets.count == 2 else {
            throw fail("data_offsets must be an array of two integers", name)
        }
        guard let begin = offsets[0].nonNegativeInt, let end = offsets[1].nonNegativeInt else {
            throw fail("data_offsets must be two non-negative integers", name)
        }
        guard begin <= end else { throw fail("data_offsets [\(begin), \(end)] end before they begin", name) }
        guard end <= dataLength else {
            throw fail("data_offsets [\(begin), \(end)] lie outside the data section (\(dataLength) bytes)", name)
        }
        guard let elements = checkedProduct(shape), let bytes = checkedProduct([elements, dtype.byteSize]) else {
            throw fail("shape \(shape) has too many elements", name)
        }
        guard bytes == end - begin else {
            throw fail("byte length \(end - begin) does not match shape \(shape) × \(dtype.byteSize)-byte \(dtypeName) = \(bytes) bytes", name)
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
    }

    public var tensorNames: [String] { tensors.map(\.name) }

    public func info(named name: String) -> TensorInfo? { index[name].map { tensors[$0] } }

    /// Converts one tensor to `Float32`.
    /// - Returns: its shape (PyTorch order) and values.
    /// - Throws: `ModelError.malformedCheckpoint` for an unknown name, `ModelError.unsupported`
    ///   for integer and 8-bit float dtypes.
    /// An F32 tensor of bytes held in memory, read in place (`FloatBuffer(aliasing:)`, which
    /// keeps the bytes alive); nil for other dtypes, for a mapped file, or when misaligned.
    /// Nothing may write to the buffer: the bytes are the caller's `Data`.
    public func tensorInPlace(named name: String) -> FloatBuffer? {
        guard let info = info(named: name), info.dtype == .f32, case .memory(let data) = storage else { return nil }
        let count = info.elementCount
        let box = DataBox(data)
        return data.withUnsafeBytes { bytes -> FloatBuffer? in
            guard count > 0, let base = bytes.baseAddress else { return nil }
            let source = base + dataStart + info.dataRange.lowerBound
            guard Int(bitPattern: source) % MemoryLayout<Float>.alignment == 0 else { return nil }
            return FloatBuffer(aliasing: UnsafeMutablePointer(mutating: source.assumingMemoryBound(to: Float.self)),
                               count: count, owner: box)
        }
    }

    public func tensor(named name: String) throws -> (shape: [Int], data: FloatBuffer) {
        guard let info = info(named: name) else {
            throw ModelError.malformedCheckpoint(file: self.name, tensor: name, reason: "no such tensor in the file")
        }
        guard info.dtype.convertsToFloat else {
            throw ModelError.unsupported("\(self.name): tensor '\(name)': dtype \(info.dtype.rawValue) cannot be loaded as Float32")
        }
        let count = info.elementCount
        let out = FloatBuffer(count: count)
        storage.withBytes { bytes in
            guard count > 0, let base = bytes.baseAddress else { return }
            let source = base + dataStart + info.dataRange.lowerBound
            switch info.dtype {
            case .f32: HalfPrecision.convertF32(out.pointer, source, count: count)
            case .f16: HalfPrecision.convertF16(out.pointer, source, count: count)
            case .bf16: HalfPrecision.convertBF16(out.pointer, source, count: count)
            case .f64: HalfPrecision.convertF64(out.pointer, source, count: count)
            default: break
            }
        }
        return (info.shape, out)
    }
}

/// Keeps a `Data`'s storage alive for buffers that read it in place.
private final class DataBox {
    let data: Data
    init(_ data: Data) { self.data = data }
}

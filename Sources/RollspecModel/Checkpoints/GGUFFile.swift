import Foundation
import RollspecKernels

/// A GGUF file (llama.cpp `docs/gguf.md`, versions 2 and 3), memory-mapped and validated.
///
/// Layout: magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata count, the metadata
/// key/value pairs, the tensor infos (name, dims with `ne[0]` fastest, ggml type, offset), then
/// padding to `general.alignment` (default 32) and the data section the offsets point into.
/// Opening checks the whole header and the data layout; `tensor(named:)` dequantizes one tensor.
public final class GGUFFile: @unchecked Sendable {
    /// Where one tensor lives in the file.
    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        /// ggml order: `ne[0]` (the contiguous, fastest-varying dimension) first.
        public let dimensions: [Int]
        public let type: GGMLType
        /// Byte offset within the data section.
        public let offset: Int
        public let byteCount: Int
        /// PyTorch / Hugging Face order: `dimensions` reversed (`[rows, columns]` for a matrix).
        public var shape: [Int] { dimensions.reversed() }
        public var elementCount: Int { dimensions.reduce(1, *) }
    }

    public static let defaultAlignment = 32
    /// ggml's `GGML_MAX_DIMS`.
    public static let maxDimensions = 4
    /// Deepest nesting of metadata arrays accepted (a guard against stack exhaustion).
    static let maxArrayDepth = 16

    public let url: URL
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// In file order.
    public let tensors: [TensorInfo]
    public let alignment: Int
    /// Byte offset of the data section in the file.
    public let dataOffset: Int
    private let index: [String: Int]
    private let file: MappedFile

    /// Maps and validates `url`.
    /// - Throws: `ModelError.missingFile`, or `ModelError.malformedCheckpoint` naming the file,
    ///   the tensor or key at fault and what is wrong.
    public init(url: URL) throws {
        self.url = url
        file = try MappedFile(path: url.path)
        var r = ByteReader(bytes: file.bytes, file: url.path)
        guard file.count >= 4, Array(file.bytes[0..<4]) == Array("GGUF".utf8) else {
            throw r.fail("not a GGUF file (bad magic; expected 'GGUF')")
        }
        r.offset = 4
        version = try r.read(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            throw r.fail("unsupported GGUF version \(version) (expected 2 or 3; big-endian files are not supported)")
        }
        let tensorCount = try r.read(UInt64.self, "tensor count")
        let kvCount = try r.read(UInt64.self, "metadata count")
        // Each key/value pair takes at least 13 bytes and each tensor info at least 24.
        guard kvCount <= UInt64(r.remaining / 13) else {
            throw r.fail("metadata count \(kvCount) is absurd for a file of \(file.count) bytes")
        }
        guard tensorCount <= UInt64(r.remaining / 24) else {
            throw r.fail("tensor count \(tensorCount) is absurd for a file of \(file.count) bytes")
        }

        var metadata: [String: GGUFValue] = [:]
        for i in 0..<Int(kvCount) {
            let key = try r.readString("metadata key \(i)")
            let type = try r.read(UInt32.self, "type of metadata key '\(key)'")
            guard metadata[key] == nil else { throw r.fail("metadata key '\(key)' appears twice") }
            metadata[key] = try Self.readValue(&r, type: type, key: key, depth: 0)
        }
        self.metadata = metadata

        var alignment = Self.defaultAlignment
        if let value = metadata["general.alignment"] {
            guard let a = value.intValue, a > 0, a & (a - 1) == 0, a <= 1 << 20 else {
                throw r.fail("general.alignment \(value) is not a power of two")
            }
            alignment = a
        }
        self.alignment = alignment

        var infos: [TensorInfo] = []
        var index: [String: Int] = [:]
        for i in 0..<Int(tensorCount) {
            let info = try Self.readTensorInfo(&r, number: i, alignment: alignment)
            guard index[info.name] == nil else { throw r.fail("tensor appears twice", tensor: info.name) }
            index[info.name] = infos.count
            infos.append(info)
        }
        let (aligned, overflow) = r.offset.addingReportingOverflow((alignment - r.offset % alignment) % alignment)
        dataOffset = overflow ? Int.max : aligned
        let dataLength = max(0, file.count - dataOffset)

        // Tensor data must lie inside the file and must not overlap.
        var previous: TensorInfo?
        for info in infos.sorted(by: { ($0.offset, $0.byteCount) < ($1.offset, $1.byteCount) }) {
            guard info.byteCount <= dataLength, info.offset <= dataLength - info.byteCount else {
                throw r.fail("tensor data [\(info.offset), \(info.offset + info.byteCount)) lies outside the file (data section is \(dataLength) bytes)", tensor: info.name)
            }
            if let p = previous, info.offset < p.offset + p.byteCount {
                throw r.fail("tensor data at offset \(info.offset) overlaps tensor '\(p.name)' (\(p.offset)..<\(p.offset + p.byteCount))", tensor: info.name)
            }
            if info.byteCount > 0 { previous = info }
        }
        tensors = infos
        self.index = index
    }

    private static func readTensorInfo(_ r: inout ByteReader, number: Int, alignment: Int) throws -> TensorInfo {
        let name = try r.readString("name of tensor \(number)")
        let nDims = try r.read(UInt32.self, "dimension count of tensor '\(name)'")
        guard nDims <= UInt32(maxDimensions) else {
            throw r.fail("has \(nDims) dimensions (ggml allows at most \(maxDimensions))", tensor: name)
        }
        var dims: [Int] = []
        for d in 0..<Int(nDims) {
            let ne = try r.read(UInt64.self, "dimension \(d) of tensor '\(name)'")
            guard let n = Int(exactly: ne) else {
                throw r.fail("dimension \(d) is absurd (\(ne))", tensor: name)
            }
            dims.append(n)
        }
        let type = GGMLType(rawValue: try r.read(UInt32.self, "type of tensor '\(name)'"))
        let offset64 = try r.read(UInt64.self, "offset of tensor '\(name)'")
        guard let (blockElements, blockBytes) = type.blockLayout else {
            throw r.fail("unknown ggml type \(type.rawValue)", tensor: name)
        }
        guard let elements = checkedProduct(dims) else {
            throw r.fail("dimensions \(dims) have too many elements", tensor: name)
        }
        let ne0 = dims.first ?? 1
        guard ne0 % blockElements == 0 else {
            throw r.fail("ne[0] = \(ne0) is not a multiple of the \(type) block size \(blockElements)", tensor: name)
        }
        guard let bytes = checkedProduct([elements / blockElements, blockBytes]) else {
            throw r.fail("dimensions \(dims) have too many elements", tensor: name)
        }
        guard let offset = Int(exactly: offset64) else {
            throw r.fail("tensor data offset \(offset64) lies outside the file", tensor: name)
        }
        guard offset % alignment == 0 else {
            throw r.fail("offset \(offset) is not aligned to \(alignment) bytes", tensor: name)
        }
        return TensorInfo(name: name, dimensions: dims, type: type, offset: offset, byteCount: bytes)
    }

    /// Smallest encoded size of a value of each GGUF metadata type (0 = u8 … 12 = f64).
    private static let minimumValueSize: [Int] = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8]

    private static func readValue(_ r: inout ByteReader, type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        let what = "value of metadata key '\(key)'"
        switch type {
        case 0: return .uint(UInt64(try r.read(UInt8.self, what)))
        case 1: return .int(Int64(try r.read(Int8.self, what)))
        case 2: return .uint(UInt64(try r.read(UInt16.self, what)))
        case 3: return .int(Int64(try r.read(Int16.self, what)))
        case 4: return .uint(UInt64(try r.read(UInt32.self, what)))
        case 5: return .int(Int64(try r.read(Int32.self, what)))
        case 6: return .float(Double(Float(bitPattern: try r.read(UInt32.self, what))))
        case 7: return .bool(try r.read(UInt8.self, what) != 0)
        case 8: return .string(try r.readString(what))
        case 9:
            let elementType = try r.read(UInt32.self, "element type of metadata key '\(key)'")
            let count = try r.read(UInt64.self, "length of metadata key '\(key)'")
            guard elementType < UInt32(minimumValueSize.count) else {
                throw r.fail("metadata key '\(key)' is an array of unknown value type \(elementType)")
            }
            guard depth < maxArrayDepth else { throw r.fail("metadata key '\(key)' nests arrays too deeply") }
            guard count <= UInt64(r.remaining / minimumValueSize[Int(elementType)]) else {
                throw r.fail("metadata key '\(key)': array of \(count) elements runs past the end of the file")
            }
            var values: [GGUFValue] = []
            values.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                values.append(try readValue(&r, type: elementType, key: key, depth: depth + 1))
            }
            return .array(values)
        case 10: return .uint(try r.read(UInt64.self, what))
        case 11: return .int(try r.read(Int64.self, what))
        case 12: return .float(Double(bitPattern: try r.read(UInt64.self, what)))
        default: throw r.fail("metadata key '\(key)' has unknown value type \(type)")
        }
    }

    public func info(named name: String) -> TensorInfo? { index[name].map { tensors[$0] } }

    /// Dequantizes one tensor to `Float32`.
    /// - Returns: its shape in Hugging Face order (ggml dims reversed) and values.
    /// - Throws: `ModelError.malformedCheckpoint` for an unknown name, `ModelError.unsupported`
    ///   naming the tensor and its type when rollspec cannot dequantize that type.
    public func tensor(named name: String) throws -> (shape: [Int], data: FloatBuffer) {
        guard let info = info(named: name) else {
            throw ModelError.malformedCheckpoint(file: url.path, tensor: name, reason: "no such tensor in the file")
        }
        guard info.type.isSupported else {
            throw ModelError.unsupported(
                "\(url.path): tensor '\(name)' has ggml type \(info.type), which rollspec cannot dequantize (supported: F32, F16, BF16, Q4_0, Q4_1, Q8_0)")
        }
        let out = FloatBuffer(count: info.elementCount)
        if info.elementCount > 0, let base = file.bytes.baseAddress {
            info.type.dequantize(out.pointer, base + dataOffset + info.offset, count: info.elementCount)
        }
        return (info.shape, out)
    }
}

import Dispatch
import RollspecKernels

/// A ggml tensor element type (ggml `enum ggml_type`). Every type's block layout is known so a
/// GGUF file's data layout can be checked; only some can be dequantized (`isSupported`).
public struct GGMLType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let f32 = GGMLType(rawValue: 0)
    public static let f16 = GGMLType(rawValue: 1)
    public static let q4_0 = GGMLType(rawValue: 2)
    public static let q4_1 = GGMLType(rawValue: 3)
    public static let q8_0 = GGMLType(rawValue: 8)
    public static let bf16 = GGMLType(rawValue: 30)

    /// name, elements per block, bytes per block (gguf-py `GGML_QUANT_SIZES`).
    private static let table: [UInt32: (String, Int, Int)] = [
        0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
        6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
        10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
        14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74),
        18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
        22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
        26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2),
        34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    ]

    public var description: String { Self.table[rawValue]?.0 ?? "type \(rawValue)" }
    /// Elements per block and bytes per block; nil for a type id ggml does not define.
    public var blockLayout: (elements: Int, bytes: Int)? { Self.table[rawValue].map { ($0.1, $0.2) } }
    /// Whether `dequantize` handles this type.
    public var isSupported: Bool { [Self.f32, .f16, .bf16, .q4_0, .q4_1, .q8_0].contains(self) }

    /// Widens `count` elements (a multiple of the block size) at `source` to `Float`, exactly
    /// as ggml's `dequantize_row_*` (and gguf-py `quants.dequantize`) do. Large tensors are
    /// split across cores by blocks.
    func dequantize(_ destination: UnsafeMutablePointer<Float>, _ source: UnsafeRawPointer, count: Int) {
        guard let (blockElements, blockBytes) = blockLayout, count > 0 else { return }
        let blocks = count / blockElements
        // Chunks of ≥ 64 Ki elements, so small tensors stay on the calling thread.
        let chunkBlocks = max(1, 65_536 / blockElements)
        let chunks = (blocks + chunkBlocks - 1) / chunkBlocks
        let run = { (chunk: Int) in
            let first = chunk * chunkBlocks, n = min(chunkBlocks, blocks - first)
            self.dequantizeBlocks(destination + first * blockElements, source + first * blockBytes, blocks: n)
        }
        if chunks <= 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: run) }
    }

    private func dequantizeBlocks(_ y: UnsafeMutablePointer<Float>, _ x: UnsafeRawPointer, blocks: Int) {
        @inline(__always) func f16(_ p: UnsafeRawPointer, _ at: Int) -> Float {
            HalfPrecision.f16ToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
        }
        switch self {
        case .f32: HalfPrecision.convertF32(y, x, count: blocks)
        case .f16: HalfPrecision.convertF16(y, x, count: blocks)
        case .bf16: HalfPrecision.convertBF16(y, x, count: blocks)
        case .q8_0:
            // block_q8_0: f16 d, int8 qs[32]; y = qs * d
            for b in 0..<blocks {
                let block = x + b * 34, out = y + b * 32
                let d = f16(block, 0)
                let qs = (block + 2).assumingMemoryBound(to: Int8.self)
                for j in 0..<32 { out[j] = Float(qs[j]) * d }
            }
        case .q4_0:
            // block_q4_0: f16 d, u8 qs[16]; low nibbles are elements 0..15, high 16..31; y = (q - 8) * d
            for b in 0..<blocks {
                let block = x + b * 18, out = y + b * 32
                let d = f16(block, 0)
                let qs = (block + 2).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    out[j] = Float(Int32(qs[j] & 0x0F) - 8) * d
                    out[j + 16] = Float(Int32(qs[j] >> 4) - 8) * d
                }
            }
        case .q4_1:
            // block_q4_1: f16 d, f16 m, u8 qs[16]; y = q * d + m
            for b in 0..<blocks {
                let block = x + b * 20, out = y + b * 32
                let d = f16(block, 0), m = f16(block, 2)
                let qs = (block + 4).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    out[j] = Float(qs[j] & 0x0F) * d + m
                    out[j + 16] = Float(qs[j] >> 4) * d + m
                }
            }
        default: break
        }
    }
}

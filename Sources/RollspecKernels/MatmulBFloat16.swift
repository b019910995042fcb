// Matrix multiplication of bfloat16-rounded inputs against bfloat16 weights, for a bfloat16
// policy and for drafts: the same skinny kernel as `matmulForwardSkinny` streaming half the
// bytes, with VDPBF16PS where the CPU has it. Legend: N rows, C = inDim, OC = outDim.

import CRollspecKernels

/// An owned, 64-byte-aligned array of bfloat16 values (raw bits), rounded from floats.
public final class BFloat16Buffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<UInt16>
    /// This matrix's full 16-row blocks packed as AMX tiles (`packTiles`), and its shape.
    private var tiles: (pointer: UnsafeMutablePointer<UInt16>, inDim: Int, outDim: Int)?

    /// `values` rounded to bfloat16 (nearest, ties to even).
    public init(rounding values: UnsafePointer<Float>, count: Int) {
        precondition(count >= 0)
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<UInt16>.stride, alignment: 64)
        pointer = raw.bindMemory(to: UInt16.self, capacity: max(count, 1))
        if count == 0 { pointer.initialize(to: 0) }
        Self.round(values, count: count, into: pointer)  // writes every element: no zeroing first
    }

    /// `values` rounded to bfloat16 as `init(rounding:count:)` does, written to `out`
    /// (`count` elements), which the caller owns.
    public static func round(_ values: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<UInt16>) {
        precondition(count >= 0)
        rs_float_to_bf16(out, values, Int64(count))
    }

    public convenience init(rounding buffer: FloatBuffer) {
        self.init(rounding: buffer.pointer, count: buffer.count)
    }

    /// `matrix` (`[rows, cols]`) transposed and rounded: `[cols, rows]`.
    public convenience init(transposing matrix: FloatBuffer, rows: Int, cols: Int) {
        precondition(rows * cols == matrix.count, "a [\(rows), \(cols)] matrix has \(rows * cols) values, not \(matrix.count)")
        self.init(count: matrix.count)
        transpose(from: matrix.pointer, rows: rows, cols: cols)
    }

    /// Uninitialized storage for `count` values.
    private init(count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<UInt16>.stride, alignment: 64)
            .bindMemory(to: UInt16.self, capacity: max(count, 1))
    }

    /// Writes `matrix` (`[rows, cols]`) transposed and rounded over these values.
    public func transpose(from matrix: UnsafePointer<Float>, rows: Int, cols: Int) {
        precondition(rows * cols == count, "a [\(rows), \(cols)] matrix does not fill \(count) values")
        rs_transpose_to_bf16(pointer, matrix, Int64(rows), Int64(cols))
        repackTiles()
    }

    deinit {
        pointer.deallocate()
        tiles?.pointer.deallocate()
    }

    /// Adds a copy of this `[outDim, inDim]` matrix packed as AMX tiles, which
    /// `matmulForward` then reads for passes of up to 32 rows (decode, verify, a batch step):
    /// each block of 16 outputs streams as one contiguous run and the input rows are read in
    /// place, so a verify of 8–16 rows costs about what one row does. Only where the CPU has AMX
    /// and `inDim` is a multiple of 32; elsewhere nothing is kept. Writes through this buffer's
    /// methods (`assign(rounding:)`, `transpose(from:rows:cols:)`) repack the copy; writes
    /// through `pointer` do not, so a buffer with tiles is changed only through them.
    public func packTiles(inDim: Int, outDim: Int) {
        precondition(inDim * outDim == count, "a [\(outDim), \(inDim)] matrix has \(inDim * outDim) values, not \(count)")
        let size = Int(rs_bf16_tiles_count(Int64(inDim), Int64(outDim)))
        guard size > 0, tiles == nil else { return }
        let p = UnsafeMutableRawPointer.allocate(byteCount: size * MemoryLayout<UInt16>.stride, alignment: 64)
            .bindMemory(to: UInt16.self, capacity: size)
        tiles = (p, inDim, outDim)
        repackTiles()
    }

    /// The tiles for a product of this shape, if this buffer keeps them.
    func tiles(inDim: Int, outDim: Int) -> UnsafePointer<UInt16>? {
        guard let tiles, tiles.inDim == inDim, tiles.outDim == outDim else { return nil }
        return UnsafePointer(tiles.pointer)
    }

    private func repackTiles() {
        guard let tiles else { return }
        rs_bf16_pack_tiles(tiles.pointer, pointer, Int64(tiles.inDim), Int64(tiles.outDim))
    }

    /// Rounds `values` (`count` of them) into this buffer, and repacks its tiles.
    public func assign(rounding values: UnsafePointer<Float>) {
        Self.round(values, count: count, into: pointer)
        repackTiles()
    }

    /// The values widened back to float32 (exact: bf16 is the top half of a float).
    public func widened() -> FloatBuffer {
        FloatBuffer(count: count) { rs_bf16_to_float($0, pointer, Int64(count)) }
    }

    /// Rows `indices` of this buffer as a `[rows, width]` matrix, widened to float32 into
    /// `out` (`[indices.count, width]`): an embedding lookup from a bfloat16 table.
    public func widenRows(_ indices: UnsafeBufferPointer<Int32>, width: Int, into out: UnsafeMutablePointer<Float>) {
        for (i, row) in indices.enumerated() {
            precondition(row >= 0 && (Int(row) + 1) * width <= count, "row \(row) is outside the table")
            rs_bf16_to_float(out + i * width, pointer + Int(row) * width, Int64(width))
        }
    }
}

extension FloatBuffer {
    /// A copy with every value rounded to bfloat16 (as `BFloat16Buffer(rounding:)`), held as
    /// float32.
    public func roundedToBFloat16() -> FloatBuffer {
        FloatBuffer(count: count) { rs_round_to_bf16($0, pointer, Int64(count)) }
    }

    /// Whether every value is a bfloat16 value already (its low 16 bits are zero), so that
    /// rounding would change nothing: one read of the buffer, no writes.
    public var isBFloat16Exact: Bool {
        let bits = UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt32.self)
        var low: UInt32 = 0
        var start = 0
        while start < count {  // a block at a time, so that a rounded value ends the scan early
            let end = min(start + 4096, count)
            for i in start..<end { low |= bits[i] & 0xFFFF }
            if low != 0 { return false }
            start = end
        }
        return true
    }
}

/// Rounds `count` values at `values` to bfloat16 in place (as `BFloat16Buffer(rounding:)`),
/// held as float32.
public func roundToBFloat16(_ values: UnsafeMutablePointer<Float>, count: Int) {
    rs_round_to_bf16(values, values, Int64(count))
}

/// `out[N, OC] = bf16(input[N, C]) · weight[OC, C]ᵀ + bias[OC]`: the input rounded to
/// bfloat16 (nearest, ties to even; `input` itself is not changed), bfloat16 weights, exact
/// products and float32 sums. Each weight row is read once for all N rows (meant for N up to
/// a few hundred).
///
/// - Parameter threaded: split the output rows across the kernel thread pool.
public func matmulForward(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: BFloat16Buffer, _ bias: UnsafePointer<Float>?,
    n: Int, inDim: Int, outDim: Int, threaded: Bool = true
) {
    precondition(weight.count == inDim * outDim, "bf16 weight has \(weight.count) values, expected \(outDim)×\(inDim)")
    rs_matmul_skinny_bf16_tiles(out, input, weight.pointer, weight.tiles(inDim: inDim, outDim: outDim), bias,
                                Int64(n), Int64(inDim), Int64(outDim), threaded ? 1 : 0)
}

/// Storage `matmulBackward(_:_:_:_:_:transposedWeight:…)` reuses from call to call: a learner's
/// backward makes ~200 such calls a pass, with temporaries of up to tens of MB, and fresh pages
/// cost the kernel's zeroing.
public final class MatmulBackwardScratch: @unchecked Sendable {
    let product = ReusableBuffer(step: 1 << 20)
    let transposedOut = ReusableBuffer(step: 1 << 20)
    /// bfloat16 values, two to a float.
    let transposedInput = ReusableBuffer(step: 1 << 20)
    /// The input `transposeInput` keeps for several products, apart from the one above.
    let sharedInput = ReusableBuffer(step: 1 << 20)
    public init() {}

    /// `input[N, C]` transposed and rounded once, for the backward of several products that
    /// read it (q, k and v read one normalised input; gate and up another). Valid until the
    /// next call of this method.
    public func transposeInput(_ input: UnsafePointer<Float>, n: Int, inDim: Int) -> TransposedInput {
        let storage = sharedInput.view(count: (inDim * n + 1) / 2)
        let bits = UnsafeMutableRawPointer(storage.pointer).assumingMemoryBound(to: UInt16.self)
        rs_transpose_to_bf16(bits, input, Int64(n), Int64(inDim))
        return TransposedInput(storage: storage, n: n, inDim: inDim)
    }
}

/// An input transposed and rounded by `MatmulBackwardScratch.transposeInput`: `[C, N]` bfloat16.
public struct TransposedInput {
    let storage: FloatBuffer
    let n: Int, inDim: Int
    var bits: UnsafeMutablePointer<UInt16> { UnsafeMutableRawPointer(storage.pointer).assumingMemoryBound(to: UInt16.self) }
}

/// Backward of the bfloat16 `matmulForward` (`out = bf16(input) · bf16(weight)ᵀ`), the gradient
/// taken straight through the rounding, as mixed-precision training does, with every product
/// of two bfloat16 values: `dInput[N, C] += bf16(dOut) · bf16(weight)`, `dWeight[OC, C] +=
/// bf16(dOut)ᵀ · bf16(input)`, sums in float32, and `dBias[OC] += Σ_n dOut[n, :]` in float32.
/// Both products run through the bf16 kernel: the first against `transposedWeight`
/// (`[C, OC]`, bf16(weightᵀ)), the second against the input transposed and rounded here, or
/// `transposedInput` when the caller made it once for several products of this input.
/// Any gradient may be nil to skip it; without `dInput`, `transposedWeight` may be nil too.
public func matmulBackward(
    _ dInput: UnsafeMutablePointer<Float>?, _ dWeight: UnsafeMutablePointer<Float>?,
    _ dBias: UnsafeMutablePointer<Float>?, _ dOut: UnsafePointer<Float>,
    _ input: UnsafePointer<Float>, transposedWeight: BFloat16Buffer?, transposedInput: TransposedInput? = nil,
    n: Int, inDim: Int, outDim: Int, scratch: MatmulBackwardScratch
) {
    precondition(transposedWeight.map { $0.count == inDim * outDim } ?? (dInput == nil),
                 "dInput needs the transposed weight, [\(inDim), \(outDim)]; got \(transposedWeight?.count ?? 0) values")
    guard n > 0 else { return }
    if let dBias {
        for r in 0..<n { rs_add_inplace(dBias, dOut + r * outDim, Int64(outDim)) }
    }
    if let dInput, let transposedWeight {
        let product = scratch.product.view(count: n * inDim)
        rs_matmul_skinny_bf16(product.pointer, dOut, transposedWeight.pointer, nil, Int64(n), Int64(outDim), Int64(inDim), 1)
        rs_add_inplace(dInput, product.pointer, Int64(n * inDim))
    }
    if let dWeight {
        let dOutT = scratch.transposedOut.view(count: outDim * n)
        rs_transpose(dOutT.pointer, dOut, Int64(n), Int64(outDim))
        let inputT16: UnsafeMutablePointer<UInt16>
        if let transposedInput {
            precondition(transposedInput.n == n && transposedInput.inDim == inDim, "the transposed input is of another shape")
            inputT16 = transposedInput.bits
        } else {
            let inputT = scratch.transposedInput.view(count: (inDim * n + 1) / 2)
            inputT16 = UnsafeMutableRawPointer(inputT.pointer).assumingMemoryBound(to: UInt16.self)
            rs_transpose_to_bf16(inputT16, input, Int64(n), Int64(inDim))
        }
        let product = scratch.product.view(count: outDim * inDim)
        rs_matmul_skinny_bf16(product.pointer, dOutT.pointer, inputT16, nil, Int64(outDim), Int64(n), Int64(inDim), 1)
        rs_add_inplace(dWeight, product.pointer, Int64(outDim * inDim))
    }
}

// Rotary position embedding (Su et al. 2021) in the Hugging Face "rotate half" convention:
// within each head, channel i pairs with channel i + headDim/2, rotated by angle
// position · theta^(-2i/headDim).
// Legend: N tokens, H heads, D headDim.

import CRollspecKernels
import Foundation

/// Reference RoPE applied in place to `x[N, H, D]`, token `t` at `positions[t]`.
public func ropeForwardReference(
    _ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>,
    n: Int, heads: Int, headDim: Int, theta: Float
) {
    let half = headDim / 2
    for t in 0..<n {
        let pos = Double(positions[t])
        for h in 0..<heads {
            let base = x + (t * heads + h) * headDim
            for i in 0..<half {
                let invFreq = 1 / pow(Double(theta), Double(2 * i) / Double(headDim))
                let angle = pos * invFreq
                let c = cos(angle), s = sin(angle)
                let a = Double(base[i]), b = Double(base[i + half])
                base[i] = Float(a * c - b * s)
                base[i + half] = Float(b * c + a * s)
            }
        }
    }
}

/// RoPE applied in place to `x[N, H, D]`, token `t` at `positions[t]`.
///
/// Computes cos/sin of the `n` positions for this call (in double, like the reference); the
/// model should prefer the `table:` overload, which looks them up.
public func ropeForward(
    _ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>,
    n: Int, heads: Int, headDim: Int, theta: Float
) {
    let half = headDim / 2
    let invFreq = RoPETable.inverseFrequencies(headDim: headDim, theta: theta)
    let cosines = FloatBuffer(count: n * half), sines = FloatBuffer(count: n * half)
    var rows = [Int32](repeating: 0, count: n)
    invFreq.withUnsafeBufferPointer { f in
        for t in 0..<n {
            rs_rope_fill_table(
                cosines.pointer + t * half, sines.pointer + t * half, f.baseAddress, Int64(positions[t]), 1,
                Int64(half))
            rows[t] = Int32(t)
        }
    }
    rs_rope_table(x, rows, cosines.pointer, sines.pointer, Int64(n), Int64(heads), Int64(headDim))
}

/// RoPE applied in place to `x[N, H, D]`, token `t` at `positions[t]`, with cos/sin looked
/// up in `table` (which must cover every position and have `table.headDim == headDim`).
public func ropeForward(
    _ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>,
    n: Int, heads: Int, headDim: Int, table: RoPETable
) {
    precondition(table.headDim == headDim, "RoPE table is for head dim \(table.headDim)")
    for t in 0..<n {
        precondition(positions[t] >= 0 && Int(positions[t]) < table.maxPositions,
                     "position \(positions[t]) outside the RoPE table")
    }
    rs_rope_table(
        x, positions, table.cosines.pointer, table.sines.pointer, Int64(n), Int64(heads), Int64(headDim))
}

/// Precomputed RoPE cos/sin for positions `0 ..< maxPositions`, so a forward pass does no
/// trigonometry. Angles are `position · invFreq[i]`, computed in double.
public final class RoPETable: @unchecked Sendable {
    public let headDim: Int
    public let maxPositions: Int
    /// `[D/2]` inverse frequencies `theta^(-2i/D)` (or a scaled variant supplied by the model).
    public let inverseFrequencies: [Double]
    /// `[maxPositions, D/2]`.
    public let cosines: FloatBuffer
    /// `[maxPositions, D/2]`.
    public let sines: FloatBuffer

    /// A table for the standard frequencies `theta^(-2i/headDim)`.
    public convenience init(headDim: Int, theta: Float, maxPositions: Int) {
        self.init(
            headDim: headDim, inverseFrequencies: Self.inverseFrequencies(headDim: headDim, theta: theta),
            maxPositions: maxPositions)
    }

    /// A table for the given inverse frequencies (`headDim / 2` of them), e.g. after
    /// Llama 3 style frequency scaling.
    public init(headDim: Int, inverseFrequencies: [Double], maxPositions: Int) {
        precondition(headDim % 2 == 0 && inverseFrequencies.count == headDim / 2)
        self.headDim = headDim
        self.maxPositions = maxPositions
        self.inverseFrequencies = inverseFrequencies
        let half = headDim / 2
        cosines = FloatBuffer(count: maxPositions * half)
        sines = FloatBuffer(count: maxPositions * half)
        inverseFrequencies.withUnsafeBufferPointer { f in
            rs_rope_fill_table(
                cosines.pointer, sines.pointer, f.baseAddress, 0, Int64(maxPositions), Int64(half))
        }
    }

    /// `theta^(-2i/headDim)` for `i` in `0 ..< headDim/2`, as in the reference.
    public static func inverseFrequencies(headDim: Int, theta: Float) -> [Double] {
        (0..<headDim / 2).map { i in 1 / pow(Double(theta), Double(2 * i) / Double(headDim)) }
    }
}

// MARK: Backward

/// Reference RoPE backward in place on the gradient `dX[N, H, D]`: each pair is rotated by
/// the negative angle (a rotation's transpose is its inverse).
public func ropeBackwardReference(
    _ dX: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>,
    n: Int, heads: Int, headDim: Int, theta: Float
) {
    let half = headDim / 2
    for t in 0..<n {
        let pos = Double(positions[t])
        for h in 0..<heads {
            let base = dX + (t * heads + h) * headDim
            for i in 0..<half {
                let angle = pos / pow(Double(theta), Double(2 * i) / Double(headDim))
                let c = cos(angle), s = sin(angle)
                let a = Double(base[i]), b = Double(base[i + half])
                base[i] = Float(a * c + b * s)
                base[i + half] = Float(b * c - a * s)
            }
        }
    }
}

/// RoPE backward in place on the gradient `dX[N, H, D]`, cos/sin from `table`.
public func ropeBackward(
    _ dX: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>,
    n: Int, heads: Int, headDim: Int, table: RoPETable
) {
    precondition(table.headDim == headDim, "RoPE table is for head dim \(table.headDim)")
    for t in 0..<n {
        precondition(positions[t] >= 0 && Int(positions[t]) < table.maxPositions,
                     "position \(positions[t]) outside the RoPE table")
    }
    rs_rope_table_backward(
        dX, positions, table.cosines.pointer, table.sines.pointer, Int64(n), Int64(heads), Int64(headDim))
}

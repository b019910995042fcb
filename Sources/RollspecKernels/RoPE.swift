// Rotary position embedding (Su et al. 2021) in the Hugging Face "rotate half" convention:
// within each head, channel i pairs with channel i + headDim/2, rotated by angle
// position · theta^(-2i/headDim).
// Legend: N tokens, H heads, D headDim.

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
public func ropeForward(
    _ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>,
    n: Int, heads: Int, headDim: Int, theta: Float
) {
    ropeForwardReference(x, positions: positions, n: n, heads: heads, headDim: headDim, theta: theta)
}

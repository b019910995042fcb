// RMSNorm (Zhang & Sennrich 2019): out = x / sqrt(mean(x²) + eps) * weight.
// Legend: N rows, C channels.

import CRollspecKernels

/// Reference RMSNorm over `n` rows of `dim` channels.
public func rmsNormForwardReference(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, n: Int, dim: Int, eps: Float
) {
    for r in 0..<n {
        var ss: Double = 0
        for c in 0..<dim { ss += Double(input[r * dim + c]) * Double(input[r * dim + c]) }
        let scale = 1 / (ss / Double(dim) + Double(eps)).squareRoot()
        for c in 0..<dim { out[r * dim + c] = Float(Double(input[r * dim + c]) * scale) * weight[c] }
    }
}

/// RMSNorm over `n` rows of `dim` channels; `out` may alias `input`.
public func rmsNormForward(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, n: Int, dim: Int, eps: Float
) {
    rs_rmsnorm(out, input, weight, Int64(n), Int64(dim), eps)
}

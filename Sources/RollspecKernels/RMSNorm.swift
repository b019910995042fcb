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

/// Reference RMSNorm backward, in double: with r = 1/sqrt(mean(x²) + eps) and y = x·r·w,
/// `dInput += r·(w⊙dy) − r³/C · x · Σ(w⊙dy⊙x)` and `dWeight += Σ_rows dy⊙x·r`.
/// Both accumulate (dInput is usually the residual stream's gradient).
public func rmsNormBackwardReference(
    _ dInput: UnsafeMutablePointer<Float>, _ dWeight: UnsafeMutablePointer<Float>,
    _ dOut: UnsafePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, n: Int, dim: Int, eps: Float
) {
    for r in 0..<n {
        let x = input + r * dim, dy = dOut + r * dim
        var ss: Double = 0, dot: Double = 0
        for c in 0..<dim {
            ss += Double(x[c]) * Double(x[c])
            dot += Double(weight[c]) * Double(dy[c]) * Double(x[c])
        }
        let rs = 1 / (ss / Double(dim) + Double(eps)).squareRoot()
        for c in 0..<dim {
            let g = rs * Double(weight[c]) * Double(dy[c]) - rs * rs * rs / Double(dim) * Double(x[c]) * dot
            dInput[r * dim + c] += Float(g)
            dWeight[c] += Float(Double(dy[c]) * Double(x[c]) * rs)
        }
    }
}

/// RMSNorm backward over `n` rows of `dim` channels (1/rms recomputed from `input`);
/// `dInput` and `dWeight` accumulate. See `rmsNormBackwardReference`.
public func rmsNormBackward(
    _ dInput: UnsafeMutablePointer<Float>, _ dWeight: UnsafeMutablePointer<Float>,
    _ dOut: UnsafePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, n: Int, dim: Int, eps: Float
) {
    rs_rmsnorm_backward(dInput, dWeight, dOut, input, weight, Int64(n), Int64(dim), eps)
}

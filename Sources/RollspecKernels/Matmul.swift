// Matrix multiplication against a weight stored row-major as `[outDim, inDim]` (the HF
// `nn.Linear` layout): out = input · weightᵀ (+ bias).
// Legend: N rows of input (tokens), C = inDim, OC = outDim.

import CBLAS

/// `out[N, OC] = input[N, C] · weight[OC, C]ᵀ + bias[OC]`.
///
/// Reference version: obviously correct, slow. The tests hold `matmulForward` to it.
public func matmulForwardReference(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
    n: Int, inDim: Int, outDim: Int
) {
    for r in 0..<n {
        for o in 0..<outDim {
            var acc: Double = 0
            for c in 0..<inDim { acc += Double(input[r * inDim + c]) * Double(weight[o * inDim + c]) }
            out[r * outDim + o] = Float(acc) + (bias?[o] ?? 0)
        }
    }
}

/// `out[N, OC] = input[N, C] · weight[OC, C]ᵀ + bias[OC]` through BLAS `sgemm`.
public func matmulForwardBLAS(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
    n: Int, inDim: Int, outDim: Int
) {
    if let bias {
        for r in 0..<n { (out + r * outDim).update(from: bias, count: outDim) }
    }
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(outDim), Int32(inDim),
        1, input, Int32(inDim), weight, Int32(inDim), bias == nil ? 0 : 1, out, Int32(outDim))
}

/// `out[N, OC] = input[N, C] · weight[OC, C]ᵀ + bias[OC]`: the fast path used by the model.
public func matmulForward(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
    n: Int, inDim: Int, outDim: Int
) {
    matmulForwardBLAS(out, input, weight, bias, n: n, inDim: inDim, outDim: outDim)
}

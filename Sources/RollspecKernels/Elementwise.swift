// Small elementwise helpers used between the big ops. Legend: count elements.

import CRollspecKernels

/// `acc[i] += x[i]` for `count` elements (the residual connection).
public func addInPlace(_ acc: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    rs_add_inplace(acc, x, Int64(count))
}

/// Reference `addInPlace`.
public func addInPlaceReference(_ acc: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { acc[i] += x[i] }
}

/// `x[i] *= s` for `count` elements.
public func scaleInPlace(_ x: UnsafeMutablePointer<Float>, _ s: Float, count: Int) {
    rs_scale_inplace(x, s, Int64(count))
}

/// `Σ a[i] · b[i]` over `count` elements (several float partial sums).
public func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    rs_dot(a, b, Int64(count))
}

/// Reference `dotProduct`, accumulated in double.
public func dotProductReference(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var s: Double = 0
    for i in 0..<count { s += Double(a[i]) * Double(b[i]) }
    return Float(s)
}

/// Backward of `addInPlace` (acc += x): the gradient of `acc` passes through unchanged and
/// is also the gradient of `x`, so `dX[i] += dAcc[i]`.
public func addInPlaceBackward(_ dX: UnsafeMutablePointer<Float>, _ dAcc: UnsafePointer<Float>, count: Int) {
    rs_add_inplace(dX, dAcc, Int64(count))
}

// MARK: Embedding

/// Embedding lookup: `out[N, C] = table[tokens[n], :]` (table `[V, C]`).
public func embeddingForward(
    _ out: UnsafeMutablePointer<Float>, _ table: UnsafePointer<Float>,
    tokens: UnsafePointer<Int32>, n: Int, dim: Int
) {
    for r in 0..<n { (out + r * dim).update(from: table + Int(tokens[r]) * dim, count: dim) }
}

/// Reference embedding backward: `dTable[tokens[n], :] += dOut[n, :]` (scatter-add).
public func embeddingBackwardReference(
    _ dTable: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>,
    tokens: UnsafePointer<Int32>, n: Int, dim: Int
) {
    for r in 0..<n {
        for c in 0..<dim { dTable[Int(tokens[r]) * dim + c] += dOut[r * dim + c] }
    }
}

/// Embedding backward: `dTable[tokens[n], :] += dOut[n, :]` (scatter-add of rows; a
/// repeated token sums its rows).
public func embeddingBackward(
    _ dTable: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>,
    tokens: UnsafePointer<Int32>, n: Int, dim: Int
) {
    for r in 0..<n { rs_add_inplace(dTable + Int(tokens[r]) * dim, dOut + r * dim, Int64(dim)) }
}

// MARK: Optimiser

/// One AdamW step (Loshchilov & Hutter 2019, PyTorch semantics) over `count` parameters:
/// `p −= lr·wd·p`, `m = β1·m + (1−β1)·g`, `v = β2·v + (1−β2)·g²`,
/// `p −= lr · (m / bc1) / (sqrt(v / bc2) + eps)` with `g = gradient · gradScale` and the bias
/// corrections `bc1 = 1 − β1^t`, `bc2 = 1 − β2^t` of step t.
public func adamwUpdate(
    _ parameter: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>,
    _ v: UnsafeMutablePointer<Float>, _ gradient: UnsafePointer<Float>, count: Int,
    learningRate: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float,
    biasCorrection1: Float, biasCorrection2: Float, gradScale: Float
) {
    rs_adamw(parameter, gradient, m, v, Int64(count), learningRate, beta1, beta2, eps, weightDecay,
             biasCorrection1, biasCorrection2, gradScale)
}

/// `Σ x[i]²` over `count` elements (float partial sums per block, blocks summed in double).
public func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
    rs_sum_squares(x, Int64(count))
}

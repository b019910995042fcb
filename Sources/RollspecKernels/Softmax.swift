// Numerically stable softmax over the last axis. Legend: N rows, V entries per row.

import CRollspecKernels
import Foundation

/// Reference softmax of `n` rows of `dim` entries; `out` may alias `input`.
public func softmaxForwardReference(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, n: Int, dim: Int
) {
    for r in 0..<n {
        var m = -Float.infinity
        for c in 0..<dim { m = max(m, input[r * dim + c]) }
        var sum: Double = 0
        for c in 0..<dim { sum += exp(Double(input[r * dim + c] - m)) }
        for c in 0..<dim { out[r * dim + c] = Float(exp(Double(input[r * dim + c] - m)) / sum) }
    }
}

/// Softmax of `n` rows of `dim` entries; `out` may alias `input`.
public func softmaxForward(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, n: Int, dim: Int
) {
    rs_softmax(out, input, Int64(n), Int64(dim))
}

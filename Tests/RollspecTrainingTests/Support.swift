import Foundation
import RollspecKernels
import RollspecModel
import RollspecTraining

/// A buffer of `count` draws from N(0, scale²), reproducible from `seed`.
func randomBuffer(_ count: Int, seed: UInt64, scale: Float = 1, offset: Float = 0) -> FloatBuffer {
    var rng = RandomSource(seed: seed)
    let b = FloatBuffer(count: count)
    for i in 0..<count {
        let u1 = max(rng.nextUnit(), 1e-300), u2 = rng.nextUnit()
        b[i] = offset + scale * Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
    return b
}

/// Σ r_i · y_i in double: turns a vector output into a scalar loss whose gradient w.r.t. y is r.
func weightedSum(_ y: FloatBuffer, _ r: FloatBuffer) -> Double {
    var s: Double = 0
    for i in 0..<y.count { s += Double(y[i]) * Double(r[i]) }
    return s
}

func maxAbsDiff(_ a: FloatBuffer, _ b: FloatBuffer) -> Float {
    precondition(a.count == b.count)
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}

/// Tolerance of kernel gradient checks: float32 rounding stays under ~1e-3 with h = 1e-2;
/// a wrong sign scores ≈ 1 and a missing term of comparable size ≳ 0.1.
let kernelTolerance = 1e-2

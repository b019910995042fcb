import Foundation
import RollspecKernels
import RollspecModel

/// The outcome of comparing an analytic gradient with central finite differences.
public struct GradientCheckResult: Sendable, CustomStringConvertible {
    /// Largest error over the checked entries: |analytic − numeric| / (|analytic| + |numeric| + floor).
    public var maxError: Double
    /// Entry with the largest error, its analytic and numeric values.
    public var worstIndex: Int
    public var worstAnalytic: Double
    public var worstNumeric: Double
    /// Number of entries checked.
    public var checked: Int

    public func passes(tolerance: Double) -> Bool { maxError <= tolerance }

    public var description: String {
        "max error \(maxError) at [\(worstIndex)]: analytic \(worstAnalytic), numeric \(worstNumeric) (\(checked) entries)"
    }
}

/// Checks analytic gradients against central finite differences
/// (∂L/∂θ_i ≈ (L(θ + h·e_i) − L(θ − h·e_i)) / 2h), perturbing a parameter in place and
/// restoring it.
///
/// The error measure is relative with an absolute floor, so near-zero gradients do not blow
/// it up: a sign error gives ≈ 1, a missing term of the same size as the rest ≈ 0.3 or more,
/// float32 rounding well under 1e-2 at the default step h = 1e-2 for O(1) inputs (truncation
/// error ∝ h², rounding ∝ 1/h).
///
/// This lives here rather than in RollspecTesting so that tools (and the lead's CLI) can run
/// it too; RollspecTesting may re-export it.
public enum GradientChecker {
    /// - Parameters:
    ///   - parameter: the values the loss depends on; each checked entry is moved by ±`step`.
    ///   - analytic: the claimed gradient, same length as `parameter`.
    ///   - indices: entries to check (default all).
    ///   - step: h.
    ///   - floor: absolute floor of the error's denominator; default `1e-3 · max|analytic|` over
    ///     the checked entries, so entries far below the gradient's scale, where float32
    ///     rounding of the loss dominates the difference quotient, do not decide the result.
    ///   - loss: evaluates the loss at the current parameter values (in double if possible).
    public static func check(
        parameter: UnsafeMutablePointer<Float>, analytic: UnsafePointer<Float>, count: Int,
        indices: [Int]? = nil, step: Float = 1e-2, floor: Double? = nil, loss: () -> Double
    ) -> GradientCheckResult {
        let indices = indices ?? Array(0..<count)
        let floor = floor ?? 1e-3 * indices.reduce(0) { max($0, abs(Double(analytic[$1]))) }
        var result = GradientCheckResult(maxError: 0, worstIndex: -1, worstAnalytic: 0, worstNumeric: 0, checked: 0)
        for i in indices {
            let saved = parameter[i]
            parameter[i] = saved + step
            let up = loss()
            parameter[i] = saved - step
            let down = loss()
            parameter[i] = saved
            // The actual float step, not the nominal one (x ± h rounds).
            let numeric = (up - down) / (Double(saved + step) - Double(saved - step))
            let a = Double(analytic[i])
            let error = abs(a - numeric) / (abs(a) + abs(numeric) + floor)
            if error > result.maxError || result.worstIndex < 0 {
                result.maxError = error
                result.worstIndex = i
                result.worstAnalytic = a
                result.worstNumeric = numeric
            }
            result.checked += 1
        }
        return result
    }

    /// `check` on buffers.
    public static func check(
        parameter: FloatBuffer, analytic: FloatBuffer, indices: [Int]? = nil, step: Float = 1e-2,
        floor: Double? = nil, loss: () -> Double
    ) -> GradientCheckResult {
        precondition(parameter.count == analytic.count)
        return check(parameter: parameter.pointer, analytic: analytic.pointer, count: parameter.count,
                     indices: indices, step: step, floor: floor, loss: loss)
    }

    /// Entries worth checking in a large tensor: the `largest` entries of largest |gradient|
    /// (where a wrong term shows most) plus `random` others, reproducible from `seed`.
    public static func sampleIndices(of analytic: FloatBuffer, largest: Int, random: Int, seed: UInt64 = 1) -> [Int] {
        let n = analytic.count
        let sorted = (0..<n).sorted { abs(analytic[$0]) > abs(analytic[$1]) }
        var picked = Array(sorted.prefix(largest))
        var rng = RandomSource(seed: seed)
        for _ in 0..<random where n > 0 { picked.append(Int(rng.next() % UInt64(n))) }
        return Array(Set(picked)).sorted()
    }
}

import Foundation
import RollspecClient
import RollspecRoles

/// A linear axis: its range and tick positions a "nice" step (1, 2 or 5 × 10^k) apart.
///
/// Heckbert, "Nice numbers for graph labels", Graphics Gems (1990), with the step rounded to
/// the nearest nice number.
public struct AxisScale: Equatable, Sendable {
    /// The value at the start of the axis (bottom or left).
    public var lower: Double
    /// The value at the end of the axis (top or right); always greater than `lower`.
    public var upper: Double
    /// Distance between ticks: 1, 2 or 5 × 10^k.
    public var step: Double

    /// The smallest range with nice bounds covering `values`; non-finite values are ignored.
    ///
    /// With no finite values the range is 0…1. When all values are equal the range is
    /// widened around them (by 10% of their magnitude, or ±1 around 0).
    /// - Parameters:
    ///   - values: Data values.
    ///   - targetTicks: About how many intervals the axis should have.
    public init(covering values: some Sequence<Double>, targetTicks: Int = 5) {
        var low = Double.infinity, high = -Double.infinity
        for v in values where v.isFinite {
            low = min(low, v)
            high = max(high, v)
        }
        if low > high { (low, high) = (0, 1) }
        (low, high) = Self.widened(low, high)
        let step = Self.niceStep(for: high - low, targetTicks: targetTicks)
        // The tolerance keeps 0.3 / 0.1 = 2.9999999999999996 from flooring to 2.
        let lower = (low / step + 1e-9).rounded(.down) * step
        let upper = (high / step - 1e-9).rounded(.up) * step
        // Snapping may land a rounding error inside the data (3 * 0.1 > 0.3); never cut it off.
        self.init(lower: min(lower, low), upper: max(upper, high, lower + step), step: step)
    }

    /// A fixed range (for example 0…1 for rates) with ticks at the multiples of a nice step
    /// that fall inside it. A range of zero width is widened as in `init(covering:)`.
    public init(fixed range: ClosedRange<Double>, targetTicks: Int = 5) {
        let (low, high) = Self.widened(range.lowerBound, range.upperBound)
        self.init(lower: low, upper: high, step: Self.niceStep(for: high - low, targetTicks: targetTicks))
    }

    public init(lower: Double, upper: Double, step: Double) {
        precondition(lower < upper && step > 0, "an axis needs lower < upper and a positive step")
        self.lower = lower
        self.upper = upper
        self.step = step
    }

    /// Tick values from `lower` to `upper`, the multiples of `step` inside the range.
    public var ticks: [Double] {
        let tolerance = step * 1e-6
        let first = ((lower - tolerance) / step).rounded(.up)
        let last = ((upper + tolerance) / step).rounded(.down)
        guard first <= last, last - first < 1000 else { return [] }
        return stride(from: first, through: last, by: 1).map { $0 * step }
    }

    /// Where `value` sits on the axis: 0 at `lower`, 1 at `upper` (outside 0…1 beyond them).
    public func fraction(_ value: Double) -> Double {
        (value - lower) / (upper - lower)
    }

    /// A tick label with as many decimals as the step needs (`0.35`, `20`, `1.5e-07`).
    public func label(_ value: Double) -> String {
        // Values a rounding error away from zero would print as "-0.00".
        let v = abs(value) < step * 1e-6 ? 0 : value
        let decimals = max(0, Int(-(log10(step) + 1e-9).rounded(.down)))
        let magnitude = max(abs(lower), abs(upper))
        if decimals > 5 || magnitude >= 1e7 {
            return String(format: "%.3g", v)
        }
        return String(format: "%.\(decimals)f", v)
    }

    /// The nice number (1, 2 or 5 × 10^k) closest to `span / targetTicks`.
    static func niceStep(for span: Double, targetTicks: Int) -> Double {
        let raw = span / Double(max(1, targetTicks))
        let exponent = log10(raw).rounded(.down)
        let power = pow(10, exponent)
        let fraction = raw / power
        let nice: Double = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        return nice * power
    }

    /// `low…high` with a degenerate (zero-width or reversed) range opened up.
    private static func widened(_ low: Double, _ high: Double) -> (Double, Double) {
        if low < high { return (low, high) }
        let centre = (low + high) / 2
        let pad = centre == 0 ? 1 : abs(centre) * 0.1
        return (centre - pad, centre + pad)
    }
}

import Foundation

/// Linear warmup then cosine decay (Loshchilov & Hutter 2017, SGDR without restarts).
///
/// `rate(at: s)` is the rate of optimiser step s (0-based: the first update uses s = 0):
/// `peak · (s + 1) / warmupSteps` during warmup, then
/// `minimum + (peak − minimum) · (1 + cos(π · progress)) / 2` with
/// progress = (s − warmupSteps) / (totalSteps − warmupSteps), held at `minimum` afterwards.
/// `totalSteps == 0` means no decay (constant after warmup).
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    public var minimum: Float

    public init(peak: Float, warmupSteps: Int = 0, totalSteps: Int = 0, minimum: Float = 0) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minimum = minimum
    }

    /// The same schedule with its decay ending at step `steps` instead, when that is sooner
    /// and still after warmup: for a run a time budget will stop before `totalSteps`, so that
    /// the rate reaches `minimum` when the run ends rather than at steps that never run.
    public func ending(by steps: Int) -> LearningRateSchedule {
        guard totalSteps > warmupSteps, steps < totalSteps else { return self }
        var fitted = self
        fitted.totalSteps = max(steps, warmupSteps + 1)
        return fitted
    }

    /// A constant rate.
    public static func constant(_ rate: Float) -> LearningRateSchedule { .init(peak: rate) }

    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        guard totalSteps > warmupSteps else { return peak }
        let progress = min(1, Double(step - warmupSteps) / Double(totalSteps - warmupSteps))
        return minimum + (peak - minimum) * Float((1 + cos(Double.pi * progress)) / 2)
    }
}

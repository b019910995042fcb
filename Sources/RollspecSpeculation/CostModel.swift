/// Online linear model of a target forward pass's time as a function of the tokens in it,
/// t(n) = a + b · n, fitted by exponentially weighted least squares over recent steps.
///
/// From it the controller reads what one more verify token costs relative to a plain step of
/// the current batch: for B sequences a plain step costs (a + b·B) / B per sequence and one
/// more token costs b, so the relative slope b·B / (a + b·B) tends to 1 as B grows — which is
/// why large batches gain little from speculation.
public struct CostModel: Sendable {
    private var sw = 0.0, sn = 0.0, st = 0.0, snn = 0.0, snt = 0.0
    private var distinct: Set<Int> = []
    public var decay = 0.98

    public init() {}

    public mutating func observe(tokens n: Int, seconds t: Double) {
        sw = decay * sw + 1
        sn = decay * sn + Double(n)
        st = decay * st + t
        snn = decay * snn + Double(n * n)
        snt = decay * snt + Double(n) * t
        if distinct.count < 4 { distinct.insert(n) }
    }

    /// (a, b) once at least two different sizes were seen, with b clamped to be non-negative.
    public var fit: (a: Double, b: Double)? {
        guard distinct.count >= 2 else { return nil }
        let det = sw * snn - sn * sn
        guard det > 1e-12 else { return nil }
        var b = (sw * snt - sn * st) / det
        b = max(b, 0)
        let a = max((st - b * sn) / sw, 1e-9)
        return (a, b)
    }

    /// Seconds of one plain step for a batch of `batch` sequences, per sequence.
    public func plainStepSeconds(batch: Int) -> Double? {
        guard let (a, b) = fit else {
            return sw > 0 ? st / sw / Double(max(batch, 1)) : nil
        }
        return (a + b * Double(batch)) / Double(batch)
    }

    /// Marginal cost of one more verify token, in units of one sequence's plain step.
    public func verifySlope(batch: Int) -> Double? {
        guard let (a, b) = fit else { return nil }
        return b * Double(batch) / (a + b * Double(batch))
    }
}

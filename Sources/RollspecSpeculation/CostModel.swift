/// Online model of a target forward pass's time as a function of the rows in it (tokens,
/// a tree's candidates included): a line t(n) = a + b · n fitted by exponentially weighted
/// least squares over recent steps, and beside it the recent mean time of each pass size seen.
///
/// From it the controller reads what one more verify token costs relative to a plain step of
/// the current batch: for B sequences a plain step costs t(B) / B per sequence and one more
/// token the slope of t there. A pass's cost is not a line: with bfloat16 AMX products it is
/// flat up to ~16 rows and then steep (`rollspec bench decode --sequences … --batch-widths`,
/// one thread: 8 sequences 19.1 ms, 16 21.9, 32 37.4, 64 65.4), so the slope is read off the
/// measured sizes between B rows and the rows recent drafts added to them, where such sizes
/// were seen, and off the line beyond. It tends to 1 as B grows — which is why large batches
/// gain little from speculation.
public struct CostModel: Sendable {
    private var sw = 0.0, sn = 0.0, st = 0.0, snn = 0.0, snt = 0.0
    private var distinct: Set<Int> = []
    public var decay = 0.98
    /// Recent mean seconds of a pass of each size (rows), weight `sizeSmoothing` on the newest.
    private var bySize: [Int: Double] = [:]
    public var sizeSmoothing = 0.3
    /// Recent mean of the rows a pass had beyond one per sequence, per sequence (at least 1):
    /// how far past B rows the slope is read.
    private var extraPerSequence = 1.0

    public init() {}

    /// One pass of `n` rows (`sequences` of them each sequence's pending token, when known)
    /// took `t` seconds.
    public mutating func observe(tokens n: Int, seconds t: Double, sequences: Int = 0) {
        if sequences > 0 && n > sequences {
            extraPerSequence = 0.8 * extraPerSequence + 0.2 * max(1, Double(n - sequences) / Double(sequences))
        }
        sw = decay * sw + 1
        sn = decay * sn + Double(n)
        st = decay * st + t
        snn = decay * snn + Double(n * n)
        snt = decay * snt + Double(n) * t
        if distinct.count < 4 { distinct.insert(n) }
        bySize[n] = bySize[n].map { (1 - sizeSmoothing) * $0 + sizeSmoothing * t } ?? t
    }

    /// Seconds of a pass of `n` rows: the mean of that size if seen, else read linearly
    /// between the nearest sizes seen on either side, else along the line from the nearest.
    func seconds(rows n: Int, slope b: Double) -> Double? {
        if let t = bySize[n] { return t }
        let below = bySize.keys.filter { $0 < n }.max(), above = bySize.keys.filter { $0 > n }.min()
        switch (below, above) {
        case let (lo?, hi?):
            let f = Double(n - lo) / Double(hi - lo)
            return bySize[lo]! + f * (bySize[hi]! - bySize[lo]!)
        case let (lo?, nil): return bySize[lo]! + b * Double(n - lo)
        case let (nil, hi?): return max(bySize[hi]! - b * Double(hi - n), 1e-9)
        case (nil, nil): return nil
        }
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

    /// Marginal cost of one more verify token, in units of one sequence's plain step: the
    /// slope of the pass time between B rows and the rows that drafting as much as recent
    /// passes did would make (B more while nothing was drafted; at least B + 4), over t(B) / B.
    public func verifySlope(batch: Int) -> Double? {
        guard let (_, b) = fit else { return nil }
        let span = max(Int((Double(batch) * extraPerSequence).rounded()), 4)
        guard let t0 = seconds(rows: batch, slope: b), let t1 = seconds(rows: batch + span, slope: b) else { return nil }
        return max(t1 - t0, 0) / Double(span) * Double(batch) / t0
    }
}

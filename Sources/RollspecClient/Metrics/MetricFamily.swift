import RollspecBus

/// A metric family as the Prometheus text format (0.0.4) sees it: a name, a help line, a type
/// and its samples. Values only; `PrometheusTextEncoder` writes them and
/// `PrometheusTextParser` reads them back.
public struct MetricFamily: Equatable, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case counter, gauge, histogram, summary, untyped
    }

    public var name: String
    /// One line; the encoder escapes backslashes and line feeds.
    public var help: String
    public var kind: Kind
    /// In exposition order.
    public var samples: [MetricSample]

    public init(name: String, help: String = "", kind: Kind, samples: [MetricSample] = []) {
        self.name = name
        self.help = help
        self.kind = kind
        self.samples = samples
    }
}

/// One series and its value.
public struct MetricSample: Equatable, Sendable {
    /// The family name, or for a histogram the family name plus `_bucket`, `_sum` or `_count`.
    public var name: String
    /// In exposition order; names are unique.
    public var labels: [MetricLabel]
    public var value: Double

    public init(name: String, labels: [MetricLabel] = [], value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }

    /// The value of label `name`, if the sample has it.
    public subscript(label name: String) -> String? { labels.first { $0.name == name }?.value }
}

/// A Prometheus histogram's raw counts: observations per bucket, not yet cumulative.
public struct Histogram: Equatable, Sendable {
    /// Finite, increasing upper bounds; `+Inf` is implicit.
    public let upperBounds: [Double]
    /// `[upperBounds.count + 1]`: observations ≤ each bound and above the previous one; the
    /// last entry holds those above every bound.
    public private(set) var bucketCounts: [UInt64]
    public private(set) var sum: Double = 0
    public var count: UInt64 { bucketCounts.reduce(0, +) }

    public init(upperBounds: [Double]) {
        precondition(zip(upperBounds, upperBounds.dropFirst()).allSatisfy { $0 < $1 }, "bounds must increase")
        self.upperBounds = upperBounds
        bucketCounts = [UInt64](repeating: 0, count: upperBounds.count + 1)
    }

    public mutating func observe(_ value: Double) {
        guard !value.isNaN else { return }
        let i = upperBounds.firstIndex { value <= $0 } ?? upperBounds.count
        bucketCounts[i] += 1
        sum += value
    }

    /// The exposition samples: cumulative `_bucket` series (`le` last, ending with `+Inf`),
    /// then `_sum` and `_count`.
    public func samples(name: String, labels: [MetricLabel] = []) -> [MetricSample] {
        var out: [MetricSample] = []
        var cumulative: UInt64 = 0
        for (i, n) in bucketCounts.enumerated() {
            cumulative += n
            let le = i < upperBounds.count ? PrometheusTextEncoder.format(upperBounds[i]) : "+Inf"
            out.append(MetricSample(name: name + "_bucket", labels: labels + [MetricLabel("le", le)], value: Double(cumulative)))
        }
        out.append(MetricSample(name: name + "_sum", labels: labels, value: sum))
        out.append(MetricSample(name: name + "_count", labels: labels, value: Double(cumulative)))
        return out
    }
}

/// A role's metrics at one instant, for the broker to aggregate.
///
/// Layout: `timestamp_unix_nanos u64 · samples: count u32, then per sample name str ·
/// labels (count u32, then per label name str · value str) · kind u8 · value f64`.
/// Names and label names follow Prometheus' rules; a sample's label names are unique, and so is
/// each (name, label set) within a snapshot. Labels are fields, so a receiver reads them as
/// they are, with nothing to parse out of the name.
public struct MetricsSnapshot: WireMessage {
    public static let messageType = WireMessageType.metricsSnapshot

    public enum Kind: UInt8, Sendable, CaseIterable {
        /// Only grows; finite and ≥ 0.
        case counter = 0
        /// Any value but NaN (±infinity allowed).
        case gauge = 1
    }

    public struct Sample: Equatable, Sendable {
        /// The family, e.g. `rollspec_accepted_tokens_total`.
        public var name: String
        /// In the sender's order.
        public var labels: [MetricLabel]
        public var kind: Kind
        public var value: Double

        public init(name: String, labels: [MetricLabel] = [], kind: Kind, value: Double) {
            self.name = name
            self.labels = labels
            self.kind = kind
            self.value = value
        }
    }

    /// A sample's identity within a snapshot: its name and label set.
    public struct SeriesKey: Hashable, Sendable {
        public var name: String
        /// Sorted.
        public var labels: [MetricLabel]

        public init(name: String, labels: [MetricLabel]) {
            self.name = name
            self.labels = labels.sorted()
        }
    }

    public var timestampUnixNanos: UInt64
    /// In the sender's order.
    public var samples: [Sample]

    public init(timestampUnixNanos: UInt64, samples: [Sample]) {
        self.timestampUnixNanos = timestampUnixNanos
        self.samples = samples
    }

    /// Sample values by series.
    public var values: [SeriesKey: Double] {
        Dictionary(samples.map { (SeriesKey(name: $0.name, labels: $0.labels), $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// The value of the sample `name` with exactly `labels` (in any order).
    public func value(_ name: String, _ labels: [MetricLabel] = []) -> Double? {
        values[SeriesKey(name: name, labels: labels)]
    }

    public func encodePayload(into w: inout WireWriter) {
        w.u64(timestampUnixNanos)
        w.count(samples.count)
        for s in samples {
            w.string(s.name)
            w.count(s.labels.count)
            for l in s.labels {
                w.string(l.name)
                w.string(l.value)
            }
            w.u8(s.kind.rawValue)
            w.f64(s.value)
        }
    }

    public init(from r: inout WireReader) throws {
        timestampUnixNanos = try r.u64("timestamp_unix_nanos")
        let n = try r.count("samples", minimumElementSize: 4 + 4 + 1 + 8)
        var seen = Set<SeriesKey>()
        samples = []
        samples.reserveCapacity(n)
        for i in 0..<n {
            let name = try r.string("samples[\(i)].name")
            guard MetricNaming.isValidMetricName(name) else {
                throw WireError.invalidValue(field: "samples[\(i)].name", reason: "not a metric name: \(name)")
            }
            let labelCount = try r.count("samples[\(i)].labels", minimumElementSize: 4 + 4)
            var labels: [MetricLabel] = []
            var labelNames = Set<String>()
            for j in 0..<labelCount {
                let field = "samples[\(i)].labels[\(j)]"
                let label = MetricLabel(try r.string(field + ".name"), try r.string(field + ".value"))
                guard MetricNaming.isValidLabelName(label.name) else {
                    throw WireError.invalidValue(field: field + ".name", reason: "not a label name: \(label.name)")
                }
                guard labelNames.insert(label.name).inserted else {
                    throw WireError.invalidValue(field: field + ".name", reason: "label \(label.name) given twice")
                }
                labels.append(label)
            }
            let series = SeriesKey(name: name, labels: labels)
            guard seen.insert(series).inserted else {
                throw WireError.invalidValue(field: "samples[\(i)]",
                                             reason: "duplicate series \(name) \(series.labels.map { "\($0.name)=\($0.value)" })")
            }
            let kind = try r.enumeration(Kind.self, "samples[\(i)].kind")
            let value = try r.f64("samples[\(i)].value")
            if kind == .counter { try Validate.finite(value, "samples[\(i)].value", in: 0...Double.greatestFiniteMagnitude) }
            samples.append(Sample(name: name, labels: labels, kind: kind, value: value))
        }
    }
}

/// A role's metrics at one instant, for the broker to aggregate.
///
/// Layout: `timestamp_unix_nanos u64 · samples: count u32, then per sample name str · kind u8 · value f64`.
/// Names are unique within a snapshot (Prometheus-style, `rollspec_` prefix, labels allowed
/// inside the name string: `rollspec_accepted_tokens_total{proposer="draft"}`).
public struct MetricsSnapshot: WireMessage {
    public static let messageType = WireMessageType.metricsSnapshot

    public enum Kind: UInt8, Sendable, CaseIterable {
        /// Only grows; finite and ≥ 0.
        case counter = 0
        /// Any value but NaN (±infinity allowed).
        case gauge = 1
    }

    public struct Sample: Equatable, Sendable {
        public var name: String
        public var kind: Kind
        public var value: Double

        public init(name: String, kind: Kind, value: Double) {
            self.name = name
            self.kind = kind
            self.value = value
        }
    }

    public var timestampUnixNanos: UInt64
    /// In the sender's order.
    public var samples: [Sample]

    public init(timestampUnixNanos: UInt64, samples: [Sample]) {
        self.timestampUnixNanos = timestampUnixNanos
        self.samples = samples
    }

    /// Sample values by name.
    public var values: [String: Double] {
        Dictionary(samples.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    public func encodePayload(into w: inout WireWriter) {
        w.u64(timestampUnixNanos)
        w.count(samples.count)
        for s in samples {
            w.string(s.name)
            w.u8(s.kind.rawValue)
            w.f64(s.value)
        }
    }

    public init(from r: inout WireReader) throws {
        timestampUnixNanos = try r.u64("timestamp_unix_nanos")
        let n = try r.count("samples", minimumElementSize: 4 + 1 + 8)
        var seen = Set<String>()
        samples = []
        samples.reserveCapacity(n)
        for i in 0..<n {
            let name = try r.string("samples[\(i)].name")
            guard seen.insert(name).inserted else {
                throw WireError.invalidValue(field: "samples[\(i)].name", reason: "duplicate name \(name)")
            }
            let kind = try r.enumeration(Kind.self, "samples[\(i)].kind")
            let value = try r.f64("samples[\(i)].value")
            if kind == .counter { try Validate.finite(value, "samples[\(i)].value", in: 0...Double.greatestFiniteMagnitude) }
            samples.append(Sample(name: name, kind: kind, value: value))
        }
    }
}

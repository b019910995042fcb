/// One label of a metric series, `name="value"`: a field of its own on the wire
/// (`metrics_snapshot`) and in the exposition, never packed into the series name.
public struct MetricLabel: Hashable, Sendable, Comparable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    public static func < (a: MetricLabel, b: MetricLabel) -> Bool { (a.name, a.value) < (b.name, b.value) }
}

/// The Prometheus data model's name rules (prometheus.io/docs/concepts/data_model), which the
/// wire decoder and the exposition parser both apply.
public enum MetricNaming {
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    public static func isValidMetricName(_ s: String) -> Bool {
        guard let first = s.utf8.first, !isDigit(first) else { return false }
        return s.utf8.allSatisfy { isNameByte($0) || $0 == UInt8(ascii: ":") }
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, and not reserved (`__` prefix).
    public static func isValidLabelName(_ s: String) -> Bool {
        guard let first = s.utf8.first, !isDigit(first), !s.hasPrefix("__") else { return false }
        return s.utf8.allSatisfy(isNameByte)
    }

    /// `[a-zA-Z0-9_]`.
    public static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || isDigit(b) || b == 0x5F
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
}

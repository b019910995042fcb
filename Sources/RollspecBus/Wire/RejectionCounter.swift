/// Counts refused input by reason (`"checksum"`, `"truncated"`, `"chunk_duplicate"`, …).
///
/// A value; exporters (Prometheus `rollspec_bus_rejected_total{reason="…"}`) read `counts`.
public struct RejectionCounter: Sendable, Equatable {
    public private(set) var counts: [String: UInt64] = [:]

    public init() {}

    public var total: UInt64 { counts.values.reduce(0, +) }

    public subscript(reason: String) -> UInt64 { counts[reason, default: 0] }

    public mutating func record(reason: String) { counts[reason, default: 0] += 1 }

    /// Records `error` under its reason label; errors from outside the bus count as `"other"`.
    public mutating func record(_ error: any Error) {
        switch error {
        case let e as WireError: record(reason: e.reason)
        case let e as ChunkError: record(reason: e.reason)
        case let e as SequenceError: record(reason: e.reason)
        default: record(reason: "other")
        }
    }
}

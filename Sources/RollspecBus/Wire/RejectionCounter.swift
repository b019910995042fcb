/// Counts refused input by reason (`.checksum`, `.truncated`, `.chunkDuplicate`, …).
///
/// A value; exporters (Prometheus `rollspec_bus_rejected_messages_total{reason="…"}`) read
/// `counts` and label each count with the reason's raw value.
public struct RejectionCounter: Sendable, Equatable {
    public private(set) var counts: [RejectionReason: UInt64] = [:]

    public init() {}

    public var total: UInt64 { counts.values.reduce(0, +) }

    public subscript(reason: RejectionReason) -> UInt64 { counts[reason, default: 0] }

    public mutating func record(_ reason: RejectionReason) { counts[reason, default: 0] += 1 }

    /// Records `error` under its reason; errors from outside the bus count as `.other`.
    public mutating func record(_ error: any Error) { record(RejectionReason(error)) }
}

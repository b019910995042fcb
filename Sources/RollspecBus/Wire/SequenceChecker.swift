/// Why a sequence number was refused.
public enum SequenceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The same number as the last one accepted from this sender: a replay or a duplicate.
    case replayed(sender: String, sequence: UInt64)
    /// Lower than the last one accepted: reordered or replayed from further back.
    case outOfOrder(sender: String, sequence: UInt64, last: UInt64)

    /// What a `RejectionCounter` files this refusal under.
    public var reason: RejectionReason {
        switch self {
        case .replayed: .sequenceReplayed
        case .outOfOrder: .sequenceOutOfOrder
        }
    }

    public var description: String {
        switch self {
        case let .replayed(sender, sequence): "\(sender): sequence \(sequence) was already accepted"
        case let .outOfOrder(sender, sequence, last): "\(sender): sequence \(sequence) is not above \(last)"
        }
    }
}

/// Remembers the last sequence number accepted from each sender and refuses anything that is
/// not strictly greater. Gaps are allowed (lost messages are the transport's business) and
/// counted.
///
/// A restarted sender starts again from 1; the receiver calls `forget(_:)` when it learns of
/// the restart (e.g. a fresh connection), or senders put an incarnation in their id
/// (`"worker-3#<boot nonce>"`).
public struct SequenceChecker: Sendable {
    private var last: [String: UInt64] = [:]
    /// Sequence numbers skipped over, across all senders (saturating).
    public private(set) var gaps: UInt64 = 0

    public init() {}

    /// Accepts `sequence` from `sender` if it is above the last one accepted.
    /// - Throws: `SequenceError`; the checker's state is then unchanged.
    public mutating func accept(_ sequence: UInt64, from sender: String) throws {
        if let previous = last[sender] {
            if sequence == previous { throw SequenceError.replayed(sender: sender, sequence: sequence) }
            if sequence < previous { throw SequenceError.outOfOrder(sender: sender, sequence: sequence, last: previous) }
            let (sum, overflow) = gaps.addingReportingOverflow(sequence - previous - 1)
            gaps = overflow ? UInt64.max : sum  // saturates: a sender may jump to UInt64.max
        }
        last[sender] = sequence
    }

    /// The last sequence accepted from `sender`.
    public func lastSequence(of sender: String) -> UInt64? { last[sender] }

    /// Forgets `sender` so its next number is accepted whatever it is.
    public mutating func forget(_ sender: String) { last[sender] = nil }
}

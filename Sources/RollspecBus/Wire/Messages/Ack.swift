/// Confirms (or refuses) receipt of one message.
///
/// Layout: `sequence u64 · request_id str · status u8`.
public struct Ack: WireMessage {
    public static let messageType = WireMessageType.ack

    public enum Status: UInt8, Sendable, CaseIterable {
        /// Taken and kept.
        case accepted = 0
        /// Seen before (e.g. a re-dispatched request's second result); not applied again.
        case duplicate = 1
        /// Refused; an `ErrorMessage` usually says why.
        case rejected = 2
    }

    /// The acknowledged message's envelope sequence number.
    public var sequence: UInt64
    /// The request it concerns, or empty.
    public var requestID: String
    public var status: Status

    public init(sequence: UInt64, requestID: String = "", status: Status = .accepted) {
        self.sequence = sequence
        self.requestID = requestID
        self.status = status
    }

    public func encodePayload(into w: inout WireWriter) {
        w.u64(sequence)
        w.string(requestID)
        w.u8(status.rawValue)
    }

    public init(from r: inout WireReader) throws {
        sequence = try r.u64("sequence")
        requestID = try r.string("request_id")
        status = try r.enumeration(Status.self, "status")
    }
}

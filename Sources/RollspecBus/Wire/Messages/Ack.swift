/// Confirms (or refuses) receipt of one message.
///
/// Layout: `sequence u64 · request_id str · sample_index u32 · status u8`. An ack of a
/// trajectory names its sample by (request id, sample index), the key the broker resends and
/// deduplicates by; other acks leave the request id empty and the index 0.
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
    /// The sample of that request, for an ack of a trajectory; else 0.
    public var sampleIndex: UInt32
    public var status: Status

    public init(sequence: UInt64, requestID: String = "", sampleIndex: UInt32 = 0, status: Status = .accepted) {
        self.sequence = sequence
        self.requestID = requestID
        self.sampleIndex = sampleIndex
        self.status = status
    }

    /// The ack of trajectory `sample`, received as envelope `sequence`.
    public init(sequence: UInt64, sample: SampleKey, status: Status = .accepted) {
        self.init(sequence: sequence, requestID: sample.requestID, sampleIndex: sample.sampleIndex, status: status)
    }

    /// The sample acknowledged, if it is an ack of a trajectory.
    public var sample: SampleKey? {
        requestID.isEmpty ? nil : SampleKey(requestID: requestID, sampleIndex: sampleIndex)
    }

    public func encodePayload(into w: inout WireWriter) {
        w.u64(sequence)
        w.string(requestID)
        w.u32(sampleIndex)
        w.u8(status.rawValue)
    }

    public init(from r: inout WireReader) throws {
        sequence = try r.u64("sequence")
        requestID = try r.string("request_id")
        sampleIndex = try r.u32("sample_index")
        status = try r.enumeration(Status.self, "status")
    }
}

/// Tells a peer that something it sent was refused, and why.
///
/// Layout: `code u16 · reason opt<str> · message str · sequence opt<u64>`.
public struct ErrorMessage: WireMessage {
    public static let messageType = WireMessageType.error

    public enum Code: UInt16, Sendable, CaseIterable {
        /// Did not decode (truncated, bad lengths, bad values).
        case malformed = 1
        case unsupportedVersion = 2
        case unknownType = 3
        case checksum = 4
        case tooLarge = 5
        /// Sequence number not above the last one seen from the sender.
        case outOfSequence = 6
        case unauthorized = 7
        /// No capacity; retry later.
        case overloaded = 8
        /// Decoded but makes no sense (unknown request id, stale version, bad digest).
        case badRequest = 9
        case internalError = 10
    }

    public var code: Code
    /// Why, as its label in docs/wire-protocol.md §6 (`duplicate_request`), kept as sent: new
    /// labels may appear without a new protocol version, and pass through a build that does
    /// not know them (`code` still says what kind of refusal it is).
    public var reasonLabel: String?
    /// The reason, when the sender gave one this build knows: what a receiver acts on.
    public var reason: RejectionReason? { reasonLabel.flatMap(RejectionReason.init(rawValue:)) }
    /// Human-readable detail (e.g. a `WireError` description), for people, not for parsing.
    public var message: String
    /// Sequence number of the offending message, if known.
    public var sequence: UInt64?

    public init(code: Code, reason: RejectionReason? = nil, message: String, sequence: UInt64? = nil) {
        self.code = code
        self.reasonLabel = reason?.rawValue
        self.message = message
        self.sequence = sequence
    }

    public func encodePayload(into w: inout WireWriter) {
        w.u16(code.rawValue)
        w.optional(reasonLabel) { $0.string($1) }
        w.string(message)
        w.optional(sequence) { $0.u64($1) }
    }

    public init(from r: inout WireReader) throws {
        let raw = try r.u16("code")
        guard let code = Code(rawValue: raw) else { throw WireError.invalidEnum(field: "code", value: UInt64(raw)) }
        self.code = code
        reasonLabel = try r.optional("reason") { try $0.string("reason") }
        message = try r.string("message")
        sequence = try r.optional("sequence") { try $0.u64("sequence") }
    }
}

extension ErrorMessage.Code {
    /// The code's name in docs/wire-protocol.md §5.7 (`bad_request`), as clients print it.
    public var name: String {
        switch self {
        case .malformed: "malformed"
        case .unsupportedVersion: "unsupported_version"
        case .unknownType: "unknown_type"
        case .checksum: "checksum"
        case .tooLarge: "too_large"
        case .outOfSequence: "out_of_sequence"
        case .unauthorized: "unauthorized"
        case .overloaded: "overloaded"
        case .badRequest: "bad_request"
        case .internalError: "internal_error"
        }
    }

    /// The code a refusal for `reason` is answered with (docs/wire-protocol.md §6): decoding
    /// failures by what failed, sequence errors `outOfSequence`, speaking for someone else or
    /// outside one's role `unauthorized`, and messages that decode but make no sense here
    /// `badRequest`. Every reason is listed, so a new one must be given its code.
    public init(_ reason: RejectionReason) {
        switch reason {
        case .truncated, .badMagic, .unknownFlags, .trailingBytes, .lengthOutOfRange, .countTooLarge, .invalidUTF8,
             .invalidFloat, .invalidEnum, .invalidValue, .unexpectedType, .frameCount:
            self = .malformed
        case .unsupportedVersion: self = .unsupportedVersion
        case .unknownType: self = .unknownType
        case .checksum: self = .checksum
        case .tooLarge, .chunkTooLarge: self = .tooLarge
        case .sequenceReplayed, .sequenceOutOfOrder: self = .outOfSequence
        case .senderMismatch, .supersededConnection, .roleInvalid, .roleConflict, .unauthorizedPolicy,
             .unauthorizedDraft, .unauthorizedRequest, .unauthorizedTrajectory, .unauthorizedAck, .unauthorizedMetrics:
            self = .unauthorized
        case .chunkStaleVersion, .chunkInconsistent, .chunkDuplicate, .chunkOutOfRange, .chunkSizeMismatch,
             .chunkDigestMismatch, .duplicateRequest, .duplicateTrajectory, .unknownRequest, .badSampleIndex,
             .trajectoryNotAssigned, .trajectoryMismatch, .noPolicy, .checkpointMismatch, .draftVocabMismatch, .draftWidthMismatch,
             .draftHeadMismatch, .draftKindMismatch:
            self = .badRequest
        // Errors from outside the bus (a checkpoint that does not decode) are still about what
        // the peer sent.
        case .other: self = .badRequest
        }
    }
}

extension ErrorMessage {
    /// The reply to a message refused for `reason`: its code, the reason, a message for people
    /// that starts with the reason's label (`"duplicate_request: request r1 from my-loop was
    /// seen before"`), and the offending message's sequence number when it decoded.
    public init(refusing reason: RejectionReason, _ detail: String, sequence: UInt64?) {
        self.init(code: Code(reason), reason: reason, message: "\(reason.rawValue): \(detail)", sequence: sequence)
    }
}

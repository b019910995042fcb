/// Tells a peer that something it sent was refused, and why.
///
/// Layout: `code u16 · message str · sequence opt<u64>`.
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
    /// Human-readable detail (e.g. a `WireError` description).
    public var message: String
    /// Sequence number of the offending message, if known.
    public var sequence: UInt64?

    public init(code: Code, message: String, sequence: UInt64? = nil) {
        self.code = code
        self.message = message
        self.sequence = sequence
    }

    public func encodePayload(into w: inout WireWriter) {
        w.u16(code.rawValue)
        w.string(message)
        w.optional(sequence) { $0.u64($1) }
    }

    public init(from r: inout WireReader) throws {
        let raw = try r.u16("code")
        guard let code = Code(rawValue: raw) else { throw WireError.invalidEnum(field: "code", value: UInt64(raw)) }
        self.code = code
        message = try r.string("message")
        sequence = try r.optional("sequence") { try $0.u64("sequence") }
    }
}

/// Why a wire message was refused. Every case names the field it concerns, so a log line or a
/// metric label says exactly what was wrong. Decoding never crashes and never applies a
/// message that threw.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended before `field` was complete.
    case truncated(field: String, needed: Int, available: Int)
    /// The first four bytes are not `RSPC`.
    case badMagic([UInt8])
    /// A protocol version this build does not speak.
    case unsupportedVersion(UInt16)
    /// A message type this protocol version does not define.
    case unknownMessageType(UInt16)
    /// Flag bits that the protocol does not define (all must be zero).
    case unknownFlags(UInt16)
    /// A message (or a reassembled artifact) bigger than the receiver's limit.
    case messageTooLarge(size: Int, limit: Int)
    /// Bytes left over after `field` (the envelope or a payload) was complete.
    case trailingBytes(field: String, count: Int)
    /// The CRC-32C in the trailer does not match the bytes.
    case checksumMismatch(expected: UInt32, computed: UInt32)
    /// A byte length that runs past the end of the input.
    case lengthOutOfRange(field: String, length: Int, remaining: Int)
    /// An element count that cannot fit in the remaining bytes.
    case countTooLarge(field: String, count: Int, remaining: Int)
    /// A string that is not valid UTF-8.
    case invalidUTF8(field: String)
    /// A float that is NaN or outside its field's range.
    case invalidFloat(field: String, value: Double)
    /// An enumeration or boolean byte with an undefined value.
    case invalidEnum(field: String, value: UInt64)
    /// A value that breaks a rule of its message (explained in `reason`).
    case invalidValue(field: String, reason: String)
    /// An envelope that carries a different message than the caller asked for.
    case unexpectedMessageType(expected: UInt16, actual: UInt16)

    /// What a `RejectionCounter` files this refusal under.
    public var reason: RejectionReason {
        switch self {
        case .truncated: .truncated
        case .badMagic: .badMagic
        case .unsupportedVersion: .unsupportedVersion
        case .unknownMessageType: .unknownType
        case .unknownFlags: .unknownFlags
        case .messageTooLarge: .tooLarge
        case .trailingBytes: .trailingBytes
        case .checksumMismatch: .checksum
        case .lengthOutOfRange: .lengthOutOfRange
        case .countTooLarge: .countTooLarge
        case .invalidUTF8: .invalidUTF8
        case .invalidFloat: .invalidFloat
        case .invalidEnum: .invalidEnum
        case .invalidValue: .invalidValue
        case .unexpectedMessageType: .unexpectedType
        }
    }

    public var description: String {
        switch self {
        case let .truncated(field, needed, available):
            "truncated \(field): needs \(needed) bytes, \(available) left"
        case let .badMagic(bytes): "bad magic \(bytes.map { String($0, radix: 16) }), expected RSPC"
        case let .unsupportedVersion(v): "unsupported protocol version \(v) (this build speaks \(Envelope.protocolVersion))"
        case let .unknownMessageType(t): "unknown message type \(t)"
        case let .unknownFlags(f): "undefined flag bits 0x\(String(f, radix: 16))"
        case let .messageTooLarge(size, limit): "message of \(size) bytes exceeds the limit of \(limit)"
        case let .trailingBytes(field, count): "\(count) trailing bytes after \(field)"
        case let .checksumMismatch(expected, computed):
            "CRC-32C mismatch: trailer says 0x\(String(expected, radix: 16)), bytes give 0x\(String(computed, radix: 16))"
        case let .lengthOutOfRange(field, length, remaining):
            "\(field): length \(length) runs past the end (\(remaining) bytes left)"
        case let .countTooLarge(field, count, remaining):
            "\(field): count \(count) cannot fit in \(remaining) remaining bytes"
        case let .invalidUTF8(field): "\(field): invalid UTF-8"
        case let .invalidFloat(field, value): "\(field): invalid value \(value)"
        case let .invalidEnum(field, value): "\(field): undefined value \(value)"
        case let .invalidValue(field, reason): "\(field): \(reason)"
        case let .unexpectedMessageType(expected, actual): "expected message type \(expected), got \(actual)"
        }
    }
}

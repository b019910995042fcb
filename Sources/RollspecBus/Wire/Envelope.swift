import Foundation

/// Limits a receiver applies before looking at a message's contents.
public struct WireLimits: Sendable, Equatable {
    /// Largest whole message (header + sender + payload + checksum) accepted, in bytes.
    public var maxMessageSize: Int

    /// 64 MiB: room for 32 MiB weight chunks and anything else with margin.
    public static let `default` = WireLimits(maxMessageSize: 64 << 20)

    public init(maxMessageSize: Int) { self.maxMessageSize = maxMessageSize }

    /// The size past which libzmq itself drops a frame and disconnects the peer (the DEALER
    /// reconnects by itself): twice `maxMessageSize`, so that ordinary oversized frames reach the
    /// receiver to be refused and counted there, and one frame's memory stays bounded.
    public var transportLimit: Int64 { Int64(maxMessageSize) * 2 }
}

/// The envelope around every message (docs/wire-protocol.md §2), protocol version `protocolVersion`.
///
/// ```
/// offset  size  field
///  0       4    magic "RSPC" (52 53 50 43)
///  4       2    protocol version, u16 = `protocolVersion`
///  6       2    message type, u16
///  8       2    flags, u16 (none defined: must be 0)
/// 10       8    sequence number, u64 (per sender, strictly increasing)
/// 18       4    payload length P, u32
/// 22       1    sender id length S, u8 (1…255)
/// 23       S    sender id, UTF-8
/// 23+S     P    payload
/// 23+S+P   4    CRC-32C of bytes [0, 23+S+P), u32
/// ```
/// Little-endian throughout. One envelope travels as one ZeroMQ frame.
public struct Envelope: Equatable, Sendable {
    public static let magic: [UInt8] = Array("RSPC".utf8)
    /// `magic` read as a little-endian u32.
    static let magicWord = magic.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    public static let protocolVersion: UInt16 = 4
    /// Bytes before the sender id.
    public static let fixedHeaderSize = 23
    public static let checksumSize = 4

    /// Who sent the message: a role instance, e.g. `"worker-3"`; 1–255 bytes of UTF-8.
    public var sender: String
    /// Per-sender sequence number; each sender's numbers strictly increase.
    public var sequence: UInt64
    public var body: WireMessageBody

    public init(sender: String, sequence: UInt64, body: WireMessageBody) {
        self.sender = sender
        self.sequence = sequence
        self.body = body
    }

    public init<M: WireMessage>(sender: String, sequence: UInt64, message: M) {
        self.init(sender: sender, sequence: sequence, body: WireMessageBody(message))
    }

    /// The message bytes.
    ///
    /// Precondition: `sender` is 1–255 bytes of UTF-8 and the payload fits in `u32`.
    public func encode() -> Data {
        let senderBytes = Array(sender.utf8)
        precondition((1...255).contains(senderBytes.count), "sender id must be 1–255 bytes of UTF-8")
        // The payload is written straight after the header, then its length is patched in:
        // one buffer, no copy of (possibly megabytes of) payload.
        var w = WireWriter(capacity: Self.fixedHeaderSize + senderBytes.count + Self.checksumSize + body.payloadSizeHint)
        w.raw(Data(Self.magic))
        w.u16(Self.protocolVersion)
        w.u16(body.type.rawValue)
        w.u16(0)
        w.u64(sequence)
        w.u32(0)  // payload length, patched below
        w.u8(UInt8(senderBytes.count))
        w.raw(Data(senderBytes))
        let payloadStart = w.data.count
        body.message.encodePayload(into: &w)
        let payloadLength = w.data.count - payloadStart
        precondition(payloadLength <= Int(UInt32.max), "payload of \(payloadLength) bytes does not fit the u32 length field")
        w.patchU32(UInt32(payloadLength), at: 18)
        let crc = w.data.withUnsafeBytes { CRC32C.checksum($0) }
        w.u32(crc)
        return w.data
    }

    /// Decodes and validates one message.
    ///
    /// Checks in this order: header present, magic, version, size limit, exact length,
    /// CRC-32C, flags, type, sender, payload (each field), no trailing payload bytes.
    /// - Throws: `WireError` naming what is wrong.
    public init(decoding data: Data, limits: WireLimits = .default) throws {
        let header = try EnvelopeHeader(data, limits: limits)
        let data = data.startIndex == 0 ? data : Data(data)
        let senderEnd = Self.fixedHeaderSize + header.senderLength
        var senderReader = WireReader(data, range: Self.fixedHeaderSize..<senderEnd)
        sender = try senderReader.string(exactly: header.senderLength, "sender")
        sequence = header.sequence
        var payloadReader = WireReader(data, range: senderEnd..<senderEnd + header.payloadLength)
        body = try WireMessageBody.decode(header.type, from: &payloadReader)
        try payloadReader.finish("payload")
    }

    /// The payload bytes of `frame`, the message this envelope was decoded from, as its sender
    /// encoded them (no copy: a slice of `frame`).
    public func payload(in frame: Data) -> Data {
        let start = frame.startIndex + Self.fixedHeaderSize + sender.utf8.count
        return frame[start..<frame.endIndex - Self.checksumSize]
    }

    /// The message, if it is of type `M`.
    /// - Throws: `WireError.unexpectedMessageType` otherwise.
    public func message<M: WireMessage>(as _: M.Type) throws -> M {
        guard let m = body.message as? M else {
            throw WireError.unexpectedMessageType(expected: M.messageType.rawValue, actual: body.type.rawValue)
        }
        return m
    }
}

/// The fixed header of a message whose length and checksum have been verified; lets a router
/// look at type, sender and sequence without decoding the payload.
public struct EnvelopeHeader: Equatable, Sendable {
    public var type: WireMessageType
    public var sequence: UInt64
    public var senderLength: Int
    public var payloadLength: Int

    /// Verifies everything but the sender text and the payload.
    /// - Throws: `WireError`.
    public init(_ data: Data, limits: WireLimits = .default) throws {
        var r = WireReader(data)
        guard data.count >= Envelope.fixedHeaderSize else {
            if data.count >= 4, Array(data.prefix(4)) != Envelope.magic { throw WireError.badMagic(Array(data.prefix(4))) }
            throw WireError.truncated(field: "header", needed: Envelope.fixedHeaderSize, available: data.count)
        }
        guard try r.u32("magic") == Envelope.magicWord else { throw WireError.badMagic(Array(data.prefix(4))) }
        let version = try r.u16("version")
        guard version == Envelope.protocolVersion else { throw WireError.unsupportedVersion(version) }
        let rawType = try r.u16("type")
        let flags = try r.u16("flags")
        sequence = try r.u64("sequence")
        payloadLength = Int(try r.u32("payload_length"))
        senderLength = Int(try r.u8("sender_length"))
        let total = Envelope.fixedHeaderSize + senderLength + payloadLength + Envelope.checksumSize
        if total > limits.maxMessageSize || data.count > limits.maxMessageSize {
            throw WireError.messageTooLarge(size: max(total, data.count), limit: limits.maxMessageSize)
        }
        if data.count < total {
            let field = data.count < total - Envelope.checksumSize ? "payload" : "checksum"
            throw WireError.truncated(field: field, needed: total, available: data.count)
        }
        if data.count > total { throw WireError.trailingBytes(field: "message", count: data.count - total) }
        let covered = total - Envelope.checksumSize
        let (computed, stored) = data.withUnsafeBytes { bytes in
            (CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<covered])),
             UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: covered, as: UInt32.self)))
        }
        guard computed == stored else { throw WireError.checksumMismatch(expected: stored, computed: computed) }
        guard flags == 0 else { throw WireError.unknownFlags(flags) }
        guard let type = WireMessageType(rawValue: rawType) else { throw WireError.unknownMessageType(rawType) }
        guard senderLength > 0 else { throw WireError.invalidValue(field: "sender", reason: "must not be empty") }
        self.type = type
    }
}

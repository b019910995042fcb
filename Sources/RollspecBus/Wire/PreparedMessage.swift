import Foundation

/// A message whose payload is encoded and checksummed once, then framed under any number of
/// envelope headers (docs/wire-protocol.md §2).
///
/// A broker fans one weights chunk out to every worker and trainer, and again to each late
/// joiner, each time with its own sequence number (§7: per sender, strictly increasing at every
/// receiver). Re-encoding the message per recipient costs a copy and a CRC-32C of the whole
/// payload each time; framing a prepared one costs one copy and a CRC of the header alone,
/// combined with the payload's (`CRC32C.combine`). The bytes are exactly `Envelope.encode()`'s.
public struct PreparedMessage: Sendable {
    public let type: WireMessageType
    /// The payload alone (§5), canonical encoding.
    public let payload: Data
    /// CRC-32C of `payload` alone.
    let payloadChecksum: UInt32

    public init<M: WireMessage>(_ message: M) {
        var w = WireWriter(capacity: WireMessageBody(message).payloadSizeHint)
        message.encodePayload(into: &w)
        precondition(w.data.count <= Int(UInt32.max), "payload of \(w.data.count) bytes does not fit the u32 length field")
        type = M.messageType
        payload = w.data
        payloadChecksum = CRC32C.checksum(payload)
    }

    /// The message as `sender`'s number `sequence`, in a buffer libzmq can send without copying
    /// (`ZMQSocket.sendZeroCopy`), to as many peers as should get that same number.
    ///
    /// Precondition: `sender` is 1–255 bytes of UTF-8.
    public func frame(sender: String, sequence: UInt64) -> ZMQSharedBuffer {
        let senderBytes = Array(sender.utf8)
        precondition((1...255).contains(senderBytes.count), "sender id must be 1–255 bytes of UTF-8")
        let headerSize = Envelope.fixedHeaderSize + senderBytes.count
        let buffer = ZMQSharedBuffer(count: headerSize + payload.count + Envelope.checksumSize)
        let out = buffer.pointer
        func store<T: FixedWidthInteger>(_ v: T, at offset: Int) {
            withUnsafeBytes(of: v.littleEndian) { (out + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        for (i, b) in Envelope.magic.enumerated() { out.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
        store(Envelope.protocolVersion, at: 4)
        store(type.rawValue, at: 6)
        store(UInt16(0), at: 8)  // flags
        store(sequence, at: 10)
        store(UInt32(payload.count), at: 18)
        store(UInt8(senderBytes.count), at: 22)
        senderBytes.withUnsafeBytes { (out + Envelope.fixedHeaderSize).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        payload.withUnsafeBytes { if let base = $0.baseAddress { (out + headerSize).copyMemory(from: base, byteCount: $0.count) } }
        let headerChecksum = CRC32C.checksum(UnsafeRawBufferPointer(start: out, count: headerSize))
        store(CRC32C.combine(headerChecksum, payloadChecksum, lengthB: payload.count), at: headerSize + payload.count)
        return buffer
    }

    /// The message bytes as `Data` (a copy of `frame`; for tests and non-zero-copy senders).
    public func encode(sender: String, sequence: UInt64) -> Data {
        let buffer = frame(sender: sender, sequence: sequence)
        return withExtendedLifetime(buffer) { Data(buffer.bytes) }
    }
}

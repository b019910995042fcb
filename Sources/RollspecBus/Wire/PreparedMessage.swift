import Foundation

/// A message whose payload is encoded once, then framed under any number of envelope headers
/// (docs/wire-protocol.md §2).
///
/// A broker fans one weights chunk out to every worker and trainer, and again to each late
/// joiner, each time with its own sequence number (§7: per sender, strictly increasing at every
/// receiver). Framing a prepared message writes the header, copies the payload once into a
/// buffer libzmq sends without copying, and checksums that buffer while its bytes are still in
/// cache; one frame goes to every recipient of the same sequence number.
///
/// A weights chunk's bytes are not copied here: the payload is kept as its encoded fields
/// (`head`) and the chunk's bytes as they are (`tail`, shared with the message they came in or
/// the reassembled artifact), and the two meet only in the frame. The bytes are exactly
/// `Envelope.encode()`'s.
public struct PreparedMessage: Sendable {
    public let type: WireMessageType
    /// The encoded payload up to its trailing bulk bytes (all of it for most messages).
    let head: Data
    /// A weights chunk's bytes, shared, not copied; empty for other messages.
    let tail: Data

    /// The payload (§5), canonical encoding.
    public var payload: Data { head + tail }
    var payloadCount: Int { head.count + tail.count }

    public init<M: WireMessage>(_ message: M) {
        var w: WireWriter
        switch message {
        case let m as PolicyCheckpointChunk:
            w = WireWriter(capacity: 96)
            m.encodePayload(into: &w, withoutBytes: ())
            tail = m.chunk.bytes
        case let m as DraftWeightsChunk:
            w = WireWriter(capacity: 112)
            m.encodePayload(into: &w, withoutBytes: ())
            tail = m.chunk.bytes
        default:
            w = WireWriter(capacity: WireMessageBody(message).payloadSizeHint)
            message.encodePayload(into: &w)
            tail = Data()
        }
        precondition(w.data.count + tail.count <= Int(UInt32.max),
                     "payload of \(w.data.count + tail.count) bytes does not fit the u32 length field")
        type = M.messageType
        head = w.data
    }

    /// A received message to pass on under new headers with its payload as its sender encoded
    /// it (`Envelope.payload(in:)`), without encoding it again: how a broker re-wraps each
    /// trajectory (wire protocol §9). The caller has decoded the payload as `type` already.
    public init(type: WireMessageType, encodedPayload: Data) {
        precondition(encodedPayload.count <= Int(UInt32.max), "payload does not fit the u32 length field")
        self.type = type
        head = encodedPayload
        tail = Data()
    }

    /// The message as `sender`'s number `sequence`, in a buffer libzmq can send without copying
    /// (`ZMQSocket.sendZeroCopy`), to as many peers as should get that same number.
    ///
    /// Precondition: `sender` is 1–255 bytes of UTF-8.
    public func frame(sender: String, sequence: UInt64) -> ZMQSharedBuffer {
        let senderBytes = Array(sender.utf8)
        precondition((1...255).contains(senderBytes.count), "sender id must be 1–255 bytes of UTF-8")
        let headerSize = Envelope.fixedHeaderSize + senderBytes.count
        let payloadCount = payloadCount
        let buffer = ZMQSharedBuffer(count: headerSize + payloadCount + Envelope.checksumSize)
        let out = buffer.pointer
        func store<T: FixedWidthInteger>(_ v: T, at offset: Int) {
            withUnsafeBytes(of: v.littleEndian) { (out + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        for (i, b) in Envelope.magic.enumerated() { out.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
        store(Envelope.protocolVersion, at: 4)
        store(type.rawValue, at: 6)
        store(UInt16(0), at: 8)  // flags
        store(sequence, at: 10)
        store(UInt32(payloadCount), at: 18)
        store(UInt8(senderBytes.count), at: 22)
        senderBytes.withUnsafeBytes { (out + Envelope.fixedHeaderSize).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        head.withUnsafeBytes { if let base = $0.baseAddress { (out + headerSize).copyMemory(from: base, byteCount: $0.count) } }
        tail.withUnsafeBytes {
            if let base = $0.baseAddress { (out + headerSize + head.count).copyMemory(from: base, byteCount: $0.count) }
        }
        let covered = headerSize + payloadCount
        store(CRC32C.checksum(UnsafeRawBufferPointer(start: out, count: covered)), at: covered)
        return buffer
    }

    /// The message bytes as `Data` (a copy of `frame`; for tests and non-zero-copy senders).
    public func encode(sender: String, sequence: UInt64) -> Data {
        let buffer = frame(sender: sender, sequence: sequence)
        return withExtendedLifetime(buffer) { Data(buffer.bytes) }
    }
}

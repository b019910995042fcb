import CZeroMQ
import Foundation

/// A heap buffer that libzmq can send without copying.
///
/// `ZMQSocket.sendZeroCopy` retains the buffer until libzmq is done with the bytes (after the
/// I/O thread wrote them to the wire, or the inproc peer closed the message), so the caller may
/// drop its reference right after the send. Do not write to the bytes after sending.
public final class ZMQSharedBuffer: @unchecked Sendable {
    /// The bytes; `count` of them, 16-byte aligned.
    public let pointer: UnsafeMutableRawPointer
    public let count: Int

    /// An uninitialised buffer of `count` bytes; fill it through `pointer` before sending.
    public init(count: Int) {
        precondition(count >= 0)
        self.count = count
        self.pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
    }

    /// A buffer holding a copy of `data`.
    public convenience init(copying data: Data) {
        self.init(count: data.count)
        data.withUnsafeBytes { if let base = $0.baseAddress { pointer.copyMemory(from: base, byteCount: $0.count) } }
    }

    deinit { pointer.deallocate() }

    /// The bytes as a read-only buffer.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: pointer, count: count) }
}

/// libzmq's free callback: the hint is the retained owner; releasing it may free the buffer.
private let releaseOwner: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, hint in
    if let hint { Unmanaged<AnyObject>.fromOpaque(hint).release() }
}

extension ZMQSocket {
    /// Sends `buffer` as one frame without copying it (`zmq_msg_init_data` with a free callback).
    /// - Returns: `false` if the frame was not queued (`EAGAIN`); the buffer is then not retained.
    /// - Throws: `ZMQError` for any other failure.
    @discardableResult
    public func sendZeroCopy(_ buffer: ZMQSharedBuffer, more: Bool = false, dontWait: Bool = false) throws -> Bool {
        let h = try liveHandle("zmq_msg_send")
        var message = zmq_msg_t()
        let hint = Unmanaged.passRetained(buffer as AnyObject).toOpaque()
        if zmq_msg_init_data(&message, buffer.pointer, buffer.count, releaseOwner, hint) != 0 {
            Unmanaged<AnyObject>.fromOpaque(hint).release()
            throw ZMQError.last("zmq_msg_init_data")
        }
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        while zmq_msg_send(&message, h, flags) < 0 {
            let code = zmq_errno()
            if code == EINTR { continue }
            zmq_msg_close(&message)  // runs releaseOwner
            if code == EAGAIN { return false }
            throw ZMQError(operation: "zmq_msg_send", code: code)
        }
        return true  // libzmq owns the message now and calls releaseOwner when done
    }
}

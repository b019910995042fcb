import CZeroMQ
import Foundation

/// The socket patterns the bus uses.
public enum ZMQSocketType: Sendable {
    case pair, pub, sub, req, rep, dealer, router, pull, push

    var rawValue: Int32 {
        switch self {
        case .pair: ZMQ_PAIR
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        case .pull: ZMQ_PULL
        case .push: ZMQ_PUSH
        }
    }
}

/// One frame received from a socket and whether more frames of the same message follow.
public struct ZMQFrame: Sendable, Equatable {
    public var data: Data
    /// `true` when this is not the last frame of a multipart message (`ZMQ_RCVMORE`).
    public var more: Bool

    public init(data: Data, more: Bool) {
        self.data = data
        self.more = more
    }
}

/// A libzmq socket.
///
/// Not thread-safe (libzmq sockets never are): a socket belongs to one thread, or to one task
/// that does not hop threads while it uses the socket. It may be handed to another thread
/// through something that makes a full memory barrier (a lock, a queue), never used from two
/// at once. The socket is created with `linger = 0` so that closing it never blocks on unsent
/// messages; set `.linger(milliseconds:)` if a role must flush on close.
///
/// Calls retry on `EINTR`. Sends and receives that would block return `false` / `nil` instead
/// of throwing when `DONTWAIT` was asked for or when the socket's send / receive timeout ran out
/// (`EAGAIN`); every other failure throws `ZMQError`.
public final class ZMQSocket: @unchecked Sendable {
    public let type: ZMQSocketType
    let context: ZMQContext
    private(set) var handle: UnsafeMutableRawPointer?

    /// - Throws: `ZMQError` if libzmq cannot create the socket (e.g. `ETERM`, `EMFILE`).
    public init(context: ZMQContext, type: ZMQSocketType) throws {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZMQError.last("zmq_socket")
        }
        self.context = context
        self.type = type
        self.handle = handle
        try setOption(.linger(milliseconds: 0))
    }

    deinit { close() }

    /// Closes the socket. Safe to call more than once; later calls on the socket throw `ENOTSOCK`.
    public func close() {
        if let handle {
            zmq_close(handle)
            self.handle = nil
        }
    }

    func liveHandle(_ operation: @autoclosure () -> String) throws -> UnsafeMutableRawPointer {
        guard let handle else { throw ZMQError(operation: operation(), code: ENOTSOCK) }
        return handle
    }

    // MARK: Endpoints

    /// Binds to `endpoint` (`tcp://127.0.0.1:*` picks a free port; read `lastEndpoint`).
    public func bind(_ endpoint: String) throws {
        let h = try liveHandle("zmq_bind(\(endpoint))")
        if zmq_bind(h, endpoint) != 0 { throw ZMQError.last("zmq_bind(\(endpoint))") }
    }

    public func connect(_ endpoint: String) throws {
        let h = try liveHandle("zmq_connect(\(endpoint))")
        if zmq_connect(h, endpoint) != 0 { throw ZMQError.last("zmq_connect(\(endpoint))") }
    }

    public func unbind(_ endpoint: String) throws {
        let h = try liveHandle("zmq_unbind(\(endpoint))")
        if zmq_unbind(h, endpoint) != 0 { throw ZMQError.last("zmq_unbind(\(endpoint))") }
    }

    public func disconnect(_ endpoint: String) throws {
        let h = try liveHandle("zmq_disconnect(\(endpoint))")
        if zmq_disconnect(h, endpoint) != 0 { throw ZMQError.last("zmq_disconnect(\(endpoint))") }
    }

    // MARK: Sending

    /// Sends one frame (copied).
    /// - Parameters:
    ///   - more: more frames of the same message follow (`ZMQ_SNDMORE`).
    ///   - dontWait: fail with `false` instead of blocking when the message cannot be queued.
    /// - Returns: `false` if the frame was not queued (`EAGAIN`: would block, or send timeout).
    /// - Throws: `ZMQError` for anything else (e.g. `EHOSTUNREACH` on a mandatory ROUTER).
    @discardableResult
    public func send(_ frame: Data, more: Bool = false, dontWait: Bool = false) throws -> Bool {
        let h = try liveHandle("zmq_send")
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        while true {
            let rc = frame.withUnsafeBytes { zmq_send(h, $0.baseAddress, $0.count, flags) }
            if rc >= 0 { return true }
            let code = zmq_errno()
            if code == EINTR { continue }
            if code == EAGAIN { return false }
            throw ZMQError(operation: "zmq_send", code: code)
        }
    }

    /// Sends a multipart message. libzmq delivers multipart messages atomically: all frames or none.
    /// - Returns: `false` if the first frame could not be queued (`EAGAIN`); nothing was sent.
    @discardableResult
    public func send(_ frames: [Data], dontWait: Bool = false) throws -> Bool {
        precondition(!frames.isEmpty, "a message has at least one frame")
        for (i, frame) in frames.enumerated() {
            let more = i < frames.count - 1
            // Once the first frame is queued the rest always are (same pipe, same message).
            if try !send(frame, more: more, dontWait: dontWait && i == 0) { return false }
        }
        return true
    }

    // MARK: Receiving

    /// Receives one frame.
    /// - Returns: the frame and whether more follow, or `nil` if nothing arrived (`DONTWAIT` or
    ///   the receive timeout).
    ///
    /// A frame of `zeroCopyThreshold` bytes or more is not copied: the `Data` wraps libzmq's own
    /// buffer and closes the message when the last copy of it is released. A 4 MiB weights chunk
    /// is then written once, by libzmq's I/O thread, on its way to the reassembler. Smaller
    /// frames are copied, which costs less than a heap message per frame.
    public func receiveFrame(dontWait: Bool = false) throws -> ZMQFrame? {
        let h = try liveHandle("zmq_msg_recv")
        let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        zmq_msg_init(message)
        var handedOver = false
        defer {
            if !handedOver {
                zmq_msg_close(message)
                message.deallocate()
            }
        }
        while zmq_msg_recv(message, h, dontWait ? ZMQ_DONTWAIT : 0) < 0 {
            let code = zmq_errno()
            if code == EINTR { continue }
            if code == EAGAIN { return nil }
            throw ZMQError(operation: "zmq_msg_recv", code: code)
        }
        let size = zmq_msg_size(message)
        let more = zmq_msg_more(message) != 0
        guard size >= Self.zeroCopyThreshold, let base = zmq_msg_data(message) else {
            return ZMQFrame(data: size == 0 ? Data() : Data(bytes: zmq_msg_data(message), count: size), more: more)
        }
        handedOver = true
        let data = Data(bytesNoCopy: base, count: size, deallocator: .custom { _, _ in
            zmq_msg_close(message)
            message.deallocate()
        })
        return ZMQFrame(data: data, more: more)
    }

    /// Frames at least this large are received without a copy (`receiveFrame`).
    public static let zeroCopyThreshold = 64 << 10

    /// Receives every frame of the next message.
    /// - Returns: the frames (a ROUTER sees the sender's routing id first), or `nil` if nothing
    ///   arrived (`DONTWAIT` or the receive timeout).
    public func receive(dontWait: Bool = false) throws -> [Data]? {
        guard var frame = try receiveFrame(dontWait: dontWait) else { return nil }
        var frames = [frame.data]
        while frame.more {
            // The remaining frames are already here: libzmq delivers messages whole.
            guard let next = try receiveFrame() else {
                throw ZMQError(operation: "zmq_msg_recv (continuation frame)", code: EAGAIN)
            }
            frames.append(next.data)
            frame = next
        }
        return frames
    }
}

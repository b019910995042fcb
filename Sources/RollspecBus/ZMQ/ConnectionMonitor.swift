import CZeroMQ
import Foundation

/// What libzmq reports about a socket's connections below the message level: garbage that
/// never became a message (a bad greeting, a mechanism mismatch, refused credentials, a frame
/// header past the size limit) is dropped inside libzmq and would otherwise go unseen.
public enum ConnectionEvent: String, CaseIterable, Sendable, Codable {
    /// The ZMTP handshake failed for a reason libzmq does not classify.
    case handshakeFailed = "handshake_failed"
    /// The peer broke the protocol during the handshake (a bad greeting or mechanism).
    case handshakeFailedProtocol = "handshake_failed_protocol"
    /// The security handshake refused the peer's credentials.
    case handshakeFailedAuth = "handshake_failed_auth"
    /// An established connection ended (a peer that left, or a stream libzmq dropped as
    /// malformed, e.g. a frame past the size limit).
    case disconnected

    init?(zmqEvent: Int32) {
        switch zmqEvent {
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: self = .handshakeFailed
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: self = .handshakeFailedProtocol
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: self = .handshakeFailedAuth
        case ZMQ_EVENT_DISCONNECTED: self = .disconnected
        default: return nil
        }
    }

    static let mask: Int32 = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
        | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_DISCONNECTED
}

/// Counts a socket's connection events (`zmq_socket_monitor`), read from a PAIR socket that the
/// owner polls beside the monitored one. Use from the thread that owns both sockets.
public final class ConnectionMonitor {
    /// Poll this beside the monitored socket; call `drain` when it is readable.
    public let socket: ZMQSocket
    public private(set) var counts: [ConnectionEvent: UInt64] = [:]

    public init(watching watched: ZMQSocket, context: ZMQContext) throws {
        let endpoint = "inproc://rollspec-monitor-\(UUID().uuidString)"
        guard zmq_socket_monitor(try watched.liveHandle("zmq_socket_monitor"), endpoint, ConnectionEvent.mask) == 0 else {
            throw ZMQError(operation: "zmq_socket_monitor", code: zmq_errno())
        }
        socket = try ZMQSocket(context: context, type: .pair)
        try socket.connect(endpoint)
    }

    /// Reads every event waiting; returns the new ones in order.
    @discardableResult
    public func drain() throws -> [ConnectionEvent] {
        var seen: [ConnectionEvent] = []
        // Each event is two frames: 2 bytes of event id and 4 of value, then the peer's address.
        while let frames = try socket.receive(dontWait: true) {
            guard let first = frames.first, first.count >= 2 else { continue }
            let id = Int32(first[first.startIndex]) | Int32(first[first.startIndex + 1]) << 8
            if let event = ConnectionEvent(zmqEvent: id) {
                counts[event, default: 0] += 1
                seen.append(event)
            }
        }
        return seen
    }
}

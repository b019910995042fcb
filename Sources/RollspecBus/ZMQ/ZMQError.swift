import CZeroMQ
import Foundation

/// A failed libzmq call: the operation, libzmq's `errno` and its `zmq_strerror` text.
public struct ZMQError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The call that failed, e.g. `"zmq_bind(tcp://127.0.0.1:*)"`.
    public var operation: String
    /// libzmq's `errno` at the time of the failure (`EAGAIN`, `EHOSTUNREACH`, `ETERM`, …).
    public var code: Int32
    /// `zmq_strerror(code)`.
    public var message: String

    public init(operation: String, code: Int32) {
        self.operation = operation
        self.code = code
        self.message = String(cString: zmq_strerror(code))
    }

    /// The error libzmq reports for the last call on this thread.
    static func last(_ operation: String) -> ZMQError {
        ZMQError(operation: operation, code: zmq_errno())
    }

    /// The context was terminated while the call was in progress.
    public var isTerminated: Bool { code == ETERM }
    /// A ROUTER with `routerMandatory` could not route the message to its peer.
    public var isHostUnreachable: Bool { code == EHOSTUNREACH }

    public var description: String { "\(operation) failed: \(message) (errno \(code))" }
}

import CZeroMQ

/// A libzmq context: owns the I/O threads and every socket made from it.
///
/// Thread-safe. Sockets keep their context alive, so the context is terminated
/// (`zmq_ctx_term`) only after the last socket is closed and the last reference is gone.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// - Parameter ioThreads: libzmq I/O threads (`ZMQ_IO_THREADS`); one is plenty below ~1 GB/s.
    /// - Throws: `ZMQError` if libzmq cannot create the context.
    public init(ioThreads: Int32 = 1) throws {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        self.handle = handle
        if zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads) != 0 {
            let error = ZMQError.last("zmq_ctx_set(ZMQ_IO_THREADS)")
            zmq_ctx_term(handle)
            throw error
        }
    }

    deinit {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// Whether libzmq was built with `capability` (`"curve"`, `"ipc"`, `"draft"`, …).
    public static func has(_ capability: String) -> Bool { zmq_has(capability) != 0 }

    /// libzmq's version as (major, minor, patch).
    public static var version: (major: Int32, minor: Int32, patch: Int32) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (major, minor, patch)
    }
}

import CZeroMQ

/// What to wait for on a socket, and what `ZMQPoller.poll` found.
public struct ZMQPollEvents: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    /// A message can be received without blocking.
    public static let readable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLIN))
    /// A message can be sent without blocking.
    public static let writable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLOUT))
}

/// Waits on several sockets at once (`zmq_poll`). Use from the thread that owns the sockets.
public struct ZMQPoller {
    private var sockets: [ZMQSocket] = []
    private var events: [ZMQPollEvents] = []

    public init() {}

    /// Adds `socket`; returns its index in the array `poll` returns.
    @discardableResult
    public mutating func add(_ socket: ZMQSocket, events: ZMQPollEvents = .readable) -> Int {
        sockets.append(socket)
        self.events.append(events)
        return sockets.count - 1
    }

    /// Waits until at least one socket is ready or the timeout passes.
    /// - Parameter timeoutMilliseconds: 0 returns at once, -1 waits forever.
    /// - Returns: per socket (in `add` order) the events that are ready; all empty on timeout
    ///   or when a signal interrupted the wait (`EINTR`) — callers loop anyway.
    /// - Throws: `ZMQError` (e.g. `ETERM`, or a closed socket: `ENOTSOCK`).
    public func poll(timeoutMilliseconds: Int) throws -> [ZMQPollEvents] {
        var items = try zip(sockets, events).map { socket, wanted in
            zmq_pollitem_t(socket: try socket.liveHandle("zmq_poll"), fd: 0, events: wanted.rawValue, revents: 0)
        }
        let rc = zmq_poll(&items, Int32(items.count), timeoutMilliseconds)
        if rc < 0 {
            let code = zmq_errno()
            if code == EINTR { return Array(repeating: [], count: items.count) }
            throw ZMQError(operation: "zmq_poll", code: code)
        }
        return withExtendedLifetime(sockets) { items.map { ZMQPollEvents(rawValue: $0.revents) } }
    }
}

import Foundation

/// Admits CURVE clients whose public key is on an allowlist (ZeroMQ RFC 27, ZAP 1.0).
///
/// Serves `inproc://zeromq.zap.01` of one context from its own thread with a REP socket;
/// every CURVE server socket of that context then asks it about each new connection. Create
/// the handler before the server socket binds, and keep it for as long as the server runs
/// (dropping it stops it). A rejected client's handshake fails, so nothing it sends ever
/// reaches the server; the rejection is counted.
///
/// Thread-safe: the allowlist and counters sit behind a lock; the REP socket lives on the
/// handler's thread only.
public final class ZAPHandler: @unchecked Sendable {
    /// What the handler has decided so far.
    public struct Counts: Sendable, Equatable {
        public var accepted = 0
        public var rejected = 0
    }

    public static let endpoint = "inproc://zeromq.zap.01"

    /// State shared with the serving thread. The thread holds this, not the handler, so that
    /// dropping the handler stops the thread.
    private final class Shared: @unchecked Sendable {
        let lock = NSLock()
        var allowed: Set<String>
        var counts = Counts()
        var stopRequested = false
        let finished = DispatchSemaphore(value: 0)
        init(allowed: Set<String>) { self.allowed = allowed }
    }

    private let shared: Shared
    private let stopLock = NSLock()
    /// True once the serving thread started; an init that throws never starts it.
    private var running = false

    /// Binds the ZAP endpoint and starts serving.
    /// - Parameters:
    ///   - allowedClientKeys: Z85 public keys (40 characters) to admit.
    /// - Throws: `ZMQError` if the endpoint cannot be bound (e.g. `EADDRINUSE`: a handler runs already).
    public init(context: ZMQContext, allowedClientKeys: some Sequence<String>) throws {
        let shared = Shared(allowed: Set(allowedClientKeys))
        self.shared = shared
        let socket = try ZMQSocket(context: context, type: .rep)
        try socket.setOption(.receiveTimeout(milliseconds: 50))
        try socket.bind(Self.endpoint)
        // The socket moves to the handler thread here (starting a thread is a memory barrier)
        // and is used there only.
        let thread = Thread { Self.serve(socket, shared) }
        thread.name = "rollspec-zap"
        thread.start()
        running = true
    }

    deinit { stop() }

    /// Stops serving and closes the socket; waits for the thread (≤ 50 ms). Safe to call twice.
    public func stop() {
        let wasRunning = stopLock.withLock {
            defer { running = false }
            return running
        }
        guard wasRunning else { return }
        shared.lock.withLock { shared.stopRequested = true }
        shared.finished.wait()
    }

    public func allow(_ publicKey: String) { shared.lock.withLock { _ = shared.allowed.insert(publicKey) } }
    public func revoke(_ publicKey: String) { shared.lock.withLock { _ = shared.allowed.remove(publicKey) } }
    /// Both counters at one instant.
    public var counts: Counts { shared.lock.withLock { shared.counts } }
    /// Connections admitted so far.
    public var acceptedCount: Int { counts.accepted }
    /// Connections refused so far (key not on the list, wrong mechanism, malformed request).
    public var rejectedCount: Int { counts.rejected }

    private static func serve(_ socket: ZMQSocket, _ shared: Shared) {
        defer {
            // Unbinding inproc is synchronous, closing is not: unbind first so that a new
            // handler can bind the endpoint as soon as stop() returns.
            try? socket.unbind(endpoint)
            socket.close()
            shared.finished.signal()
        }
        while !shared.lock.withLock({ shared.stopRequested }) {
            do {
                guard let request = try socket.receive() else { continue }
                try socket.send(reply(to: request, shared))
            } catch {
                return  // ETERM or a closed socket: nothing more to serve
            }
        }
    }

    /// RFC 27 request: version, request id, domain, address, routing id, mechanism, credentials….
    /// Reply: version, request id, status code, status text, user id, metadata.
    private static func reply(to request: [Data], _ shared: Shared) -> [Data] {
        let requestID = request.count > 1 ? request[1] : Data()
        func answer(_ code: String, _ text: String, user: String = "") -> [Data] {
            shared.lock.withLock {
                if code == "200" { shared.counts.accepted += 1 } else { shared.counts.rejected += 1 }
            }
            return [Data("1.0".utf8), requestID, Data(code.utf8), Data(text.utf8), Data(user.utf8), Data()]
        }
        guard request.count >= 6, request[0] == Data("1.0".utf8) else {
            return answer("400", "malformed ZAP request")
        }
        guard request[5] == Data("CURVE".utf8), request.count >= 7,
              let key = CurveKeyPair.z85(request[6])
        else { return answer("400", "only CURVE clients are admitted") }
        guard shared.lock.withLock({ shared.allowed.contains(key) }) else {
            return answer("400", "client key not allowed")
        }
        return answer("200", "OK", user: key)
    }
}

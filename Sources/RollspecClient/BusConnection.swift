import Foundation
import Logging
import RollspecBus
import RollspecLogging

/// A DEALER socket to the broker that numbers what it sends.
public final class BrokerConnection {
    public let context: ZMQContext
    public let socket: ZMQSocket
    public let sender: String
    /// Where send timeouts and refused messages are logged.
    public var logger: Logger
    /// The sequence number of the last message sent (0 before the first).
    public private(set) var sequence: UInt64 = 0
    /// The broker's numbering. It names itself with an incarnation suffix, so a restarted
    /// broker is a new sender here and its numbers start afresh.
    private var sequences = SequenceChecker()

    /// - Parameter logger: the owner's logger; nil logs under the sender's name.
    public init(endpoint: String, sender: String, security: JobConfig.Security = .init(), logger: Logger? = nil) throws {
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setOption(.sendHighWaterMark(0))
        try socket.setOption(.receiveHighWaterMark(0))
        // A DEALER whose broker is gone, or refused it (CURVE), blocks in send forever; with a
        // timeout the send fails, is logged, and the role's own timeouts still fire.
        try socket.setOption(.sendTimeout(milliseconds: 2000))
        try socket.setOption(.maxMessageSize(WireLimits.default.transportLimit))
        if security.curve {
            guard !security.clientSecretKey.isEmpty else {
                throw JobConfigError.invalid(key: "security.clientSecretKey", reason: "required with security.curve")
            }
            let publicKey = security.clientPublicKey.isEmpty
                ? try CurveKeyPair.publicKey(forSecretKey: security.clientSecretKey) : security.clientPublicKey
            try socket.makeCurveClient(serverPublicKey: security.brokerPublicKey,
                                       keyPair: CurveKeyPair(publicKey: publicKey, secretKey: security.clientSecretKey))
        }
        try socket.connect(endpoint)
        self.sender = sender
        self.logger = logger ?? Logger(label: sender)
    }

    /// Sends `message`; false (and a log line) when the broker did not take it within the send
    /// timeout — unreachable, or refusing this peer.
    @discardableResult
    public func send<M: WireMessage>(_ message: M) throws -> Bool {
        sequence += 1
        let sent = try socket.send(message.encode(sender: sender, sequence: sequence))
        if !sent { logger.event(.sendTimedOut, "could not send to the broker within 2 s (unreachable or refusing this peer)") }
        return sent
    }

    /// The next decoded envelope, waiting at most `timeout` seconds; nil on timeout.
    ///
    /// Bad messages (wrong frame count, too large, malformed, replayed or out of sequence) are
    /// counted in `rejections`, logged sparingly and skipped; the wait goes on for a good one.
    public func receive(timeout: Double, rejections: inout RejectionCounter) throws -> Envelope? {
        let deadline = now() + max(0, timeout)
        var poller = ZMQPoller()
        _ = poller.add(socket)
        while true {
            let wait = max(0, Int((deadline - now()) * 1000))
            guard try poller.poll(timeoutMilliseconds: wait)[0].contains(.readable) else { return nil }
            guard let frames = try socket.receive(dontWait: true) else {
                if now() >= deadline { return nil }
                continue
            }
            do {
                // The broker sends exactly one frame per message; more is not from it.
                guard frames.count == 1 else { throw ConnectionRejection.frameCount(frames.count) }
                guard frames[0].count <= WireLimits.default.maxMessageSize else {
                    throw WireError.messageTooLarge(size: frames[0].count, limit: WireLimits.default.maxMessageSize)
                }
                let envelope = try Envelope(decoding: frames[0], limits: WireLimits.default)
                try sequences.accept(envelope.sequence, from: envelope.sender)
                return envelope
            } catch {
                let reason = rejectionReason(error)
                rejections.record(reason)
                logRejection(logger, reason: reason, count: rejections[reason], "\(error)")
            }
        }
    }

    public func close() { socket.close() }
}

/// Logs one refusal (`message_rejected`) unless the log already holds many of its kind: the
/// first five of each reason, then every 1000th, so a storm of bad input costs a few lines rather
/// than one per message. The caller counts every refusal; `count` is that reason's count so far.
public func logRejection(_ logger: Logger, reason: RejectionReason, count: UInt64, _ detail: @autoclosure () -> String) {
    guard count <= 5 || count % 1000 == 0 else { return }
    let more = count == 5 ? " (more \(reason.rawValue) refusals are logged every 1000th)" : ""
    logger.event(.messageRejected, "rejected [\(reason.rawValue) #\(count)] \(detail())\(more)",
                 ["reason": .string(reason.rawValue), "count": .stringConvertible(count)])
}

/// The reason a `RejectionCounter` files `error` under, the connection's own refusals included.
public func rejectionReason(_ error: any Error) -> RejectionReason {
    if case ConnectionRejection.frameCount = error { return .frameCount }
    return RejectionReason(error)
}

/// Refusals decided by the connection, before the wire decoder sees anything.
public enum ConnectionRejection: Error, CustomStringConvertible {
    case frameCount(Int)

    public var description: String {
        switch self {
        case .frameCount(let n): "\(n) frames, expected one"
        }
    }
}

/// Seconds on a monotonic clock.
public func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

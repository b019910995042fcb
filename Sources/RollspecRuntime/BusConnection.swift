import Foundation
import RollspecBus

/// A DEALER socket to the broker that numbers what it sends.
final class BrokerConnection {
    let context: ZMQContext
    let socket: ZMQSocket
    let sender: String
    private var sequence: UInt64 = 0

    init(endpoint: String, sender: String, security: JobConfig.Security = .init()) throws {
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setOption(.sendHighWaterMark(0))
        try socket.setOption(.receiveHighWaterMark(0))
        // A DEALER whose broker is gone, or refused it (CURVE), blocks in send forever; with a
        // timeout the send fails, is logged, and the role's own timeouts still fire.
        try socket.setOption(.sendTimeout(milliseconds: 2000))
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
    }

    /// Sends `message`; false (and a log line) when the broker did not take it within the send
    /// timeout — unreachable, or refusing this peer.
    @discardableResult
    func send<M: WireMessage>(_ message: M) throws -> Bool {
        sequence += 1
        let sent = try socket.send(message.encode(sender: sender, sequence: sequence))
        if !sent { log("\(sender): could not send to the broker within 2 s (unreachable or refusing this peer)") }
        return sent
    }

    /// The next decoded envelope, waiting at most `timeout` seconds; nil on timeout.
    /// Bad messages are counted in `rejections` and skipped.
    func receive(timeout: Double, rejections: inout RejectionCounter) throws -> Envelope? {
        var poller = ZMQPoller()
        _ = poller.add(socket)
        guard try poller.poll(timeoutMilliseconds: max(0, Int(timeout * 1000)))[0].contains(.readable) else { return nil }
        guard let frames = try socket.receive(dontWait: true), let last = frames.last else { return nil }
        do {
            return try Envelope(decoding: last)
        } catch {
            rejections.record(error)
            log("\(sender): rejected message: \(error)")
            return nil
        }
    }

    func close() { socket.close() }
}

/// One line to standard error, flushed at once (roles are often read through pipes).
func log(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Seconds on a monotonic clock.
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// The key a trajectory is deduplicated by.
func sampleKey(_ requestID: String, _ sampleIndex: UInt32) -> String { "\(requestID)#\(sampleIndex)" }

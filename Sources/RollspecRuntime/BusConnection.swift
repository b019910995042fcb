import Foundation
import RollspecBus

/// A DEALER socket to the broker that numbers what it sends.
final class BrokerConnection {
    let context: ZMQContext
    let socket: ZMQSocket
    let sender: String
    private var sequence: UInt64 = 0

    init(endpoint: String, sender: String) throws {
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setOption(.sendHighWaterMark(0))
        try socket.setOption(.receiveHighWaterMark(0))
        try socket.connect(endpoint)
        self.sender = sender
    }

    func send<M: WireMessage>(_ message: M) throws {
        sequence += 1
        _ = try socket.send(message.encode(sender: sender, sequence: sequence))
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

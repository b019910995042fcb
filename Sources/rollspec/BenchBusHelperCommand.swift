import ArgumentParser
import Foundation
import RollspecBus

/// `rollspec bench bus-helper relay|receive`: the plain-libzmq stand-ins for the broker and the
/// workers that `rollspec bench bus-roles` starts as processes for its raw baselines. No
/// protocol: frames are forwarded and counted as they are.
struct BenchBusHelperCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bus-helper", abstract: "Raw libzmq relay / receiver processes for bench bus-roles.",
        shouldDisplay: false)

    enum Mode: String, ExpressibleByArgument { case relay, receive }

    @Argument(help: "relay: a ROUTER that forwards every frame to each receiver; receive: a DEALER that counts bytes.")
    var mode: Mode

    @Option(name: .long, help: "relay: endpoint to bind; receive: endpoint to connect to.")
    var endpoint: String

    @Option(name: .long, help: "relay: peers that say hello and then get every other frame.")
    var receivers: Int = 1

    @Option(name: .long, help: "receive: bytes to wait for before reporting.")
    var bytes: Int = 0

    static let hello = Data("hello".utf8)

    func run() throws {
        let context = try ZMQContext()
        switch mode {
        case .relay: try relay(context)
        case .receive: try receive(context)
        }
    }

    /// Same socket settings as the broker: a ROUTER with unlimited high-water marks.
    private func relay(_ context: ZMQContext) throws {
        let socket = try ZMQSocket(context: context, type: .router)
        try socket.setOption(.sendHighWaterMark(0))
        try socket.setOption(.receiveHighWaterMark(0))
        try socket.bind(endpoint)
        var targets: [Data] = []
        while targets.count < receivers {
            guard let frames = try socket.receive(), frames.count == 2, frames[1] == Self.hello else { continue }
            targets.append(frames[0])
        }
        printError("relay: ready (\(targets.count) receivers)")
        while let frames = try socket.receive() {
            guard frames.count == 2 else { continue }
            for target in targets { _ = try socket.send([target, frames[1]]) }
        }
    }

    /// Same socket settings as a worker's `BrokerConnection`.
    private func receive(_ context: ZMQContext) throws {
        let socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setOption(.sendHighWaterMark(0))
        try socket.setOption(.receiveHighWaterMark(0))
        try socket.connect(endpoint)
        _ = try socket.send(Self.hello)
        var received = 0
        while received < bytes, let frames = try socket.receive(), let last = frames.last { received += last.count }
        // Monotonic time so the harness can line it up with its own clock.
        printError(String(format: "receiver: received %d bytes at t=%.6f", received, monotonicSeconds()))
    }
}

/// Seconds on the host's monotonic clock (the clock RollspecRuntime's role logs use).
func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

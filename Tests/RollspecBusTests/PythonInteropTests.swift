import Foundation
import Testing
import RollspecBus
import RollspecTesting

/// A Python client (pyzmq, encoder written from docs/wire-protocol.md) talks to a Swift ROUTER.
/// Runs wherever python3 has pyzmq, as in CI; skipped with a message elsewhere.
@Suite("Python interop", .enabled(if: Python.canImport(["zmq"]), "needs python3 with pyzmq: pip install pyzmq"))
struct PythonInteropTests {
    @Test func heartbeatFromPython() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        try router.setOption(.receiveTimeout(milliseconds: 10_000))
        try router.bind("tcp://127.0.0.1:*")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Experiments/wire-protocol/heartbeat_client.py").standardized
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, try router.lastEndpoint]
        try process.run()

        let frames = try #require(try router.receive())
        let envelope = try Envelope(decoding: frames[1])
        #expect(envelope.sender == "py-worker-7")
        let heartbeat = try envelope.message(as: Heartbeat.self)
        #expect(heartbeat == Heartbeat(
            role: .worker, index: 7, status: .ready, credit: 3, policyVersion: 42, draftVersion: 5,
            stats: .init(requestsCompleted: 10, tokensGenerated: 2000, uptimeSeconds: 12.5, acceptanceRate: 0.75)))
        try router.send([frames[0], Ack(sequence: envelope.sequence).encode(sender: "broker", sequence: 1)])
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}

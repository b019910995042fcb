import Foundation
import Testing
import RollspecBus

/// Real libzmq sockets over inproc and tcp loopback (ephemeral ports only).
@Suite("Sockets") struct SocketTests {
    static func inprocName() -> String { "inproc://test-\(UUID().uuidString)" }

    /// A ROUTER bound to `endpoint` and a DEALER connected to it, both with 2 s receive timeouts.
    static func routerDealer(_ context: ZMQContext, endpoint: String) throws -> (ZMQSocket, ZMQSocket, String) {
        let router = try ZMQSocket(context: context, type: .router)
        try router.setOption(.receiveTimeout(milliseconds: 2000))
        try router.setOption(.routerMandatory(true))
        try router.bind(endpoint)
        let bound = try router.lastEndpoint
        let dealer = try ZMQSocket(context: context, type: .dealer)
        try dealer.setOption(.routingID(Data("dealer-1".utf8)))
        try dealer.setOption(.receiveTimeout(milliseconds: 2000))
        try dealer.connect(bound)
        return (router, dealer, bound)
    }

    static func exchange(router: ZMQSocket, dealer: ZMQSocket) throws {
        let heartbeat = Heartbeat(role: .worker, index: 1, status: .ready, credit: 4, policyVersion: 3, draftVersion: 2)
        try dealer.send([Data("hello".utf8), heartbeat.encode(sender: "worker-1", sequence: 1), Data()])
        let got = try #require(try router.receive())
        #expect(got.count == 4)
        #expect(got[0] == Data("dealer-1".utf8))
        #expect(got[1] == Data("hello".utf8))
        #expect(try Envelope(decoding: got[2]).message(as: Heartbeat.self) == heartbeat)
        #expect(got[3].isEmpty)
        try router.send([got[0], Data("reply".utf8), Data([1, 2, 3])])
        #expect(try dealer.receive() == [Data("reply".utf8), Data([1, 2, 3])])
    }

    /// Frames above `zeroCopyThreshold` come back wrapping libzmq's buffer rather than copied:
    /// the bytes are intact, stay valid after the socket and context are gone, and a weights
    /// chunk decoded from one shares them (its bytes are a slice) and still equals the original.
    @Test(arguments: ["inproc", "tcp"])
    func largeFramesAreReceivedWithoutACopy(transport: String) throws {
        var context: ZMQContext? = try ZMQContext()
        let (router, dealer, _) = try Self.routerDealer(context!, endpoint: transport == "tcp" ? "tcp://127.0.0.1:*" : Self.inprocName())
        let whole = Data((0..<(3 * ZMQSocket.zeroCopyThreshold)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        let chunks = WeightsChunk.split(whole, chunkSize: 2 * ZMQSocket.zeroCopyThreshold)
        for c in chunks { try dealer.send(PolicyCheckpointChunk(version: 1, chunk: c).encode(sender: "learner", sequence: UInt64(c.index) + 1)) }
        var frames: [Data] = []
        for _ in chunks { frames.append(try #require(try router.receive())[1]) }
        router.close(); dealer.close()
        context = nil
        var assembler = ChunkReassembler()
        var result: Data?
        for (frame, sent) in zip(frames, chunks) {
            let m = try Envelope(decoding: frame).message(as: PolicyCheckpointChunk.self)
            #expect(m.chunk == sent)
            result = try assembler.add(m.chunk, version: m.version)
        }
        #expect(result == whole)
    }

    @Test func routerDealerOverInproc() throws {
        let context = try ZMQContext()
        let (router, dealer, _) = try Self.routerDealer(context, endpoint: Self.inprocName())
        try Self.exchange(router: router, dealer: dealer)
    }

    @Test func routerDealerOverTCPLoopback() throws {
        let context = try ZMQContext()
        let (router, dealer, bound) = try Self.routerDealer(context, endpoint: "tcp://127.0.0.1:*")
        #expect(bound.hasPrefix("tcp://127.0.0.1:"))
        #expect(!bound.hasSuffix(":*") && !bound.hasSuffix(":0"))
        try Self.exchange(router: router, dealer: dealer)
        try dealer.disconnect(bound)
        try router.unbind(bound)
    }

    @Test func framesReportMore() throws {
        let context = try ZMQContext()
        let endpoint = Self.inprocName()
        let a = try ZMQSocket(context: context, type: .pair)
        try a.bind(endpoint)
        let b = try ZMQSocket(context: context, type: .pair)
        try b.setOption(.receiveTimeout(milliseconds: 2000))
        try b.connect(endpoint)
        try a.send(Data("one".utf8), more: true)
        try a.send(Data("two".utf8))
        let first = try #require(try b.receiveFrame())
        #expect(first == ZMQFrame(data: Data("one".utf8), more: true))
        #expect(try b.receiveMore == true)
        #expect(try b.receiveFrame() == ZMQFrame(data: Data("two".utf8), more: false))
        #expect(try b.receiveFrame(dontWait: true) == nil)
    }

    @Test(arguments: ["inproc", "tcp"])
    func zeroCopySendOfMultiMegabyteBuffer(transport: String) throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        try pull.setOption(.receiveTimeout(milliseconds: 5000))
        try pull.bind(transport == "tcp" ? "tcp://127.0.0.1:*" : Self.inprocName())
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(try pull.lastEndpoint)

        let size = 8 << 20
        weak var released: ZMQSharedBuffer?
        var expected = Data(count: size)
        do {
            let buffer = ZMQSharedBuffer(count: size)
            let words = buffer.pointer.bindMemory(to: UInt32.self, capacity: size / 4)
            for i in 0..<size / 4 { words[i] = UInt32(truncatingIfNeeded: i &* 2_654_435_761) }
            expected = Data(buffer.bytes)
            released = buffer
            #expect(try push.sendZeroCopy(buffer))
        }
        do {
            let got = try #require(try pull.receive())
            #expect(got.count == 1)
            #expect(got[0] == expected)
        }
        // libzmq calls the free callback once it no longer needs the bytes: over inproc, once
        // the receiver let go of the frame, which it received without a copy.
        let deadline = Date().addingTimeInterval(2)
        while released != nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        #expect(released == nil, "the buffer was never released")
    }

    @Test func pollWithTimeout() throws {
        let context = try ZMQContext()
        let a = try ZMQSocket(context: context, type: .pull)
        let b = try ZMQSocket(context: context, type: .pull)
        let endpointB = Self.inprocName()
        try a.bind(Self.inprocName())
        try b.bind(endpointB)
        var poller = ZMQPoller()
        poller.add(a)
        poller.add(b)

        let start = Date()
        #expect(try poller.poll(timeoutMilliseconds: 100) == [[], []])
        #expect(Date().timeIntervalSince(start) >= 0.08)

        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpointB)
        try push.send(Data("x".utf8))
        #expect(try poller.poll(timeoutMilliseconds: 2000) == [[], .readable])
        #expect(try b.receive(dontWait: true) == [Data("x".utf8)])
        #expect(try poller.poll(timeoutMilliseconds: 0) == [[], []])
    }

    @Test func optionsAndErrors() throws {
        let context = try ZMQContext()
        let s = try ZMQSocket(context: context, type: .router)
        let options: [ZMQSocketOption] = [
            .sendHighWaterMark(100), .receiveHighWaterMark(200), .linger(milliseconds: 0), .immediate(true),
            .heartbeatInterval(milliseconds: 1000), .heartbeatTimeout(milliseconds: 3000),
            .heartbeatTTL(milliseconds: 5000), .routingID(Data("r".utf8)), .routerMandatory(true),
            .receiveTimeout(milliseconds: 10), .sendTimeout(milliseconds: 10), .maxMessageSize(1 << 20),
        ]
        for option in options { try s.setOption(option) }
        #expect(try s.getInt32(23 /* ZMQ_SNDHWM */, "ZMQ_SNDHWM") == 100)

        // Receive timeout: nil, not an error.
        try s.bind("tcp://127.0.0.1:*")
        #expect(try s.receive() == nil)

        // routerMandatory: sending to nobody fails loudly.
        do {
            try s.send([Data("nobody".utf8), Data("x".utf8)])
            Issue.record("send to an unknown peer succeeded")
        } catch let e as ZMQError {
            #expect(e.isHostUnreachable)
            #expect(e.message == "Host unreachable")
        }

        let sub = try ZMQSocket(context: context, type: .sub)
        try sub.setOption(.subscribe(Data("topic".utf8)))
        try sub.setOption(.unsubscribe(Data("topic".utf8)))

        #expect(throws: ZMQError.self) { try s.bind("nonsense://x") }
        #expect(throws: ZMQError.self) { try s.connect("tcp://") }
        #expect(throws: ZMQError.self) { try s.setOption(.curveSecretKey("too short")) }
        s.close()
        s.close()
        #expect(throws: ZMQError.self) { try s.send(Data()) }
    }

    @Test func publishSubscribeFilters() throws {
        let context = try ZMQContext()
        let endpoint = Self.inprocName()
        let pub = try ZMQSocket(context: context, type: .pub)
        try pub.bind(endpoint)
        let sub = try ZMQSocket(context: context, type: .sub)
        try sub.setOption(.subscribe(Data("draft".utf8)))
        try sub.connect(endpoint)
        // Subscriptions travel asynchronously: publish until the first one lands.
        var received: [Data]?
        let deadline = Date().addingTimeInterval(2)
        while received == nil && Date() < deadline {
            try pub.send([Data("policy".utf8), Data("p".utf8)])
            try pub.send([Data("draft".utf8), Data("d".utf8)])
            received = try sub.receive(dontWait: true)
            if received == nil { Thread.sleep(forTimeInterval: 0.005) }
        }
        #expect(received == [Data("draft".utf8), Data("d".utf8)])
    }
}

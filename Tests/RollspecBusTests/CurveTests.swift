import Foundation
import Testing
import RollspecBus

/// CURVE encryption with a ZAP allowlist (RFC 26, RFC 27) over tcp loopback.
@Suite("CURVE and ZAP") struct CurveTests {
    @Test func keyPairs() throws {
        try #require(CurveKeyPair.isAvailable, "libzmq lacks CURVE")
        let a = try CurveKeyPair.generate()
        let b = try CurveKeyPair.generate()
        #expect(a.publicKey.utf8.count == 40 && a.secretKey.utf8.count == 40)
        #expect(a != b)
        #expect(try CurveKeyPair.publicKey(forSecretKey: a.secretKey) == a.publicKey)
    }

    static func client(_ context: ZMQContext, server: CurveKeyPair, keys: CurveKeyPair, endpoint: String) throws -> ZMQSocket {
        let s = try ZMQSocket(context: context, type: .dealer)
        try s.makeCurveClient(serverPublicKey: server.publicKey, keyPair: keys)
        try s.setOption(.receiveTimeout(milliseconds: 2000))
        try s.connect(endpoint)
        return s
    }

    @Test func allowlistAdmitsOnlyKnownKeys() throws {
        try #require(CurveKeyPair.isAvailable, "libzmq lacks CURVE")
        let serverKeys = try CurveKeyPair.generate()
        let goodKeys = try CurveKeyPair.generate()
        let badKeys = try CurveKeyPair.generate()

        let serverContext = try ZMQContext()
        let zap = try ZAPHandler(context: serverContext, allowedClientKeys: [goodKeys.publicKey])
        defer { zap.stop() }
        let server = try ZMQSocket(context: serverContext, type: .router)
        try server.makeCurveServer(secretKey: serverKeys.secretKey)
        try server.setOption(.receiveTimeout(milliseconds: 2000))
        try server.bind("tcp://127.0.0.1:*")
        let endpoint = try server.lastEndpoint

        let clientContext = try ZMQContext()
        // The allowed client talks both ways.
        let good = try Self.client(clientContext, server: serverKeys, keys: goodKeys, endpoint: endpoint)
        try good.send(Ack(sequence: 1).encode(sender: "good", sequence: 1))
        let request = try #require(try server.receive())
        #expect(try Envelope(decoding: request[1]).sender == "good")
        try server.send([request[0], Data("welcome".utf8)])
        #expect(try good.receive() == [Data("welcome".utf8)])
        #expect(zap.acceptedCount == 1)

        // Another key: the handshake is refused, nothing gets through.
        let bad = try Self.client(clientContext, server: serverKeys, keys: badKeys, endpoint: endpoint)
        try bad.send(Data("let me in".utf8), dontWait: true)
        let deadline = Date().addingTimeInterval(3)
        while zap.rejectedCount == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(zap.rejectedCount >= 1)
        try server.setOption(.receiveTimeout(milliseconds: 300))
        #expect(try server.receive() == nil, "a message from a rejected client arrived")

        // The good client still works after the rejection.
        try good.send(Data("still here".utf8))
        try server.setOption(.receiveTimeout(milliseconds: 2000))
        #expect(try server.receive()?.last == Data("still here".utf8))

        // Revoking a key refuses its next connection; allowing one admits it.
        zap.revoke(goodKeys.publicKey)
        zap.allow(badKeys.publicKey)
        let rejectedBefore = zap.rejectedCount
        let revoked = try Self.client(clientContext, server: serverKeys, keys: goodKeys, endpoint: endpoint)
        try revoked.send(Data("revoked".utf8), dontWait: true)
        let readmitted = try Self.client(clientContext, server: serverKeys, keys: badKeys, endpoint: endpoint)
        try readmitted.send(Data("now allowed".utf8))
        #expect(try server.receive()?.last == Data("now allowed".utf8))
        let until = Date().addingTimeInterval(3)
        while zap.rejectedCount == rejectedBefore && Date() < until { Thread.sleep(forTimeInterval: 0.01) }
        #expect(zap.rejectedCount > rejectedBefore)
    }

    @Test func droppingTheHandlerFreesTheEndpoint() throws {
        let context = try ZMQContext()
        do { _ = try ZAPHandler(context: context, allowedClientKeys: []) }
        let again = try ZAPHandler(context: context, allowedClientKeys: [])  // would be EADDRINUSE if still bound
        // A second handler on a context that has one fails cleanly (and its init does not hang).
        do {
            _ = try ZAPHandler(context: context, allowedClientKeys: [])
            Issue.record("two ZAP handlers bound one context")
        } catch let e as ZMQError {
            #expect(e.code == EADDRINUSE)
        }
        again.stop()
        again.stop()
    }

    @Test func clientWithoutCurveCannotTalkToCurveServer() throws {
        try #require(CurveKeyPair.isAvailable, "libzmq lacks CURVE")
        let serverKeys = try CurveKeyPair.generate()
        let context = try ZMQContext()
        let zap = try ZAPHandler(context: context, allowedClientKeys: [])
        defer { zap.stop() }
        let server = try ZMQSocket(context: context, type: .router)
        try server.makeCurveServer(secretKey: serverKeys.secretKey)
        try server.setOption(.receiveTimeout(milliseconds: 300))
        try server.bind("tcp://127.0.0.1:*")
        let plain = try ZMQSocket(context: try ZMQContext(), type: .dealer)
        try plain.connect(try server.lastEndpoint)
        try plain.send(Data("plaintext".utf8), dontWait: true)
        #expect(try server.receive() == nil)
    }
}

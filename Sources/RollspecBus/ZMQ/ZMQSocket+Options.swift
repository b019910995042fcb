import CZeroMQ
import Foundation

/// Socket options the bus sets, with their units in the case names.
public enum ZMQSocketOption: Sendable {
    /// `ZMQ_SNDHWM`: messages queued per peer before sends block or drop (0 = unlimited).
    case sendHighWaterMark(Int32)
    /// `ZMQ_RCVHWM`.
    case receiveHighWaterMark(Int32)
    /// `ZMQ_LINGER`: how long `close` keeps unsent messages (-1 forever, 0 drop at once).
    case linger(milliseconds: Int32)
    /// `ZMQ_IMMEDIATE`: queue only to completed connections.
    case immediate(Bool)
    /// `ZMQ_HEARTBEAT_IVL`: ZMTP PING interval (0 = off).
    case heartbeatInterval(milliseconds: Int32)
    /// `ZMQ_HEARTBEAT_TIMEOUT`: drop the connection if no traffic follows a PING for this long.
    case heartbeatTimeout(milliseconds: Int32)
    /// `ZMQ_HEARTBEAT_TTL`: asks the peer to time us out after this long (0.1 s granularity).
    case heartbeatTTL(milliseconds: Int32)
    /// `ZMQ_ROUTING_ID`: the identity a ROUTER peer sees (1–255 bytes, not starting with 0x00).
    case routingID(Data)
    /// `ZMQ_ROUTER_MANDATORY`: unroutable sends fail with `EHOSTUNREACH` instead of vanishing.
    case routerMandatory(Bool)
    /// `ZMQ_RCVTIMEO`: receives give up after this long (-1 block forever).
    case receiveTimeout(milliseconds: Int32)
    /// `ZMQ_SNDTIMEO`.
    case sendTimeout(milliseconds: Int32)
    /// `ZMQ_MAXMSGSIZE`: peers sending a bigger message are disconnected (-1 = no limit).
    case maxMessageSize(Int64)
    /// `ZMQ_SUBSCRIBE` on a SUB socket (empty = everything).
    case subscribe(Data)
    /// `ZMQ_UNSUBSCRIBE`.
    case unsubscribe(Data)
    /// `ZMQ_ZAP_DOMAIN`.
    case zapDomain(String)
    /// `ZMQ_CURVE_SERVER`.
    case curveServer(Bool)
    /// `ZMQ_CURVE_PUBLICKEY` (Z85, 40 characters).
    case curvePublicKey(String)
    /// `ZMQ_CURVE_SECRETKEY` (Z85, 40 characters).
    case curveSecretKey(String)
    /// `ZMQ_CURVE_SERVERKEY`: the server's public key, on a client (Z85, 40 characters).
    case curveServerKey(String)
}

extension ZMQSocket {
    /// Sets one option.
    /// - Throws: `ZMQError` (`EINVAL` for a value libzmq refuses, e.g. a malformed key).
    public func setOption(_ option: ZMQSocketOption) throws {
        switch option {
        case .sendHighWaterMark(let v): try setInt32(ZMQ_SNDHWM, v, "ZMQ_SNDHWM")
        case .receiveHighWaterMark(let v): try setInt32(ZMQ_RCVHWM, v, "ZMQ_RCVHWM")
        case .linger(let v): try setInt32(ZMQ_LINGER, v, "ZMQ_LINGER")
        case .immediate(let v): try setInt32(ZMQ_IMMEDIATE, v ? 1 : 0, "ZMQ_IMMEDIATE")
        case .heartbeatInterval(let v): try setInt32(ZMQ_HEARTBEAT_IVL, v, "ZMQ_HEARTBEAT_IVL")
        case .heartbeatTimeout(let v): try setInt32(ZMQ_HEARTBEAT_TIMEOUT, v, "ZMQ_HEARTBEAT_TIMEOUT")
        case .heartbeatTTL(let v): try setInt32(ZMQ_HEARTBEAT_TTL, v, "ZMQ_HEARTBEAT_TTL")
        case .routingID(let v): try setBytes(ZMQ_ROUTING_ID, v, "ZMQ_ROUTING_ID")
        case .routerMandatory(let v): try setInt32(ZMQ_ROUTER_MANDATORY, v ? 1 : 0, "ZMQ_ROUTER_MANDATORY")
        case .receiveTimeout(let v): try setInt32(ZMQ_RCVTIMEO, v, "ZMQ_RCVTIMEO")
        case .sendTimeout(let v): try setInt32(ZMQ_SNDTIMEO, v, "ZMQ_SNDTIMEO")
        case .maxMessageSize(let v):
            var value = v
            try setRaw(ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size, "ZMQ_MAXMSGSIZE")
        case .subscribe(let v): try setBytes(ZMQ_SUBSCRIBE, v, "ZMQ_SUBSCRIBE")
        case .unsubscribe(let v): try setBytes(ZMQ_UNSUBSCRIBE, v, "ZMQ_UNSUBSCRIBE")
        case .zapDomain(let v): try setBytes(ZMQ_ZAP_DOMAIN, Data(v.utf8), "ZMQ_ZAP_DOMAIN")
        case .curveServer(let v): try setInt32(ZMQ_CURVE_SERVER, v ? 1 : 0, "ZMQ_CURVE_SERVER")
        case .curvePublicKey(let k): try setZ85(ZMQ_CURVE_PUBLICKEY, k, "ZMQ_CURVE_PUBLICKEY")
        case .curveSecretKey(let k): try setZ85(ZMQ_CURVE_SECRETKEY, k, "ZMQ_CURVE_SECRETKEY")
        case .curveServerKey(let k): try setZ85(ZMQ_CURVE_SERVERKEY, k, "ZMQ_CURVE_SERVERKEY")
        }
    }

    /// Makes this socket a CURVE server with `secretKey` (Z85). Set before `bind`.
    /// Clients are admitted by the context's `ZAPHandler` if one runs, otherwise all are.
    public func makeCurveServer(secretKey: String) throws {
        try setOption(.curveServer(true))
        try setOption(.curveSecretKey(secretKey))
    }

    /// Makes this socket a CURVE client of the server with `serverPublicKey`. Set before `connect`.
    public func makeCurveClient(serverPublicKey: String, keyPair: CurveKeyPair) throws {
        try setOption(.curveServerKey(serverPublicKey))
        try setOption(.curvePublicKey(keyPair.publicKey))
        try setOption(.curveSecretKey(keyPair.secretKey))
    }

    /// The endpoint last bound (`ZMQ_LAST_ENDPOINT`), with the real port after binding to `*`.
    public var lastEndpoint: String {
        get throws {
            var buffer = [CChar](repeating: 0, count: 256)
            var size = buffer.count
            let h = try liveHandle("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
            if zmq_getsockopt(h, ZMQ_LAST_ENDPOINT, &buffer, &size) != 0 {
                throw ZMQError.last("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
            }
            return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// Whether the last frame received has more frames after it (`ZMQ_RCVMORE`).
    public var receiveMore: Bool {
        get throws { try getInt32(ZMQ_RCVMORE, "ZMQ_RCVMORE") != 0 }
    }

    /// Reads an integer option, e.g. `ZMQ_SNDHWM`, to check what took effect.
    public func getInt32(_ option: Int32, _ name: String) throws -> Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        let h = try liveHandle("zmq_getsockopt(\(name))")
        if zmq_getsockopt(h, option, &value, &size) != 0 { throw ZMQError.last("zmq_getsockopt(\(name))") }
        return value
    }

    private func setInt32(_ option: Int32, _ value: Int32, _ name: String) throws {
        var v = value
        try setRaw(option, &v, MemoryLayout<Int32>.size, name)
    }

    private func setBytes(_ option: Int32, _ value: Data, _ name: String) throws {
        let h = try liveHandle("zmq_setsockopt(\(name))")
        let rc = value.withUnsafeBytes { zmq_setsockopt(h, option, $0.baseAddress, $0.count) }
        if rc != 0 { throw ZMQError.last("zmq_setsockopt(\(name))") }
    }

    /// Z85 keys go in as 41 bytes: 40 characters and a NUL, which libzmq decodes itself.
    private func setZ85(_ option: Int32, _ key: String, _ name: String) throws {
        guard key.utf8.count == 40 else { throw ZMQError(operation: "zmq_setsockopt(\(name))", code: EINVAL) }
        try setBytes(option, Data(key.utf8) + [0], name)
    }

    private func setRaw(_ option: Int32, _ value: UnsafeRawPointer, _ size: Int, _ name: String) throws {
        let h = try liveHandle("zmq_setsockopt(\(name))")
        if zmq_setsockopt(h, option, value, size) != 0 { throw ZMQError.last("zmq_setsockopt(\(name))") }
    }
}

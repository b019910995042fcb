import CZeroMQ
import Foundation

/// A CURVE (Curve25519) key pair as Z85 text, 40 characters each (ZeroMQ RFC 32).
///
/// The public key may be shared (allowlists, configs); the secret key stays with its role.
public struct CurveKeyPair: Sendable, Equatable, Codable {
    public var publicKey: String
    public var secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Whether libzmq was built with CURVE (libsodium); without it CURVE options fail with `EINVAL`.
    public static var isAvailable: Bool { ZMQContext.has("curve") }

    /// A fresh random key pair (`zmq_curve_keypair`).
    /// - Throws: `ZMQError` (`ENOTSUP` if libzmq lacks CURVE).
    public static func generate() throws -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        if zmq_curve_keypair(&publicKey, &secretKey) != 0 { throw ZMQError.last("zmq_curve_keypair") }
        return CurveKeyPair(publicKey: string(publicKey), secretKey: string(secretKey))
    }

    /// Derives the public key from a Z85 secret key (`zmq_curve_public`).
    public static func publicKey(forSecretKey secretKey: String) throws -> String {
        guard secretKey.utf8.count == 40 else { throw ZMQError(operation: "zmq_curve_public", code: EINVAL) }
        var publicKey = [CChar](repeating: 0, count: 41)
        if zmq_curve_public(&publicKey, secretKey) != 0 { throw ZMQError.last("zmq_curve_public") }
        return string(publicKey)
    }

    /// Z85 text of a 32-byte binary key (as ZAP requests carry it).
    public static func z85(_ binaryKey: Data) -> String? {
        guard binaryKey.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        let ok = binaryKey.withUnsafeBytes {
            zmq_z85_encode(&text, $0.bindMemory(to: UInt8.self).baseAddress, 32) != nil
        }
        return ok ? string(text) : nil
    }

    private static func string(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

import Foundation

/// Message type codes of the protocol (the envelope's `type` field).
public enum WireMessageType: UInt16, Sendable, CaseIterable {
    case policyCheckpointChunk = 1
    case draftWeightsChunk = 2
    case rolloutRequest = 3
    case trajectory = 4
    case ack = 5
    case heartbeat = 6
    case metricsSnapshot = 7
    case error = 8
    case acks = 9
}

/// A typed payload: how it is written after the envelope header and read back.
public protocol WireMessage: Sendable, Equatable {
    static var messageType: WireMessageType { get }
    /// Appends the payload (docs/wire-protocol.md §5 gives each layout).
    func encodePayload(into writer: inout WireWriter)
    /// Reads the payload, validating every field.
    /// - Throws: `WireError` naming the first field that is wrong.
    init(from reader: inout WireReader) throws
}

extension WireMessage {
    /// The payload bytes alone (no envelope).
    public func encodePayload() -> Data {
        var writer = WireWriter()
        encodePayload(into: &writer)
        return writer.data
    }

    /// Decodes payload bytes alone; every byte must be used.
    /// - Throws: `WireError`; `trailingBytes(field: "payload")` if bytes are left over.
    public init(decodingPayload payload: Data) throws {
        var reader = WireReader(payload)
        self = try Self(from: &reader)
        try reader.finish("payload")
    }

    /// The whole wire message: envelope, this payload and the checksum.
    public func encode(sender: String, sequence: UInt64) -> Data {
        Envelope(sender: sender, sequence: sequence, message: self).encode()
    }
}

/// Any protocol-v1 message, as carried by an `Envelope`.
public enum WireMessageBody: Equatable, Sendable {
    case policyCheckpointChunk(PolicyCheckpointChunk)
    case draftWeightsChunk(DraftWeightsChunk)
    case rolloutRequest(RolloutRequest)
    case trajectory(Trajectory)
    case ack(Ack)
    case heartbeat(Heartbeat)
    case metricsSnapshot(MetricsSnapshot)
    case error(ErrorMessage)
    case acks(Acks)

    public init<M: WireMessage>(_ message: M) {
        switch message {
        case let m as PolicyCheckpointChunk: self = .policyCheckpointChunk(m)
        case let m as DraftWeightsChunk: self = .draftWeightsChunk(m)
        case let m as RolloutRequest: self = .rolloutRequest(m)
        case let m as Trajectory: self = .trajectory(m)
        case let m as Ack: self = .ack(m)
        case let m as Heartbeat: self = .heartbeat(m)
        case let m as MetricsSnapshot: self = .metricsSnapshot(m)
        case let m as ErrorMessage: self = .error(m)
        case let m as Acks: self = .acks(m)
        default: preconditionFailure("\(M.self) is not a protocol-v1 message")
        }
    }

    /// The message inside, as an existential.
    public var message: any WireMessage {
        switch self {
        case .policyCheckpointChunk(let m): m
        case .draftWeightsChunk(let m): m
        case .rolloutRequest(let m): m
        case .trajectory(let m): m
        case .ack(let m): m
        case .heartbeat(let m): m
        case .metricsSnapshot(let m): m
        case .error(let m): m
        case .acks(let m): m
        }
    }

    public var type: WireMessageType { Swift.type(of: message).messageType }

    /// About how many payload bytes encoding will write, so the buffer is allocated once.
    var payloadSizeHint: Int {
        switch self {
        case .policyCheckpointChunk(let m): 96 + m.chunk.bytes.count
        case .draftWeightsChunk(let m): 112 + m.chunk.bytes.count
        case .rolloutRequest(let m): 128 + 4 * (m.promptTokens.count + m.stopTokens.count)
        case .trajectory(let m):
            256 + 8 * (m.promptTokens.count + 2 * m.responseTokens.count) + 8 * (m.targetTopK?.tokenIDs.count ?? 0)
        case .acks(let m): 8 + 32 * m.entries.count
        default: 256
        }
    }

    static func decode(_ type: WireMessageType, from reader: inout WireReader) throws -> WireMessageBody {
        switch type {
        case .policyCheckpointChunk: .policyCheckpointChunk(try PolicyCheckpointChunk(from: &reader))
        case .draftWeightsChunk: .draftWeightsChunk(try DraftWeightsChunk(from: &reader))
        case .rolloutRequest: .rolloutRequest(try RolloutRequest(from: &reader))
        case .trajectory: .trajectory(try Trajectory(from: &reader))
        case .ack: .ack(try Ack(from: &reader))
        case .heartbeat: .heartbeat(try Heartbeat(from: &reader))
        case .metricsSnapshot: .metricsSnapshot(try MetricsSnapshot(from: &reader))
        case .error: .error(try ErrorMessage(from: &reader))
        case .acks: .acks(try Acks(from: &reader))
        }
    }
}

/// Checks shared by several payloads.
enum Validate {
    static func finite(_ v: Double, _ field: String, in range: ClosedRange<Double>) throws {
        guard v.isFinite, range.contains(v) else { throw WireError.invalidFloat(field: field, value: v) }
    }
}

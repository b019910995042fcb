import Foundation
import RollspecDigest

/// One piece of a safetensors file (a policy checkpoint or a draft) sent in chunks.
///
/// The bytes are opaque to the bus. Chunk `index` of `count` holds `bytes` at `offset` of the
/// whole; `totalSize` and `digest` (the whole's `PieceDigest`) repeat in every chunk so a receiver
/// can check each chunk against the others and the assembled whole against the digest.
///
/// Layout: `index u32 · count u32 · offset u64 · totalSize u64 · digest [32]u8 · bytes (u32 length + bytes)`.
public struct WeightsChunk: Equatable, Sendable {
    public static let digestSize = 32
    /// 4 MiB: far below the 64 MiB default message limit, big enough that per-message costs vanish.
    public static let defaultChunkSize = 4 << 20

    public var index: UInt32
    public var count: UInt32
    public var offset: UInt64
    public var totalSize: UInt64
    /// `PieceDigest` of all `totalSize` bytes (wire protocol §4).
    public var digest: Data
    public var bytes: Data

    public init(index: UInt32, count: UInt32, offset: UInt64, totalSize: UInt64, digest: Data, bytes: Data) {
        self.index = index
        self.count = count
        self.offset = offset
        self.totalSize = totalSize
        self.digest = digest
        self.bytes = bytes
    }

    /// Cuts `whole` into chunks of at most `chunkSize` bytes (one empty chunk if `whole` is empty).
    /// The chunks' bytes are slices of `whole`, sharing its storage rather than copying it:
    /// each is indexed from its `startIndex` (its offset in `whole`), not from 0.
    public static func split(_ whole: Data, chunkSize: Int = defaultChunkSize) -> [WeightsChunk] {
        precondition(chunkSize > 0)
        let whole = whole.startIndex == 0 ? whole : Data(whole)
        let digest = PieceDigest.hash(whole)
        let count = max(1, (whole.count + chunkSize - 1) / chunkSize)
        return (0..<count).map { i in
            let start = i * chunkSize
            let end = min(start + chunkSize, whole.count)
            return WeightsChunk(
                index: UInt32(i), count: UInt32(count), offset: UInt64(start), totalSize: UInt64(whole.count),
                digest: digest, bytes: whole[start..<end])
        }
    }

    func encode(into w: inout WireWriter) {
        encodeHead(into: &w)
        w.raw(bytes)
    }

    /// Everything up to the bytes themselves, their length prefix included: what
    /// `PreparedMessage` encodes, keeping the bytes apart.
    func encodeHead(into w: inout WireWriter) {
        precondition(digest.count == Self.digestSize, "digest must be 32 bytes (piecewise SHA-256)")
        precondition(bytes.count <= Int(UInt32.max), "chunk of \(bytes.count) bytes does not fit the u32 length field")
        w.u32(index)
        w.u32(count)
        w.u64(offset)
        w.u64(totalSize)
        w.raw(digest)
        w.u32(UInt32(bytes.count))
    }

    init(from r: inout WireReader) throws {
        index = try r.u32("chunk.index")
        count = try r.u32("chunk.count")
        offset = try r.u64("chunk.offset")
        totalSize = try r.u64("chunk.total_size")
        digest = try r.raw(Self.digestSize, "chunk.digest")
        bytes = try r.bytes("chunk.bytes")
        guard count >= 1 else { throw WireError.invalidValue(field: "chunk.count", reason: "must be at least 1") }
        guard index < count else {
            throw WireError.invalidValue(field: "chunk.index", reason: "\(index) is not below count \(count)")
        }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(bytes.count))
        guard !overflow, end <= totalSize else {
            throw WireError.invalidValue(field: "chunk.offset", reason: "chunk ends past total_size \(totalSize)")
        }
    }
}

/// A chunk of policy checkpoint `version` (safetensors bytes).
///
/// Layout: `version u64 · chunk`.
public struct PolicyCheckpointChunk: WireMessage {
    public static let messageType = WireMessageType.policyCheckpointChunk
    public var version: UInt64
    public var chunk: WeightsChunk

    public init(version: UInt64, chunk: WeightsChunk) {
        self.version = version
        self.chunk = chunk
    }

    public func encodePayload(into w: inout WireWriter) {
        w.u64(version)
        chunk.encode(into: &w)
    }

    /// The payload but the chunk's bytes (`PreparedMessage`).
    func encodePayload(into w: inout WireWriter, withoutBytes: Void) {
        w.u64(version)
        chunk.encodeHead(into: &w)
    }

    public init(from r: inout WireReader) throws {
        version = try r.u64("version")
        chunk = try WeightsChunk(from: &r)
    }
}

/// A chunk of draft `draftVersion`, trained against policy `policyVersion`, with the acceptance
/// rate the trainer measured on held-out recent trajectories.
///
/// Layout: `draft_version u64 · policy_version u64 · acceptance_rate f64 (0…1) · chunk`.
public struct DraftWeightsChunk: WireMessage {
    public static let messageType = WireMessageType.draftWeightsChunk
    public var draftVersion: UInt64
    public var policyVersion: UInt64
    /// accepted draft tokens / drafted tokens on the trainer's evaluation set.
    public var acceptanceRate: Double
    public var chunk: WeightsChunk

    public init(draftVersion: UInt64, policyVersion: UInt64, acceptanceRate: Double, chunk: WeightsChunk) {
        self.draftVersion = draftVersion
        self.policyVersion = policyVersion
        self.acceptanceRate = acceptanceRate
        self.chunk = chunk
    }

    public func encodePayload(into w: inout WireWriter) {
        w.u64(draftVersion)
        w.u64(policyVersion)
        w.f64(acceptanceRate)
        chunk.encode(into: &w)
    }

    /// The payload but the chunk's bytes (`PreparedMessage`).
    func encodePayload(into w: inout WireWriter, withoutBytes: Void) {
        w.u64(draftVersion)
        w.u64(policyVersion)
        w.f64(acceptanceRate)
        chunk.encodeHead(into: &w)
    }

    public init(from r: inout WireReader) throws {
        draftVersion = try r.u64("draft_version")
        policyVersion = try r.u64("policy_version")
        acceptanceRate = try r.f64("acceptance_rate")
        try Validate.finite(acceptanceRate, "acceptance_rate", in: 0...1)
        chunk = try WeightsChunk(from: &r)
    }
}

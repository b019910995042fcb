import Foundation

/// Why a chunk was refused. Nothing already collected is lost by a refused chunk, except
/// on `digestMismatch`, where the whole transfer is dropped (its bytes cannot be trusted).
public enum ChunkError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A chunk of an older version than the one being (or last) assembled.
    case staleVersion(received: UInt64, current: UInt64)
    /// `count`, `totalSize` or `digest` differ from the transfer's first chunk.
    case inconsistent(field: String)
    /// This chunk index arrived already.
    case duplicate(index: UInt32)
    /// Index not below count, or bytes outside the whole, or overlapping another chunk.
    case outOfRange(index: UInt32, reason: String)
    /// The declared whole is bigger than this receiver accepts.
    case tooLarge(size: UInt64, limit: UInt64)
    /// All chunks arrived but they do not tile the whole (sizes do not add up).
    case sizeMismatch(received: UInt64, expected: UInt64)
    /// The assembled bytes do not hash to the announced SHA-256.
    case digestMismatch

    /// What a `RejectionCounter` files this refusal under.
    public var reason: RejectionReason {
        switch self {
        case .staleVersion: .chunkStaleVersion
        case .inconsistent: .chunkInconsistent
        case .duplicate: .chunkDuplicate
        case .outOfRange: .chunkOutOfRange
        case .tooLarge: .chunkTooLarge
        case .sizeMismatch: .chunkSizeMismatch
        case .digestMismatch: .chunkDigestMismatch
        }
    }

    public var description: String {
        switch self {
        case let .staleVersion(received, current):
            received == current ? "chunk of version \(received), which is complete already" : "chunk of version \(received) is older than version \(current)"
        case let .inconsistent(field): "chunk \(field) differs from the transfer's first chunk"
        case let .duplicate(index): "chunk \(index) arrived twice"
        case let .outOfRange(index, reason): "chunk \(index): \(reason)"
        case let .tooLarge(size, limit): "artifact of \(size) bytes exceeds the limit of \(limit)"
        case let .sizeMismatch(received, expected): "chunks hold \(received) bytes, total_size says \(expected)"
        case .digestMismatch: "assembled bytes do not match the SHA-256 digest"
        }
    }
}

/// Collects the chunks of one artifact stream (policy checkpoints, or drafts) and yields the
/// whole once every chunk is in and the SHA-256 checks.
///
/// Chunks may arrive in any order. A chunk of a newer version abandons a partial older one
/// (the newer supersedes it); chunks of older versions are refused. Memory grows with the bytes
/// actually received, never with what a `totalSize` field claims.
public struct ChunkReassembler: Sendable {
    /// Largest artifact accepted, in bytes.
    public let maxTotalSize: UInt64
    /// The version being assembled, or the last one completed.
    public private(set) var version: UInt64?
    private var completed = false
    private var first: WeightsChunk?
    private var chunks: [UInt32: WeightsChunk] = [:]

    public init(maxTotalSize: UInt64 = 64 << 30) { self.maxTotalSize = maxTotalSize }

    /// Indices not yet received for the current version (empty when idle or complete).
    public var missingChunks: [UInt32] {
        guard let first, !completed else { return [] }
        return (0..<first.count).filter { chunks[$0] == nil }
    }

    /// Bytes held for the current partial transfer.
    public var bufferedBytes: Int { chunks.values.reduce(0) { $0 + $1.bytes.count } }

    /// Adds one chunk.
    /// - Returns: the whole artifact when this chunk completed it and the digest matched, else nil.
    /// - Throws: `ChunkError`; the chunk is then ignored.
    public mutating func add(_ chunk: WeightsChunk, version: UInt64) throws -> Data? {
        if let current = self.version {
            if version < current || (version == current && completed) {
                throw ChunkError.staleVersion(received: version, current: current)
            }
            if version > current { reset() }
        }
        guard chunk.totalSize <= maxTotalSize else { throw ChunkError.tooLarge(size: chunk.totalSize, limit: maxTotalSize) }
        guard chunk.count >= 1, chunk.index < chunk.count else {
            throw ChunkError.outOfRange(index: chunk.index, reason: "index not below count \(chunk.count)")
        }
        let (end, overflow) = chunk.offset.addingReportingOverflow(UInt64(chunk.bytes.count))
        guard !overflow, end <= chunk.totalSize else {
            throw ChunkError.outOfRange(index: chunk.index, reason: "bytes end past total size \(chunk.totalSize)")
        }
        if let first {
            if chunk.count != first.count { throw ChunkError.inconsistent(field: "count") }
            if chunk.totalSize != first.totalSize { throw ChunkError.inconsistent(field: "total_size") }
            if chunk.digest != first.digest { throw ChunkError.inconsistent(field: "digest") }
        }
        if chunks[chunk.index] != nil { throw ChunkError.duplicate(index: chunk.index) }
        for other in chunks.values where chunk.offset < other.offset + UInt64(other.bytes.count)
            && other.offset < end && !chunk.bytes.isEmpty && !other.bytes.isEmpty {
            throw ChunkError.outOfRange(index: chunk.index, reason: "overlaps chunk \(other.index)")
        }

        self.version = version
        if first == nil { first = chunk }
        chunks[chunk.index] = chunk
        guard chunks.count == Int(chunk.count) else { return nil }

        let received = chunks.values.reduce(UInt64(0)) { $0 + UInt64($1.bytes.count) }
        guard received == chunk.totalSize else {
            reset(keepVersion: version)
            throw ChunkError.sizeMismatch(received: received, expected: chunk.totalSize)
        }
        var whole = Data(capacity: Int(chunk.totalSize))
        for part in chunks.values.sorted(by: { $0.offset < $1.offset }) { whole.append(part.bytes) }
        let digest = chunk.digest
        reset(keepVersion: version)
        guard SHA256.hash(whole) == digest else { throw ChunkError.digestMismatch }
        completed = true
        return whole
    }

    /// Drops everything, including the version memory.
    public mutating func reset() {
        reset(keepVersion: nil)
    }

    private mutating func reset(keepVersion: UInt64?) {
        version = keepVersion
        completed = false
        first = nil
        chunks = [:]
    }
}

import Foundation
import RollspecDigest

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
    /// The assembled bytes do not hash to the announced digest (`PieceDigest`).
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
        case .digestMismatch: "assembled bytes do not match the digest (piecewise SHA-256)"
        }
    }
}

/// Collects the chunks of one artifact stream (policy checkpoints, or drafts) and yields the
/// whole once every chunk is in and its digest (`PieceDigest`) checks.
///
/// Chunks may arrive in any order. A chunk of a newer version abandons a partial older one
/// (the newer supersedes it); chunks of older versions are refused.
///
/// Each accepted chunk is copied once, straight to its place in the whole, and the whole is
/// hashed as it fills: the bytes contiguous from the start are hashed as soon as they make up
/// whole batches of four pieces (`PieceDigest.batchSize`, which hash side by side), so with
/// chunks in order (as senders send them) at most one batch is left to hash when the transfer
/// completes, whatever the chunk size, and the whole is handed over without another copy. The whole lives
/// in an anonymous mapping reserved at the first chunk's `totalSize` (`MAP_NORESERVE`): memory is
/// committed page by page as bytes are written, so it grows with the bytes actually received,
/// never with what a `totalSize` field claims.
///
/// A value type holding a reference to its buffer: do not copy one mid-transfer and feed both.
public struct ChunkReassembler: Sendable {
    /// Largest artifact accepted, in bytes.
    public let maxTotalSize: UInt64
    /// The version being assembled, or the last one completed.
    public private(set) var version: UInt64?
    private var completed = false
    /// What every chunk of the transfer must repeat: the first chunk's count, size and digest.
    private var first: (count: UInt32, totalSize: UInt64, digest: Data)?
    /// Byte range of each chunk received, by index.
    private var ranges: [UInt32: Range<UInt64>] = [:]
    private var whole: AssemblyBuffer?
    private var hasher = PieceDigest()
    /// Bytes `[0, contiguous)` are in; `[0, hashed)` of them are hashed.
    private var contiguous: UInt64 = 0
    private var hashed: UInt64 = 0
    /// Non-empty chunks in past a gap: start offset → end offset.
    private var pending: [UInt64: UInt64] = [:]
    private var received = 0

    /// Where released assembly mappings wait for the next transfer (tests give their own).
    private let spares: SpareMappings

    public init(maxTotalSize: UInt64 = 64 << 30) { self.init(maxTotalSize: maxTotalSize, spares: .shared) }

    init(maxTotalSize: UInt64, spares: SpareMappings) {
        self.maxTotalSize = maxTotalSize
        self.spares = spares
    }

    /// Indices not yet received for the current version (empty when idle or complete).
    public var missingChunks: [UInt32] {
        guard let first, !completed else { return [] }
        return (0..<first.count).filter { ranges[$0] == nil }
    }

    /// Bytes held for the current partial transfer.
    public var bufferedBytes: Int { received }

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
        if ranges[chunk.index] != nil { throw ChunkError.duplicate(index: chunk.index) }
        let range = chunk.offset..<end
        if !range.isEmpty {
            for (index, other) in ranges where range.overlaps(other) {
                throw ChunkError.outOfRange(index: chunk.index, reason: "overlaps chunk \(index)")
            }
        }
        if whole == nil, chunk.totalSize > 0 {
            guard let buffer = AssemblyBuffer(count: Int(chunk.totalSize), spares: spares) else {
                throw ChunkError.tooLarge(size: chunk.totalSize, limit: maxTotalSize)
            }
            whole = buffer
        }

        self.version = version
        if first == nil { first = (chunk.count, chunk.totalSize, chunk.digest) }
        ranges[chunk.index] = range
        received += chunk.bytes.count
        if !range.isEmpty, let whole {
            whole.populate(Int(range.lowerBound)..<Int(range.upperBound))
            chunk.bytes.withUnsafeBytes { whole.pointer.advanced(by: Int(range.lowerBound)).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            pending[range.lowerBound] = range.upperBound
            hashContiguous(all: false)
        }
        guard ranges.count == Int(chunk.count) else { return nil }

        hashContiguous(all: true)
        guard UInt64(received) == chunk.totalSize, contiguous == chunk.totalSize else {
            let got = UInt64(received)
            reset(keepVersion: version)
            throw ChunkError.sizeMismatch(received: got, expected: chunk.totalSize)
        }
        let digest = hasher.finalize()
        let bytes = self.whole?.take() ?? Data()
        reset(keepVersion: version)
        guard digest == chunk.digest else { throw ChunkError.digestMismatch }
        completed = true
        return bytes
    }

    /// Extends the contiguous prefix by every chunk that now follows it, and hashes the prefix
    /// in whole batches of `PieceDigest.batchSize` bytes, or all of it when `all`.
    private mutating func hashContiguous(all: Bool) {
        guard let whole else { return }
        while let end = pending.removeValue(forKey: contiguous) { contiguous = end }
        let batch = UInt64(PieceDigest.batchSize)
        let upTo = all ? contiguous : contiguous / batch * batch
        guard upTo > hashed else { return }
        hasher.update(UnsafeRawBufferPointer(start: whole.pointer.advanced(by: Int(hashed)), count: Int(upTo - hashed)))
        hashed = upTo
    }

    /// Drops everything, including the version memory.
    public mutating func reset() {
        reset(keepVersion: nil)
    }

    private mutating func reset(keepVersion: UInt64?) {
        version = keepVersion
        completed = false
        first = nil
        ranges = [:]
        whole = nil
        hasher = PieceDigest()
        contiguous = 0
        hashed = 0
        pending = [:]
        received = 0
    }
}

/// The whole of an artifact being reassembled: an anonymous private mapping of its size whose
/// pages the kernel commits only when written (`MAP_NORESERVE`), handed over without a copy as
/// the `Data` of the finished artifact. A released mapping goes back to `SpareMappings`, so the
/// next transfer of the same size (a policy every RL step) writes into pages that are already
/// there: a fresh mapping pays a page fault and a cleared page per 4 KiB on first write, which
/// in a VM was most of a checkpoint's time to arrive.
final class AssemblyBuffer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let count: Int
    private let spares: SpareMappings
    private var owned = true
    /// A fresh mapping: its pages are not there until written.
    private let fresh: Bool

    /// Nil when the address space cannot hold `count` bytes.
    init?(count: Int, spares: SpareMappings) {
        precondition(count > 0)
        self.spares = spares
        if let spare = spares.take(count: count) {
            pointer = spare
            fresh = false
        } else {
            let p = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let p, p != MAP_FAILED else { return nil }
            pointer = p
            fresh = true
        }
        self.count = count
    }

    /// Makes the pages under `range` present in one call before they are written
    /// (`MADV_POPULATE_WRITE`, Linux 5.14+), instead of one fault per 4 KiB during the copy.
    /// Memory is still committed only for the bytes that arrive. A kernel without it leaves
    /// the copy to fault as before.
    func populate(_ range: Range<Int>) {
        guard fresh, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        let end = min(count, (range.upperBound + page - 1) / page * page)
        _ = madvise(pointer.advanced(by: start), end - start, MADV_POPULATE_WRITE)
    }

    /// The bytes as `Data` that gives the mapping back when released; this buffer no longer
    /// owns them.
    func take() -> Data {
        owned = false
        let count = count, spares = spares
        return Data(bytesNoCopy: pointer, count: count, deallocator: .custom { p, _ in spares.put(p, count: count) })
    }

    deinit { if owned { spares.put(pointer, count: count) } }
}

/// Released assembly mappings kept for the next transfer of the same size, at most `limit` of
/// them (a worker steadily holds two policies' bytes: the one it runs and the one arriving, so
/// one spare covers the next version). Their old bytes are overwritten in full before use: a
/// transfer completes only when its chunks tile the whole.
final class SpareMappings: @unchecked Sendable {
    static let shared = SpareMappings(limit: 2)

    private let lock = NSLock()
    private var spares: [(pointer: UnsafeMutableRawPointer, count: Int)] = []
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    func take(count: Int) -> UnsafeMutableRawPointer? {
        lock.lock()
        defer { lock.unlock() }
        guard let i = spares.firstIndex(where: { $0.count == count }) else { return nil }
        return spares.remove(at: i).pointer
    }

    /// Keeps the mapping, unmapping the oldest spare when there are `limit` already.
    func put(_ pointer: UnsafeMutableRawPointer, count: Int) {
        lock.lock()
        spares.append((pointer, count))
        let evicted = spares.count > limit ? spares.removeFirst() : nil
        lock.unlock()
        if let evicted { munmap(evicted.pointer, evicted.count) }
    }

    /// Spare mappings held now (tests).
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return spares.count
    }
}

import Foundation
import RollspecBus
import RollspecClient

/// One stream of weights (policy or draft): its `ChunkReassembler`, and the chunks of the
/// current transfer that the reassembler accepted, kept beside it so that a complete artifact
/// can be forwarded in the chunks it came in.
struct IncomingChunks {
    private var assembler = ChunkReassembler()
    private var version: UInt64?
    private var chunks: [UInt32: WeightsChunk] = [:]

    /// Adds `chunk` of transfer `version`.
    /// - Returns: the whole artifact and its chunks in order once it is complete and its
    ///   digest checks; nil while chunks are missing.
    /// - Throws: the reassembler's `ChunkError` (nothing is kept of a failed whole).
    mutating func add(_ chunk: WeightsChunk, version: UInt64) throws -> (whole: Data, chunks: [WeightsChunk])? {
        do {
            let whole = try assembler.add(chunk, version: version)
            accepted(chunk, version: version)
            guard let whole else { return nil }
            return (whole, complete(whole))
        } catch {
            refused(error)
            throw error
        }
    }

    /// The reassembler took `chunk`; a newer version replaces what is kept, as it does there.
    private mutating func accepted(_ chunk: WeightsChunk, version: UInt64) {
        if version != self.version {
            self.version = version
            chunks = [:]
        }
        chunks[chunk.index] = chunk
    }

    /// The reassembler refused a chunk; on a failed whole (size or digest) it dropped the
    /// transfer, and so does this.
    private mutating func refused(_ error: any Error) {
        switch error as? ChunkError {
        case .sizeMismatch?, .digestMismatch?: chunks = [:]
        default: break
        }
    }

    /// The chunks of the transfer that just completed as `whole`, by index, and forgets them.
    /// They share the bytes the reassembler checked, so no copy or hash is needed; should they
    /// ever not tile `whole` (they always do), `whole` is cut again.
    private mutating func complete(_ whole: Data) -> [WeightsChunk] {
        defer { chunks = [:] }
        let sorted = chunks.values.sorted { $0.index < $1.index }
        if let first = sorted.first, sorted.count == Int(first.count),
           sorted.reduce(0, { $0 + $1.bytes.count }) == whole.count {
            return sorted
        }
        return WeightsChunk.split(whole)
    }
}

/// A routing identity as hex, for log lines.
func hexIdentity(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }

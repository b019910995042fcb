import Foundation
import RollspecBus
import RollspecClient

/// One stream of weights (policy or draft): its `ChunkReassembler`, and where each chunk of the
/// current transfer lies, so that a complete artifact can be forwarded in the chunks it came in.
///
/// Only the places are kept, not the received chunks: those are copied into the reassembler's
/// whole on arrival and released, and the forwarded chunks are views of that whole.
struct IncomingChunks {
    private var assembler = ChunkReassembler()
    private var version: UInt64?
    private var places: [UInt32: (offset: UInt64, length: Int)] = [:]

    /// Adds `chunk` of transfer `version`.
    /// - Returns: the whole artifact and its chunks in order once it is complete and its
    ///   digest checks; nil while chunks are missing.
    /// - Throws: the reassembler's `ChunkError` (nothing is kept of a failed whole).
    mutating func add(_ chunk: WeightsChunk, version: UInt64) throws -> (whole: Data, chunks: [WeightsChunk])? {
        do {
            let whole = try assembler.add(chunk, version: version)
            accepted(chunk, version: version)
            guard let whole else { return nil }
            return (whole, complete(whole, like: chunk))
        } catch {
            refused(error)
            throw error
        }
    }

    /// The reassembler took `chunk`; a newer version replaces what is kept, as it does there.
    private mutating func accepted(_ chunk: WeightsChunk, version: UInt64) {
        if version != self.version {
            self.version = version
            places = [:]
        }
        places[chunk.index] = (chunk.offset, chunk.bytes.count)
    }

    /// The reassembler refused a chunk; on a failed whole (size or digest) it dropped the
    /// transfer, and so does this.
    private mutating func refused(_ error: any Error) {
        switch error as? ChunkError {
        case .sizeMismatch?, .digestMismatch?: places = [:]
        default: break
        }
    }

    /// The chunks of the transfer that just completed as `whole`, by index, as views of it (no
    /// copy, no hash), and forgets them. The reassembler checked that they tile `whole`.
    private mutating func complete(_ whole: Data, like last: WeightsChunk) -> [WeightsChunk] {
        defer { places = [:] }
        let base = whole.startIndex
        return places.sorted { $0.key < $1.key }.map { index, place in
            let start = base + Int(place.offset)
            return WeightsChunk(index: index, count: last.count, offset: place.offset, totalSize: last.totalSize,
                                digest: last.digest, bytes: whole[start..<start + place.length])
        }
    }
}

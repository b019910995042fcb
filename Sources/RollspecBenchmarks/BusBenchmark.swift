import Foundation
import RollspecBus
import RollspecDigest
import RollspecTraining

/// Throughput of the bus over tcp loopback, for `rollspec bench bus`.
public enum BusBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var bytes: Int
        public var chunkBytes: Int
        /// libzmq alone: PUSH → PULL of raw frames.
        public var rawSeconds: Double
        /// The same bytes as `PolicyCheckpointChunk` messages: encode (CRC-32C) → send → receive
        /// → decode (CRC-32C check, payload parse).
        public var wireSeconds: Double
        /// As `wireSeconds`, plus the whole's digest (`PieceDigest`) on the sender and chunk
        /// reassembly with digest check on the receiver — the full checkpoint path.
        public var wireWithDigestSeconds: Double
        /// SHA-256 of all `bytes` in this process: the C implementation `SHA256` uses (the
        /// median of three, alternating with `pieceDigestSeconds`), and the pure-Swift
        /// `SHA256.Reference` it replaced.
        public var sha256Seconds: Double
        public var sha256ReferenceSeconds: Double
        /// Whether the C SHA-256 ran on the x86 SHA extensions.
        public var sha256Accelerated: Bool
        /// The bus's digest of all `bytes` (`PieceDigest`: four 1 MiB pieces side by side with
        /// SHA-NI), the median of three, each alternating with a SHA-256 of the same bytes.
        public var pieceDigestSeconds: Double
        /// CRC-32C of all `bytes`: as the envelope uses it (SSE4.2 when present) and the
        /// portable table code.
        public var crc32cSeconds: Double
        public var crc32cPortableSeconds: Double
        /// One trajectory envelope as a router receives it (64 prompt and 256 response tokens):
        /// the bytes of the frame, the median time to decode and check one, and the median time
        /// to copy its bytes into a new `Data` (what receiving it costs at least), in the same run.
        public var trajectoryFrameBytes: Int
        public var trajectoryDecodeSeconds: Double
        public var trajectoryCopySeconds: Double

        public var rawGBps: Double { Double(bytes) / rawSeconds / 1e9 }
        public var wireGBps: Double { Double(bytes) / wireSeconds / 1e9 }
        public var wireWithDigestGBps: Double { Double(bytes) / wireWithDigestSeconds / 1e9 }
        public var sha256GBps: Double { Double(bytes) / sha256Seconds / 1e9 }
        public var sha256ReferenceGBps: Double { Double(bytes) / sha256ReferenceSeconds / 1e9 }
        public var pieceDigestGBps: Double { Double(bytes) / pieceDigestSeconds / 1e9 }
        public var crc32cGBps: Double { Double(bytes) / crc32cSeconds / 1e9 }
        public var crc32cPortableGBps: Double { Double(bytes) / crc32cPortableSeconds / 1e9 }
        /// wire throughput / raw throughput.
        public var wireRatio: Double { rawSeconds / wireSeconds }

        public var description: String {
            String(format: "%d MB in %d KB chunks: raw %.2f GB/s, wire %.2f GB/s (%.0f%% of raw), wire+digest+reassembly %.2f GB/s",
                   bytes >> 20, chunkBytes >> 10, rawGBps, wireGBps, 100 * wireRatio, wireWithDigestGBps)
                + String(format: "; sha256 C %.2f GB/s, Swift reference %.2f GB/s (C is %.1fx)",
                         sha256GBps, sha256ReferenceGBps,
                         sha256ReferenceSeconds / sha256Seconds)
                + (sha256Accelerated ? " [SHA-NI]" : " [portable C]")
                + String(format: "; piece digest %.2f GB/s, %.2fx SHA-256 in alternation", pieceDigestGBps,
                         sha256Seconds / pieceDigestSeconds)
                + String(format: "; crc32c %.2f GB/s%@, portable tables %.2f GB/s (%.1fx)", crc32cGBps,
                         CRC32C.isAccelerated ? " [SSE4.2]" : "", crc32cPortableGBps, crc32cPortableSeconds / crc32cSeconds)
                + String(format: "; trajectory of %d bytes: decode %.2f µs, %.1fx a copy of its bytes (%.2f µs)",
                         trajectoryFrameBytes, trajectoryDecodeSeconds * 1e6, trajectoryDecodeSeconds / trajectoryCopySeconds,
                         trajectoryCopySeconds * 1e6)
        }
    }

    /// Sends `megabytes` MB in `chunkBytes` pieces three ways (see `Result`) over
    /// `tcp://127.0.0.1:<ephemeral>` inside this process.
    /// - Throws: `ZMQError`, `WireError` or `ChunkError` if anything goes wrong on the way.
    /// `trajectoryDecodes` is the round size of the trajectory decode timing (9 rounds).
    public static func throughput(megabytes: Int = 256, chunkBytes: Int = 4 << 20, trajectoryDecodes: Int = 20_000) throws -> Result {
        let total = megabytes << 20
        var payload = Data(count: total)
        payload.withUnsafeMutableBytes { buffer in
            var x: UInt64 = 0x9E37_79B9_7F4A_7C15
            for i in 0..<buffer.count {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                buffer[i] = UInt8(truncatingIfNeeded: x)
            }
        }
        let pieces = stride(from: 0, to: total, by: chunkBytes).map { payload.subdata(in: $0..<min($0 + chunkBytes, total)) }

        let raw = try transfer(frames: pieces.count) { send in
            for piece in pieces { try send(piece) }
        } receive: { frame in frame.count }

        let wire = try transfer(frames: pieces.count) { send in
            let digest = Data(count: 32)  // not checked on this path
            for (i, piece) in pieces.enumerated() {
                let chunk = WeightsChunk(index: UInt32(i), count: UInt32(pieces.count), offset: UInt64(i * chunkBytes),
                                         totalSize: UInt64(total), digest: digest, bytes: piece)
                try send(PolicyCheckpointChunk(version: 1, chunk: chunk).encode(sender: "bench", sequence: UInt64(i + 1)))
            }
        } receive: { frame in
            let envelope = try Envelope(decoding: frame)
            return try envelope.message(as: PolicyCheckpointChunk.self).chunk.bytes.count
        }

        var reassembler = ChunkReassembler()
        var assembled: Data?
        let full = try transfer(frames: pieces.count) { send in
            for (i, chunk) in WeightsChunk.split(payload, chunkSize: chunkBytes).enumerated() {
                try send(PolicyCheckpointChunk(version: 1, chunk: chunk).encode(sender: "bench", sequence: UInt64(i + 1)))
            }
        } receive: { frame in
            let message = try Envelope(decoding: frame).message(as: PolicyCheckpointChunk.self)
            if let whole = try reassembler.add(message.chunk, version: message.version) { assembled = whole }
            return message.chunk.bytes.count
        }
        guard assembled == payload else { throw ChunkError.digestMismatch }

        var pieceTimes: [Double] = [], shaTimes: [Double] = []
        for _ in 0..<3 {
            pieceTimes.append(time { _ = PieceDigest.hash(payload) })
            shaTimes.append(time { _ = SHA256.hash(payload) })
        }
        let shaReference = time { _ = SHA256.Reference.hash(payload) }
        let crc = time { _ = CRC32C.checksum(payload) }
        let crcPortable = time { _ = payload.withUnsafeBytes { CRC32C.checksumPortable($0) } }

        let (frame, decode, copy) = try trajectoryDecode(count: trajectoryDecodes)
        return Result(bytes: total, chunkBytes: chunkBytes, rawSeconds: raw, wireSeconds: wire, wireWithDigestSeconds: full,
                      sha256Seconds: shaTimes.sorted()[1], sha256ReferenceSeconds: shaReference,
                      sha256Accelerated: SHA256.isAccelerated, pieceDigestSeconds: pieceTimes.sorted()[1],
                      crc32cSeconds: crc, crc32cPortableSeconds: crcPortable, trajectoryFrameBytes: frame,
                      trajectoryDecodeSeconds: decode, trajectoryCopySeconds: copy)
    }

    /// (frame bytes, seconds per decode, seconds per copy): medians over 9 rounds of `count`
    /// trajectory envelopes, decode and copy alternating round by round.
    static func trajectoryDecode(count: Int) throws -> (Int, Double, Double) {
        let t = Trajectory(requestID: "request-000017", groupID: "group-3", sampleIndex: 5, promptTokens: (0..<64).map { Int32($0 * 7) },
                           responseTokens: (0..<256).map { Int32($0 * 13 % 49_152) }, logprobs: (0..<256).map { -Float($0 % 17) / 8 },
                           finishReason: .stop, policyVersion: 3, draftVersion: 2,
                           acceptance: AcceptanceCounts(drafts: 40, draftedTokens: 120, acceptedTokens: 70,
                                                        acceptedPerPosition: [30, 20, 12, 8], proposers: ["draft", "suffix"]))
        let frame = t.encode(sender: "worker-0", sequence: 42)
        var decodes: [Double] = [], copies: [Double] = []
        var checksum = 0
        for _ in 0..<9 {
            decodes.append(try time {
                for _ in 0..<count { checksum &+= try Envelope(decoding: frame).sequence == 42 ? 1 : 0 }
            } / Double(count))
            copies.append(time {
                frame.withUnsafeBytes { raw in
                    for _ in 0..<count { checksum &+= Data(bytes: raw.baseAddress!, count: raw.count).count }
                }
            } / Double(count))
        }
        precondition(checksum > 0)
        return (frame.count, decodes.sorted()[4], copies.sorted()[4])
    }

    private static func time(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Runs `produce` on a sender thread (PUSH) and `consume` on this thread (PULL) until
    /// `frames` frames arrived; returns the wall time from the first send to the last receive.
    private static func transfer(
        frames: Int, produce: @escaping (_ send: (Data) throws -> Void) throws -> Void,
        receive consume: (Data) throws -> Int
    ) throws -> Double {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        try pull.setOption(.receiveTimeout(milliseconds: 10_000))
        try pull.bind("tcp://127.0.0.1:*")
        let endpoint = try pull.lastEndpoint
        let push = try ZMQSocket(context: context, type: .push)
        try push.setOption(.sendHighWaterMark(64))
        try push.connect(endpoint)

        let senderError = SenderError()
        let start = DispatchTime.now().uptimeNanoseconds
        // The PUSH socket is used only by the sender thread from here on.
        let sender = Thread {
            do { try produce { frame in try push.send(frame) } } catch { senderError.set(error) }
            senderError.done.signal()
        }
        sender.start()
        for _ in 0..<frames {
            guard let frame = try pull.receive()?.first else { break }
            _ = try consume(frame)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        senderError.done.wait()
        if let error = senderError.get() { throw error }
        return seconds
    }

    private final class SenderError: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private var error: (any Error)?
        func set(_ e: any Error) { lock.withLock { error = e } }
        func get() -> (any Error)? { lock.withLock { error } }
    }
}

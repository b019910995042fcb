import Foundation

extension SHA256 {
    /// The pure-Swift SHA-256 that `SHA256` replaced, kept as the slow, obviously-correct twin
    /// that the tests hold the C implementation to (and the baseline of `rollspec bench bus`).
    public struct Reference: Sendable {
        private static let k: [UInt32] = [
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
            0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
            0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
            0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
            0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
            0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
            0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
        ]

        private var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
            (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
        private var pending: [UInt8] = []
        private var length: UInt64 = 0

        public init() {}

        /// The 32-byte digest of `data`.
        public static func hash<Bytes: Collection>(_ data: Bytes) -> Data where Bytes.Element == UInt8 {
            var h = Reference()
            h.update(data)
            return h.finalize()
        }

        /// Feeds more bytes.
        public mutating func update<Bytes: Collection>(_ data: Bytes) where Bytes.Element == UInt8 {
            if data.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) == nil {
                Array(data).withUnsafeBytes { update($0) }
            }
        }

        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            length &+= UInt64(bytes.count)
            var i = 0
            if !pending.isEmpty {
                let take = min(64 - pending.count, bytes.count)
                pending += bytes[0..<take]
                i = take
                if pending.count == 64 {
                    pending.withUnsafeBytes { compress($0, 0) }
                    pending.removeAll(keepingCapacity: true)
                }
            }
            while i + 64 <= bytes.count {
                compress(bytes, i)
                i += 64
            }
            if i < bytes.count { pending += bytes[i...] }
        }

        /// Pads, processes the last block and returns the digest.
        public mutating func finalize() -> Data {
            let bitLength = length &* 8
            var tail = pending + [0x80]
            while tail.count % 64 != 56 { tail.append(0) }
            for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
            tail.withUnsafeBytes { for offset in stride(from: 0, to: $0.count, by: 64) { compress($0, offset) } }
            pending = []
            var out = Data(capacity: 32)
            for word in [state.0, state.1, state.2, state.3, state.4, state.5, state.6, state.7] {
                withUnsafeBytes(of: word.bigEndian) { out.append(contentsOf: $0) }
            }
            return out
        }

        private mutating func compress(_ bytes: UnsafeRawBufferPointer, _ offset: Int) {
            @inline(__always) func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
            var w = (
                UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0),
                UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0))
            withUnsafeMutableBytes(of: &w) { ring in
                let w = ring.bindMemory(to: UInt32.self)
                for t in 0..<16 { w[t] = bytes.loadUnaligned(fromByteOffset: offset + 4 * t, as: UInt32.self).bigEndian }
                var (a, b, c, d, e, f, g, h) = state
                Self.k.withUnsafeBufferPointer { k in
                    for t in 0..<64 {
                        if t >= 16 {
                            let w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15]
                            let s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3)
                            let s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10)
                            w[t & 15] = w[t & 15] &+ s0 &+ w[(t - 7) & 15] &+ s1
                        }
                        let t1 = h &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ k[t] &+ w[t & 15]
                        let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
                        h = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
                    }
                }
                state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d,
                         state.4 &+ e, state.5 &+ f, state.6 &+ g, state.7 &+ h)
            }
        }
    }
}

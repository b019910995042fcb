import Testing
import RollspecKernels

/// RoPE (per-call and table versions) against the reference, at small and large positions.
@Suite("RoPE", .serialized) struct RoPETests {
    @Test(arguments: [2, 8, 64, 80, 128])
    func matchesReference(headDim: Int) {
        let n = 5, heads = 3
        let positions: [Int32] = [0, 1, 17, 1000, 8191]
        let x = randomBuffer(n * heads * headDim, seed: UInt64(headDim))
        let want = x.copy()
        positions.withUnsafeBufferPointer { p in
            ropeForwardReference(want.pointer, positions: p.baseAddress!, n: n, heads: heads, headDim: headDim, theta: 10000)
        }
        let table = RoPETable(headDim: headDim, theta: 10000, maxPositions: 8192)
        for isa in supportedISAs {
            let direct = x.copy(), cached = x.copy()
            withISA(isa) {
                positions.withUnsafeBufferPointer { p in
                    ropeForward(direct.pointer, positions: p.baseAddress!, n: n, heads: heads, headDim: headDim, theta: 10000)
                    ropeForward(cached.pointer, positions: p.baseAddress!, n: n, heads: heads, headDim: headDim, table: table)
                }
            }
            #expect(relativeError(direct, want) < 1e-5, "\(isa)")
            #expect(relativeError(cached, want) < 1e-5, "\(isa) table")
        }
    }
}

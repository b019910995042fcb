// Shared helpers for the kernel tests: seeded random buffers and a relative comparison.

import RollspecKernels
import RollspecModel

/// A buffer of `count` uniform values in `range`.
func randomBuffer(_ count: Int, seed: UInt64, in range: ClosedRange<Float> = -1...1) -> FloatBuffer {
    var rng = SplitMix64(seed: seed)
    let b = FloatBuffer(count: count)
    for i in 0..<count { b[i] = Float.random(in: range, using: &rng) }
    return b
}

/// The largest difference between `a` and `b`, relative to the largest magnitude in `b`
/// (or 1 when `b` is small), so one tolerance fits outputs of any scale.
func relativeError(_ a: FloatBuffer, _ b: FloatBuffer) -> Float {
    precondition(a.count == b.count)
    var maxDiff: Float = 0, maxRef: Float = 0
    for i in 0..<a.count {
        if a[i].isNaN != b[i].isNaN { return .infinity }
        maxDiff = max(maxDiff, abs(a[i] - b[i]))
        maxRef = max(maxRef, abs(b[i]))
    }
    return maxDiff / max(maxRef, 1)
}

/// Every ISA level this CPU can run, so each test covers the AVX-512, AVX2 and scalar paths.
let supportedISAs = KernelISA.allCases.filter { $0.rawValue <= KernelISA.detected.rawValue }

/// Runs `body` with the kernels forced to `isa` on this thread, then restores the detected level.
func withISA<T>(_ isa: KernelISA, _ body: () throws -> T) rethrows -> T {
    KernelISA.current = isa
    defer { KernelISA.current = .detected }
    return try body()
}

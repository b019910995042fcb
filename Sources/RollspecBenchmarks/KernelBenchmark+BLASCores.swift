// sgemm under each OpenBLAS kernel set this CPU can run, for `rollspec bench blas`: what the
// kernel set chosen at start-up (BLASKernels) is worth against the others, in the same run.

import RollspecKernels
import Foundation

extension KernelBenchmark {
    /// One kernel set's figures.
    public struct BLASCoreRate: Sendable, Codable {
        public var core: String
        /// GFLOP/s of `matmulForwardBLAS` at `[m, k] · [k, n]` on the kernel threads.
        public var sgemmGFLOPs: Double
        /// What failed in `BLASKernels.selfCheck`, or nil.
        public var selfCheckFailure: String?
        public var inUse: Bool
    }

    /// Switches OpenBLAS through the generic kernels and every better set the CPU supports,
    /// timing the same sgemm (`[m, k] · [k, n]`, the FFN shape of `bench training`) under each
    /// (its fastest repetition within `minSeconds`), then switches back to the set in use. Call
    /// it only while nothing else calls BLAS.
    public static func blasCores(m: Int = 1024, k: Int = 256, n: Int = 768, minSeconds: Double = 0.5) -> [BLASCoreRate] {
        _ = BLASKernels.ready
        let inUse = BLASKernels.coreInUse, cpu = CPUInfo.current
        var names = ["Prescott"]
        if cpu.features.contains(.avx) { names.append("SandyBridge") }
        if cpu.hasAVX2 { names += ["Haswell", "Zen"] }
        if cpu.hasAVX512 { names.append("SkylakeX") }
        if cpu.hasAVX512, cpu.features.contains(.avx512bf16) { names.append("Cooperlake") }
        if !names.contains(where: { $0.lowercased() == inUse.lowercased() }) { names.append(inUse) }
        defer { BLASKernels.switchCore(to: inUse) }

        let a = FloatBuffer(count: m * k), w = FloatBuffer(count: n * k), out = FloatBuffer(count: m * n)
        for i in 0..<a.count { a[i] = Float(i % 7) * 0.1 }
        for i in 0..<w.count { w[i] = Float(i % 5) * 0.1 }
        return names.compactMap { name in
            guard BLASKernels.switchCore(to: name) else { return nil }
            matmulForwardBLAS(out.pointer, a.pointer, w.pointer, nil, n: m, inDim: k, outDim: n)
            // The fastest repetition, not the mean: a run that shares its cores (a test suite
            // in parallel) loses whole repetitions to preemption, and a mean over a short window
            // then ranks the kernels by who was preempted.
            var reps = 0, seconds = Double.infinity
            let clock = ContinuousClock(), start = clock.now
            while clock.now - start < .seconds(minSeconds) || reps < 3 {
                let t0 = clock.now
                matmulForwardBLAS(out.pointer, a.pointer, w.pointer, nil, n: m, inDim: k, outDim: n)
                seconds = min(seconds, Self.seconds(clock.now - t0))
                reps += 1
            }
            return BLASCoreRate(core: BLASKernels.coreInUse, sgemmGFLOPs: 2 * Double(m * k * n) / seconds / 1e9,
                                selfCheckFailure: BLASKernels.selfCheck(), inUse: name.lowercased() == inUse.lowercased())
        }
    }
}

// sgemm under each OpenBLAS kernel set this CPU can run, for `rollspec bench blas`: what the
// kernel set chosen at start-up (BLASKernels) is worth against the others, in the same run.

import RollspecKernels
import Foundation

extension KernelBenchmark {
    /// One kernel set's figures.
    public struct BLASCoreRate: Sendable, Codable {
        public var core: String
        /// GFLOP/s of `matmulForwardBLAS` at `[m, k] · [k, n]` on the kernel threads: per second of
        /// wall time, or on one kernel thread per second of its CPU time.
        public var sgemmGFLOPs: Double
        /// What failed in `BLASKernels.selfCheck`, or nil.
        public var selfCheckFailure: String?
        public var inUse: Bool
    }

    /// Switches OpenBLAS through the generic kernels and every better set the CPU supports,
    /// timing the same sgemm (`[m, k] · [k, n]`, the FFN shape of `bench training`) under each
    /// (its fastest repetition in `minSeconds`, spread over rounds), then switches back to the set in use. Call
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
        let usable = names.filter { BLASKernels.switchCore(to: $0) }
        // A run that shares its cores (a test suite in parallel) loses whole repetitions, even
        // whole windows, to preemption, and a wall-clock rate then ranks the kernels by who was
        // preempted. So: the fastest repetition, not the mean; rounds that visit every kernel
        // set in turn, so a burst costs one set one round; and on one thread, where the sgemm
        // runs on this thread alone, its CPU time, which preemption does not add to.
        let rounds = 5, onThisThread = kernelThreads == 1
        var fastest = [Double](repeating: .infinity, count: usable.count)
        let clock = ContinuousClock()
        func elapsed(_ body: () -> Void) -> Double {
            guard onThisThread else {
                let t0 = clock.now
                body()
                return Self.seconds(clock.now - t0)
            }
            var t0 = timespec(), t1 = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0)
            body()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1)
            return Double(t1.tv_sec - t0.tv_sec) + Double(t1.tv_nsec - t0.tv_nsec) * 1e-9
        }
        for _ in 0..<rounds {
            for (i, name) in usable.enumerated() {
                BLASKernels.switchCore(to: name)
                matmulForwardBLAS(out.pointer, a.pointer, w.pointer, nil, n: m, inDim: k, outDim: n)
                var reps = 0
                let start = clock.now
                while clock.now - start < .seconds(minSeconds / Double(rounds)) || reps < 2 {
                    let t = elapsed { matmulForwardBLAS(out.pointer, a.pointer, w.pointer, nil, n: m, inDim: k, outDim: n) }
                    fastest[i] = min(fastest[i], t)
                    reps += 1
                }
            }
        }
        return zip(usable, fastest).map { name, seconds in
            BLASKernels.switchCore(to: name)
            return BLASCoreRate(core: BLASKernels.coreInUse, sgemmGFLOPs: 2 * Double(m * k * n) / seconds / 1e9,
                                selfCheckFailure: BLASKernels.selfCheck(), inUse: name.lowercased() == inUse.lowercased())
        }
    }
}

// Threads and instruction-set level of the fast kernels (the C thread pool in
// CRollspecKernels/pool.c and the CPU dispatch in kernels.c).

import CBLAS
import CRollspecKernels

/// The number of threads (including the caller) the parallel kernels use. The default is the
/// number of CPUs this process may run on.
public var kernelThreads: Int { Int(rs_threads_get()) }

/// Sets how many threads the parallel kernels use (`0` = all online CPUs).
///
/// OpenBLAS, used for matmuls with many rows (prefill), has a pool of its own. Its idle
/// threads spin for a long time after each call and would then fight ours for the cores, so
/// BLAS runs single-threaded and the kernels split its work across this one pool instead.
/// Call this between model calls, not while a kernel runs.
public func setKernelThreads(_ threads: Int) {
    _ = BLASKernels.ready
    rs_threads_set(Int32(clamping: threads))
    openblas_set_num_threads(1)
}

/// How long (microseconds) an idle pool thread spins before it sleeps (default 100). Longer
/// spins save wake-ups between the many small calls of a decode step; shorter ones give the
/// core back sooner to other processes.
public func setKernelSpin(microseconds: Int) {
    rs_threads_set_spin_us(Int32(clamping: microseconds))
}

/// Runs `body(task)` for every task in `0 ..< tasks` on the kernel thread pool; the caller
/// works too. Nested or concurrent calls run inline on the calling thread.
public func kernelParallelFor(tasks: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        var box = body
        withUnsafeMutablePointer(to: &box) { ptr in
            rs_parallel_for(
                { ctx, task in
                    ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(task))
                }, ptr, Int32(clamping: tasks))
        }
    }
}

/// Instruction-set level of the C kernels.
public enum KernelISA: Int, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    /// `avx512bf16` is `avx512` plus VDPBF16PS, used by the bfloat16 matmul; `amxBF16` adds
    /// AMX tiles (TDPBF16PS), which it uses for passes of several rows (each level includes the
    /// ones below it).
    case scalar = 0, avx2 = 1, avx512 = 2, avx512bf16 = 3, amxBF16 = 4

    public static func < (a: KernelISA, b: KernelISA) -> Bool { a.rawValue < b.rawValue }

    /// The best level this CPU supports.
    public static var detected: KernelISA { KernelISA(rawValue: Int(rs_isa_detected().rawValue))! }

    /// The level kernels called on this thread use; setting it (tests, benchmarks) is clamped
    /// to `detected` and changes this thread only (the pool's threads take it for the calls this
    /// thread makes), so tests forcing levels can run side by side.
    public static var current: KernelISA {
        get { KernelISA(rawValue: Int(rs_isa_current().rawValue))! }
        set { rs_isa_set(rs_isa(rawValue: UInt32(newValue.rawValue))) }
    }

    public var description: String {
        switch self {
        case .scalar: "scalar"
        case .avx2: "avx2"
        case .avx512: "avx512"
        case .avx512bf16: "avx512-bf16"
        case .amxBF16: "amx-bf16"
        }
    }
}

// Timings of the skinny matmul against BLAS on real model shapes, for `rollspec bench matmul`
// and Experiments/kernels. Legend: N token rows, C = inDim, OC = outDim.

import RollspecKernels
import CBLAS
import CRollspecKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Micro-benchmarks of the fast kernels, measured against BLAS in the same run so that a
/// noisy, shared machine still gives meaningful ratios.
public enum KernelBenchmark {
    /// A weight shape `[outDim, inDim]`.
    public struct Shape: Sendable, CustomStringConvertible {
        public var name: String
        public var inDim: Int
        public var outDim: Int
        public init(_ name: String, inDim: Int, outDim: Int) {
            self.name = name
            self.inDim = inDim
            self.outDim = outDim
        }
        public var description: String { "\(name) \(outDim)x\(inDim)" }
    }

    /// The linear layers of SmolLM2-135M (dim 576, 9 heads / 3 KV heads of 64, MLP 1536,
    /// vocab 49152).
    public static let smolLM2Shapes: [Shape] = [
        Shape("q/o_proj", inDim: 576, outDim: 576),
        Shape("k/v_proj", inDim: 576, outDim: 192),
        Shape("gate/up_proj", inDim: 576, outDim: 1536),
        Shape("down_proj", inDim: 1536, outDim: 576),
        Shape("lm_head", inDim: 576, outDim: 49152),
    ]

    /// Seconds per call of each method at one shape, row count and thread count.
    public struct Row: Sendable {
        public var shape: Shape
        public var n: Int
        public var threads: Int
        /// `matmulForwardSkinny`.
        public var skinny: Double
        /// One `sgemm` (OpenBLAS, with as many threads of its own as `threads`).
        public var sgemm: Double
        /// `n` calls of `sgemv` (OpenBLAS, same threads).
        public var sgemv: Double
        /// `skinny` at n = 1 for the same shape and threads (filled in when measured).
        public var skinnyAtOne: Double?

        /// t(N) / t(1) of the skinny kernel: the cost of verifying N tokens relative to one.
        public var skinnyGrowth: Double? { skinnyAtOne.map { skinny / $0 } }
        /// Speed-up of the skinny kernel over sgemm (> 1: skinny is faster).
        public var overSgemm: Double { sgemm / skinny }
        /// Speed-up of the skinny kernel over n sgemv calls.
        public var overSgemv: Double { sgemv / skinny }
    }

    /// Times the skinny kernel, sgemm and n × sgemv on `shapes` for each row count and thread
    /// count. Weights are cycled through enough copies (≥ 96 MB) that they come from DRAM, as
    /// they do in a real forward pass, not from a cache that has just held them. Takes about
    /// a minute with the defaults.
    ///
    /// - Parameters:
    ///   - ns: row counts N.
    ///   - threadCounts: thread counts to test (both the kernel pool and OpenBLAS).
    ///   - minSeconds: minimum time of one measurement; each is repeated `repeats` times and
    ///     the fastest kept.
    /// - Returns: one row per (shape, thread count, N).
    public static func skinnyMatmul(
        shapes: [Shape] = smolLM2Shapes, ns: [Int] = [1, 2, 4, 8, 16],
        threadCounts: [Int] = [1, 2], minSeconds: Double = 0.05, repeats: Int = 3
    ) -> [Row] {
        _ = BLASKernels.ready
        let savedThreads = kernelThreads
        defer { setKernelThreads(savedThreads) }
        var rows: [Row] = []
        let maxN = ns.max() ?? 1
        for (index, shape) in shapes.enumerated() {
            let weights = cycledWeights(shape)
            let copies = weights.count
            let input = FloatBuffer(count: maxN * shape.inDim)
            for j in 0..<input.count { input[j] = Float(j % 13) / 13 - 0.5 }
            let out = FloatBuffer(count: maxN * shape.outDim)
            let (c, oc) = (shape.inDim, shape.outDim)
            // All skinny timings first, then BLAS: OpenBLAS's idle threads keep spinning for
            // up to a second after a threaded call and would slow the kernel pool's threads.
            var skinny: [[Double]] = threadCounts.map { _ in ns.map { _ in .infinity } }
            var gemm = skinny, gemv = skinny
            for (ti, threads) in threadCounts.enumerated() {
                setKernelThreads(threads)
                for _ in 0..<repeats {
                    for (ni, n) in ns.enumerated() {
                        skinny[ti][ni] = min(skinny[ti][ni], time(copies: copies, minSeconds: minSeconds) { i in
                            matmulForwardSkinny(out.pointer, input.pointer, weights[i].pointer, nil,
                                                n: n, inDim: c, outDim: oc)
                        })
                    }
                }
            }
            for (ti, threads) in threadCounts.enumerated() {
                openblas_set_num_threads(Int32(threads))
                for _ in 0..<repeats {
                    for (ni, n) in ns.enumerated() {
                        gemm[ti][ni] = min(gemm[ti][ni], time(copies: copies, minSeconds: minSeconds) { i in
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(oc),
                                        Int32(c), 1, input.pointer, Int32(c), weights[i].pointer,
                                        Int32(c), 0, out.pointer, Int32(oc))
                        })
                        gemv[ti][ni] = min(gemv[ti][ni], time(copies: copies, minSeconds: minSeconds) { i in
                            for r in 0..<n {
                                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(oc), Int32(c), 1,
                                            weights[i].pointer, Int32(c), input.pointer + r * c, 1, 0,
                                            out.pointer + r * oc, 1)
                            }
                        })
                    }
                }
            }
            openblas_set_num_threads(1)
            if index + 1 < shapes.count, threadCounts.contains(where: { $0 > 1 }) {
                usleep(1_000_000)  // let OpenBLAS's threads go to sleep before the next shape
            }
            for (ti, threads) in threadCounts.enumerated() {
                let atOne = ns.firstIndex(of: 1).map { skinny[ti][$0] }
                for (ni, n) in ns.enumerated() {
                    rows.append(Row(shape: shape, n: n, threads: threads, skinny: skinny[ti][ni],
                                    sgemm: gemm[ti][ni], sgemv: gemv[ti][ni], skinnyAtOne: atOne))
                }
            }
        }
        return rows
    }

    /// Per-call cost of the thread pool, in microseconds: `threads` tasks that each spin for
    /// `taskMicros` should take `taskMicros` in parallel; the excess is the overhead. Measured
    /// with the workers awake (back-to-back calls) and asleep (after a pause longer than their
    /// spin), and for an empty call.
    public static func threadPoolOverhead(threads: Int = 2, taskMicros: Double = 20, calls: Int = 2000)
        -> (emptyMicros: Double, awakeMicros: Double, asleepMicros: Double)
    {
        let savedThreads = kernelThreads
        defer { setKernelThreads(savedThreads) }
        setKernelThreads(threads)
        let clock = ContinuousClock()
        let noop: @convention(c) (UnsafeMutableRawPointer?, Int32) -> Void = { _, _ in }
        var spinFor = taskMicros * 1e-6
        let spin: @convention(c) (UnsafeMutableRawPointer?, Int32) -> Void = { ctx, _ in
            let limit = ctx!.load(as: Double.self)
            let clock = ContinuousClock()
            let t = clock.now
            while KernelBenchmark.seconds(clock.now - t) < limit {}
        }
        rs_parallel_for(noop, nil, Int32(threads))  // start the workers
        var start = clock.now
        for _ in 0..<calls { rs_parallel_for(noop, nil, Int32(threads)) }
        let empty = seconds(clock.now - start) / Double(calls) * 1e6
        var awake = Double.infinity, asleep = Double.infinity
        withUnsafeMutablePointer(to: &spinFor) { ctx in
            // Median-free estimate robust to a noisy machine: the best of many calls.
            for _ in 0..<calls {
                start = clock.now
                rs_parallel_for(spin, ctx, Int32(threads))
                awake = min(awake, seconds(clock.now - start) * 1e6 - taskMicros)
            }
            for _ in 0..<max(1, calls / 100) {
                let pause = clock.now
                while seconds(clock.now - pause) < 0.002 {}  // longer than the spin: workers sleep
                start = clock.now
                rs_parallel_for(spin, ctx, Int32(threads))
                asleep = min(asleep, seconds(clock.now - start) * 1e6 - taskMicros)
            }
        }
        return (empty, awake, asleep)
    }

    /// Why OpenBLAS must not have a pool of its own: microseconds per threaded skinny matmul
    /// (N = `n` on `shape`, weights hot) in the 20 ms right after a burst of BLAS calls made
    /// with OpenBLAS's own threads (`afterOpenBLASPool`) and made single-threaded, as
    /// `matmulForwardBLAS` does (`afterSingleThreadedBLAS`). OpenBLAS's idle threads spin for up
    /// to a second after a call and take the core the kernel pool's worker needs.
    public static func blasInterplay(shape: Shape = smolLM2Shapes[2], n: Int = 64)
        -> (afterOpenBLASPool: Double, afterSingleThreadedBLAS: Double)
    {
        _ = BLASKernels.ready
        let savedThreads = kernelThreads
        defer { setKernelThreads(savedThreads) }
        setKernelThreads(0)
        let (c, oc) = (shape.inDim, shape.outDim)
        let w = FloatBuffer(count: c * oc)
        let x = FloatBuffer(count: n * c), y = FloatBuffer(count: n * oc)
        for i in 0..<w.count { w[i] = Float(i % 7) * 0.01 }
        for i in 0..<x.count { x[i] = Float(i % 5) * 0.01 }
        func skinnyAfterBLAS(threads: Int) -> Double {
            openblas_set_num_threads(Int32(threads))
            for _ in 0..<50 {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(oc), Int32(c), 1, w.pointer, Int32(c),
                            x.pointer, 1, 0, y.pointer, 1)
            }
            openblas_set_num_threads(1)
            return time(copies: 1, minSeconds: 0.02) { _ in
                matmulForwardSkinny(y.pointer, x.pointer, w.pointer, nil, n: n, inDim: c, outDim: oc)
            } * 1e6
        }
        // A second's pause before each case lets OpenBLAS threads still spinning from earlier
        // calls (or from its start-up) go to sleep, and the last leaves none behind.
        usleep(1_000_000)
        let single = skinnyAfterBLAS(threads: 1)
        let pooled = skinnyAfterBLAS(threads: kernelThreads)
        usleep(1_000_000)
        return (pooled, single)
    }

    /// A plain-text table of `rows` (microseconds per call and ratios).
    public static func table(_ rows: [Row]) -> String {
        func f(_ x: Double, _ digits: Int = 2) -> String {
            let p = pow10(digits)
            return String((x * p).rounded() / p)
        }
        var lines = ["shape                      thr   N   skinny µs  t(N)/t(1)   sgemm µs  sgemv µs  sgemm/skinny  sgemv/skinny"]
        for r in rows {
            let cells = [
                r.shape.description.padding(26), String(r.threads).leftPad(3), String(r.n).leftPad(3),
                f(r.skinny * 1e6, 1).leftPad(11), (r.skinnyGrowth.map { f($0) } ?? "-").leftPad(10),
                f(r.sgemm * 1e6, 1).leftPad(10), f(r.sgemv * 1e6, 1).leftPad(9),
                f(r.overSgemm).leftPad(13), f(r.overSgemv).leftPad(13),
            ]
            lines.append(cells.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    /// Seconds per call of `body(copy)`, cycling through `copies` weight copies for at
    /// least `minSeconds`.
    /// Enough distinct copies of a `shape` weight (≥ 96 MB together) that cycling through them
    /// reads each from DRAM, as a real forward pass does, not from a cache that just held it.
    static func cycledWeights(_ shape: Shape) -> [FloatBuffer] {
        let size = shape.inDim * shape.outDim
        let copies = max(1, (96 << 20) / (size * 4) + 1)
        return (0..<copies).map { i in
            let w = FloatBuffer(count: size)
            for j in 0..<size { w[j] = Float((j &* 31 &+ i) % 17) / 17 - 0.5 }
            return w
        }
    }

    static func time(copies: Int, minSeconds: Double, _ body: (Int) -> Void) -> Double {
        let clock = ContinuousClock()
        body(0)  // warm up (thread start, page faults of the output)
        var calls = 0
        let start = clock.now
        var elapsed = 0.0
        repeat {
            for i in 0..<copies { body(i) }
            calls += copies
            elapsed = seconds(clock.now - start)
        } while elapsed < minSeconds
        return elapsed / Double(calls)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    static func pow10(_ k: Int) -> Double { (0..<k).reduce(1.0) { a, _ in a * 10 } }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
    fileprivate func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

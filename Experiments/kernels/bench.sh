#!/usr/bin/env bash
# Kernel benchmarks of RollspecKernels (see README.md). Builds a throwaway package in a temp
# directory that links the sources of this checkout (KernelBenchmark lives in RollspecBenchmarks,
# with the targets it needs; no change to Package.swift), runs the requested parts and prints
# the tables.
#
#   Experiments/kernels/bench.sh matmul large pool fight ops   # everything, ~6 minutes
#
# `rollspec bench matmul` runs the matmul part from the command line; the pool, fight, large and ops parts are here only.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/Sources/bench"
for t in CBLAS CZeroMQ CRollspecKernels CRollspecDigest RollspecKernels RollspecModel RollspecTraining RollspecBus \
    RollspecBenchmarks; do ln -s "$repo/Sources/$t" "$work/Sources/$t"; done
cat > "$work/Package.swift" <<'PKG'
// swift-tools-version:6.1
import PackageDescription
let package = Package(
    name: "kbench",
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas"),
        .systemLibrary(name: "CZeroMQ", pkgConfig: "libzmq"),
        .target(name: "CRollspecKernels", cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),
        .target(name: "CRollspecDigest", cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),
        .target(name: "RollspecKernels", dependencies: ["CBLAS", "CRollspecKernels"]),
        .target(name: "RollspecModel", dependencies: ["RollspecKernels"]),
        .target(name: "RollspecTraining", dependencies: ["RollspecModel", "RollspecKernels"]),
        .target(name: "RollspecBus", dependencies: ["CZeroMQ", "CRollspecDigest"]),
        .target(name: "RollspecBenchmarks", dependencies: ["RollspecKernels", "CRollspecKernels", "CBLAS", "RollspecModel",
                                                           "RollspecTraining", "RollspecBus", "CZeroMQ"]),
        .executableTarget(name: "bench", dependencies: ["RollspecBenchmarks", "RollspecKernels", "CBLAS"]),
    ],
    swiftLanguageModes: [.v5]
)
PKG
cat > "$work/Sources/bench/main.swift" <<'MAIN'
import RollspecBenchmarks
import RollspecKernels
import CBLAS
import Foundation
let args = CommandLine.arguments
if args.contains("pool") {
    print(KernelBenchmark.threadPoolOverhead())
}
if args.contains("matmul") {
    let rows = KernelBenchmark.skinnyMatmul(minSeconds: 0.03, repeats: 2)
    print(KernelBenchmark.table(rows))
}
if args.contains("fight") {
    for _ in 0..<3 { print(KernelBenchmark.blasInterplay()) }
}
if args.contains("large") {
    let shapes = KernelBenchmark.smolLM2Shapes.filter { $0.outDim == 576 || $0.outDim == 1536 }
    let rows = KernelBenchmark.skinnyMatmul(shapes: shapes, ns: [16, 32, 64, 128, 256, 512], threadCounts: [1, 2], minSeconds: 0.02, repeats: 2)
    print(KernelBenchmark.table(rows))
}
if args.contains("ops") {
    let clock = ContinuousClock()
    func t(_ body: () -> Void) -> Double {
        body()
        var best = Double.infinity
        for _ in 0..<5 {
            let s = clock.now; var calls = 0
            while clock.now - s < .milliseconds(20) { body(); calls += 1 }
            best = min(best, Double((clock.now - s) / .nanoseconds(1)) / Double(calls) / 1000)
        }
        return best
    }
    let H = 9, KV = 3, D = 64
    for (start, n) in [(1023, 1), (1023, 8), (255, 1)] {
        let L = start + n
        let q = FloatBuffer(count: n * H * D), k = FloatBuffer(count: L * KV * D), v = FloatBuffer(count: L * KV * D), o = FloatBuffer(count: n * H * D)
        for i in 0..<k.count { k[i] = Float(i % 11) * 0.01; v[i] = Float(i % 7) * 0.1 }
        for i in 0..<q.count { q[i] = Float(i % 5) * 0.1 }
        let ref = t { attentionForwardReference(o.pointer, q.pointer, keys: k.pointer, values: v.pointer, startPosition: start, n: n, heads: H, kvHeads: KV, headDim: D) }
        setKernelThreads(1)
        let f1 = t { attentionForward(o.pointer, q.pointer, keys: k.pointer, values: v.pointer, startPosition: start, n: n, heads: H, kvHeads: KV, headDim: D) }
        setKernelThreads(2)
        let f2 = t { attentionForward(o.pointer, q.pointer, keys: k.pointer, values: v.pointer, startPosition: start, n: n, heads: H, kvHeads: KV, headDim: D) }
        print("attention start=\(start) n=\(n): reference \(ref) µs, fast 1 thread \(f1) µs, 2 threads \(f2) µs")
    }
    let x = FloatBuffer(count: 49152), y = FloatBuffer(count: 49152), w = FloatBuffer(count: 49152)
    for i in 0..<x.count { x[i] = Float(i % 13) * 0.1; w[i] = 1 }
    print("softmax 49152: ref", t { softmaxForwardReference(y.pointer, x.pointer, n: 1, dim: 49152) }, "fast", t { softmaxForward(y.pointer, x.pointer, n: 1, dim: 49152) })
    print("rmsnorm 8x576: ref", t { rmsNormForwardReference(y.pointer, x.pointer, w.pointer, n: 8, dim: 576, eps: 1e-5) }, "fast", t { rmsNormForward(y.pointer, x.pointer, w.pointer, n: 8, dim: 576, eps: 1e-5) })
    print("swiglu 8x1536: ref", t { swigluForwardReference(y.pointer, x.pointer, w.pointer, count: 8 * 1536) }, "fast", t { swigluForward(y.pointer, x.pointer, w.pointer, count: 8 * 1536) })
    let pos: [Int32] = Array(1000..<1008)
    let table = RoPETable(headDim: 64, theta: 100000, maxPositions: 2048)
    pos.withUnsafeBufferPointer { p in
        print("rope 8x9x64: ref", t { ropeForwardReference(x.pointer, positions: p.baseAddress!, n: 8, heads: 9, headDim: 64, theta: 100000) },
              "per-call", t { ropeForward(x.pointer, positions: p.baseAddress!, n: 8, heads: 9, headDim: 64, theta: 100000) },
              "table", t { ropeForward(x.pointer, positions: p.baseAddress!, n: 8, heads: 9, headDim: 64, table: table) })
    }
    var h = [UInt16](repeating: 0x3c00, count: 1 << 20)
    h.withUnsafeMutableBufferPointer { hb in
        print("half→float 1M: ref", t { convertHalfToFloatReference(y.pointer, hb.baseAddress!, count: 49152) } , "fast", t { convertHalfToFloat(y.pointer, hb.baseAddress!, count: 49152) }, "(49152 values)")
    }
}
MAIN
(cd "$work" && swift build -c release >&2)
"$work/.build/release/bench" "${@:-matmul}"

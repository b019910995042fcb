// Matrix multiplication against a weight stored row-major as `[outDim, inDim]` (the HF
// `nn.Linear` layout): out = input · weightᵀ (+ bias).
// Legend: N rows of input (tokens), C = inDim, OC = outDim.

import CBLAS
import CRollspecKernels

/// `out[N, OC] = input[N, C] · weight[OC, C]ᵀ + bias[OC]`.
///
/// Reference version: obviously correct, slow. The tests hold `matmulForward` to it.
public func matmulForwardReference(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
    n: Int, inDim: Int, outDim: Int
) {
    for r in 0..<n {
        for o in 0..<outDim {
            var acc: Double = 0
            for c in 0..<inDim { acc += Double(input[r * inDim + c]) * Double(weight[o * inDim + c]) }
            out[r * outDim + o] = Float(acc) + (bias?[o] ?? 0)
        }
    }
}

/// `out[N, OC] = input[N, C] · weight[OC, C]ᵀ + bias[OC]` through BLAS `sgemm`.
///
/// Large products are split by output rows across the kernel thread pool, each part one
/// single-threaded `sgemm`: OpenBLAS's own pool is kept at one thread (see `setKernelThreads`)
/// so that only one set of threads ever competes for the cores.
public func matmulForwardBLAS(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
    n: Int, inDim: Int, outDim: Int
) {
    _ = BLASKernels.ready
    let threads = kernelThreads
    // Below ~1M multiply-adds the split costs more than a second core gives.
    guard threads > 1, n * inDim * outDim >= 1 << 20, outDim >= 32 * threads else {
        sgemm(out, input, weight, bias, n: n, inDim: inDim, outDim: outDim, rows: 0..<outDim)
        return
    }
    // Chunks are multiples of 16 output columns so no two threads share a cache line.
    let chunk = (outDim + threads - 1) / threads
    let step = (chunk + 15) / 16 * 16
    kernelParallelFor(tasks: (outDim + step - 1) / step) { task in
        let rows = task * step..<min(outDim, (task + 1) * step)
        sgemm(out, input, weight, bias, n: n, inDim: inDim, outDim: outDim, rows: rows)
    }
}

/// One `sgemm` for output columns `rows` of `out[N, OC]` (weight rows `rows`).
private func sgemm(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
    n: Int, inDim: Int, outDim: Int, rows: Range<Int>
) {
    let o = out + rows.lowerBound
    if let bias {
        for r in 0..<n { (o + r * outDim).update(from: bias + rows.lowerBound, count: rows.count) }
    }
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(rows.count), Int32(inDim),
        1, input, Int32(inDim), weight + rows.lowerBound * inDim, Int32(inDim),
        bias == nil ? 0 : 1, o, Int32(outDim))
}

/// `out[N, OC] = input[N, C] · weight[OC, C]ᵀ + bias[OC]`: the fast path used by the model.
///
/// Up to `skinnyMatmulMaxRows(_:)` rows (decode, draft verification, short prefill) run the
/// register-blocked skinny kernel, which reads each weight row once for all rows; more rows
/// (long prefill) go to BLAS `sgemm`, which is then as fast or faster (measured in
/// Experiments/kernels). Both split the work across the kernel thread pool.
public func matmulForward(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
    n: Int, inDim: Int, outDim: Int
) {
    if n <= skinnyMatmulMaxRows(KernelISA.current) {
        matmulForwardSkinny(out, input, weight, bias, n: n, inDim: inDim, outDim: outDim)
    } else {
        matmulForwardBLAS(out, input, weight, bias, n: n, inDim: inDim, outDim: outDim)
    }
}

/// Row count up to which `matmulForward` uses the skinny kernel rather than `sgemm`, by the
/// kernels' instruction set. AVX-512 (24 zmm accumulators, C chunked) keeps up with sgemm to 96
/// rows (Experiments/kernels). The AVX2 kernel (4 × 2 blocks over all of C) falls behind past
/// ~24: on SmolLM2's shapes, 2 threads, 2-vCPU Zen 3 (`rollspec bench matmul --rows 16,32,64`),
/// a layer at 64 rows took 4.96 ms skinny against 3.72 ms sgemm (down_proj 1.87 against
/// 0.87 ms), at 32 rows 2.69 against 2.25 ms, and at 16 about the same (1.57 against 1.56).
public func skinnyMatmulMaxRows(_ isa: KernelISA) -> Int {
    isa >= .avx512 ? 96 : 24
}

/// `out[N, OC] = input[N, C] · weight[OC, C]ᵀ + bias[OC]` with the skinny kernel at any N:
/// blocks of 4 weight rows × up to 6 input rows held in registers, each weight row streamed
/// from memory once (see `CRollspecKernels/matmul.c`).
///
/// - Parameter threaded: split the output rows across the kernel thread pool.
public func matmulForwardSkinny(
    _ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
    n: Int, inDim: Int, outDim: Int, threaded: Bool = true
) {
    rs_matmul_skinny(out, input, weight, bias, Int64(n), Int64(inDim), Int64(outDim), threaded ? 1 : 0)
}

// MARK: Backward

/// Reference backward of `matmulForward`, accumulated in double: `dInput[N, C] += dOut[N, OC] ·
/// weight[OC, C]`, `dWeight[OC, C] += dOutᵀ · input`, `dBias[OC] += Σ_n dOut[n, :]`.
/// Any gradient may be nil to skip it; all three accumulate.
public func matmulBackwardReference(
    _ dInput: UnsafeMutablePointer<Float>?, _ dWeight: UnsafeMutablePointer<Float>?,
    _ dBias: UnsafeMutablePointer<Float>?, _ dOut: UnsafePointer<Float>,
    _ input: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
    n: Int, inDim: Int, outDim: Int
) {
    if let dInput {
        for r in 0..<n {
            for c in 0..<inDim {
                var acc: Double = 0
                for o in 0..<outDim { acc += Double(dOut[r * outDim + o]) * Double(weight[o * inDim + c]) }
                dInput[r * inDim + c] += Float(acc)
            }
        }
    }
    if let dWeight {
        for o in 0..<outDim {
            for c in 0..<inDim {
                var acc: Double = 0
                for r in 0..<n { acc += Double(dOut[r * outDim + o]) * Double(input[r * inDim + c]) }
                dWeight[o * inDim + c] += Float(acc)
            }
        }
    }
    if let dBias {
        for o in 0..<outDim {
            var acc: Double = 0
            for r in 0..<n { acc += Double(dOut[r * outDim + o]) }
            dBias[o] += Float(acc)
        }
    }
}

/// Backward of `matmulForward` through BLAS `sgemm`: `dInput[N, C] += dOut[N, OC] · weight[OC, C]`,
/// `dWeight[OC, C] += dOutᵀ · input[N, C]`, `dBias[OC] += Σ_n dOut[n, :]`.
///
/// Any gradient may be nil to skip it; all three accumulate, so q/k/v projections of one input
/// can sum into one `dInput`. Large products are split across the kernel thread pool: dInput
/// by blocks of rows, dWeight by blocks of output channels, each block one single-threaded
/// `sgemm` (as in `matmulForwardBLAS`).
public func matmulBackward(
    _ dInput: UnsafeMutablePointer<Float>?, _ dWeight: UnsafeMutablePointer<Float>?,
    _ dBias: UnsafeMutablePointer<Float>?, _ dOut: UnsafePointer<Float>,
    _ input: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
    n: Int, inDim: Int, outDim: Int
) {
    _ = BLASKernels.ready
    if let dBias {
        for r in 0..<n { rs_add_inplace(dBias, dOut + r * outDim, Int64(outDim)) }
    }
    // dInput[rows] += dOut[rows, :] · W
    func inputPart(_ rows: Range<Int>) {
        guard let dInput, !rows.isEmpty else { return }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows.count), Int32(inDim), Int32(outDim),
            1, dOut + rows.lowerBound * outDim, Int32(outDim), weight, Int32(inDim),
            1, dInput + rows.lowerBound * inDim, Int32(inDim))
    }
    // dWeight[channels] += dOut[:, channels]ᵀ · input
    func weightPart(_ channels: Range<Int>) {
        guard let dWeight, !channels.isEmpty else { return }
        cblas_sgemm(
            CblasRowMajor, CblasTrans, CblasNoTrans, Int32(channels.count), Int32(inDim), Int32(n),
            1, dOut + channels.lowerBound, Int32(outDim), input, Int32(inDim),
            1, dWeight + channels.lowerBound * inDim, Int32(inDim))
    }
    let threads = kernelThreads
    guard threads > 1, n * inDim * outDim >= 1 << 20 else {
        inputPart(0..<n)
        weightPart(0..<outDim)
        return
    }
    // Tasks 0 ..< threads take row blocks of dInput, the rest channel blocks of dWeight
    // (multiples of 16 channels so no two threads share a cache line of dWeight).
    let rowStep = (n + threads - 1) / threads
    let channelStep = ((outDim + threads - 1) / threads + 15) / 16 * 16
    kernelParallelFor(tasks: 2 * threads) { task in
        if task < threads {
            inputPart(min(n, task * rowStep)..<min(n, (task + 1) * rowStep))
        } else {
            let t = task - threads
            weightPart(min(outDim, t * channelStep)..<min(outDim, (t + 1) * channelStep))
        }
    }
}

import Foundation
import RollspecKernels
import RollspecModel
import RollspecTraining
import Testing

/// Every backward kernel against central finite differences of its reference forward, and
/// the fast kernel against its reference twin.
@Suite struct KernelBackwardTests {
    @Test(arguments: [(5, 7, 6), (130, 64, 160)])
    func matmul(shape: (Int, Int, Int)) {
        let (n, c, oc) = shape
        let x = randomBuffer(n * c, seed: 1), w = randomBuffer(oc * c, seed: 2, scale: 0.3)
        let b = randomBuffer(oc, seed: 3), r = randomBuffer(n * oc, seed: 4)
        let dx = FloatBuffer(count: n * c), dw = FloatBuffer(count: oc * c), db = FloatBuffer(count: oc)
        matmulBackward(dx.pointer, dw.pointer, db.pointer, r.pointer, x.pointer, w.pointer, n: n, inDim: c, outDim: oc)
        let rx = FloatBuffer(count: n * c), rw = FloatBuffer(count: oc * c), rb = FloatBuffer(count: oc)
        matmulBackwardReference(rx.pointer, rw.pointer, rb.pointer, r.pointer, x.pointer, w.pointer, n: n, inDim: c, outDim: oc)
        #expect(maxAbsDiff(dx, rx) < 1e-3 && maxAbsDiff(dw, rw) < 1e-3 && maxAbsDiff(db, rb) < 1e-3)
        guard n < 10 else { return }
        let y = FloatBuffer(count: n * oc)
        let loss = { () -> Double in
            matmulForwardReference(y.pointer, x.pointer, w.pointer, b.pointer, n: n, inDim: c, outDim: oc)
            return weightedSum(y, r)
        }
        for (p, g) in [(x, dx), (w, dw), (b, db)] {
            let res = GradientChecker.check(parameter: p, analytic: g, loss: loss)
            #expect(res.passes(tolerance: kernelTolerance), "\(res)")
        }
    }

    @Test func rmsNorm() {
        let n = 3, dim = 10, eps: Float = 1e-5
        let x = randomBuffer(n * dim, seed: 5), w = randomBuffer(dim, seed: 6, scale: 0.2, offset: 1)
        let r = randomBuffer(n * dim, seed: 7)
        let dx = FloatBuffer(count: n * dim), dw = FloatBuffer(count: dim)
        rmsNormBackward(dx.pointer, dw.pointer, r.pointer, x.pointer, w.pointer, n: n, dim: dim, eps: eps)
        let rx = FloatBuffer(count: n * dim), rw = FloatBuffer(count: dim)
        rmsNormBackwardReference(rx.pointer, rw.pointer, r.pointer, x.pointer, w.pointer, n: n, dim: dim, eps: eps)
        #expect(maxAbsDiff(dx, rx) < 1e-5 && maxAbsDiff(dw, rw) < 1e-5)
        let y = FloatBuffer(count: n * dim)
        let loss = { () -> Double in
            rmsNormForwardReference(y.pointer, x.pointer, w.pointer, n: n, dim: dim, eps: eps)
            return weightedSum(y, r)
        }
        for (p, g) in [(x, dx), (w, dw)] {
            let res = GradientChecker.check(parameter: p, analytic: g, loss: loss)
            #expect(res.passes(tolerance: kernelTolerance), "\(res)")
        }
        // Large enough to take the threaded path (partial dWeight rows summed).
        let big = 300, bx = randomBuffer(big * 256, seed: 8), br = randomBuffer(big * 256, seed: 9)
        let bw = randomBuffer(256, seed: 10, scale: 0.2, offset: 1)
        let fx = FloatBuffer(count: big * 256), fw = FloatBuffer(count: 256)
        let gx = FloatBuffer(count: big * 256), gw = FloatBuffer(count: 256)
        rmsNormBackward(fx.pointer, fw.pointer, br.pointer, bx.pointer, bw.pointer, n: big, dim: 256, eps: eps)
        rmsNormBackwardReference(gx.pointer, gw.pointer, br.pointer, bx.pointer, bw.pointer, n: big, dim: 256, eps: eps)
        #expect(maxAbsDiff(fx, gx) < 1e-4 && maxAbsDiff(fw, gw) < 1e-3)
    }

    @Test func rope() {
        let n = 4, heads = 3, hd = 8, theta: Float = 10000
        let positions: [Int32] = [0, 5, 2, 17]
        let x = randomBuffer(n * heads * hd, seed: 11), r = randomBuffer(n * heads * hd, seed: 12)
        let table = RoPETable(headDim: hd, theta: theta, maxPositions: 32)
        let dx = r.copy(), rx = r.copy()
        ropeBackward(dx.pointer, positions: positions, n: n, heads: heads, headDim: hd, table: table)
        ropeBackwardReference(rx.pointer, positions: positions, n: n, heads: heads, headDim: hd, theta: theta)
        #expect(maxAbsDiff(dx, rx) < 1e-5)
        let y = FloatBuffer(count: x.count)
        let res = GradientChecker.check(parameter: x, analytic: dx) {
            y.pointer.update(from: x.pointer, count: x.count)
            ropeForwardReference(y.pointer, positions: positions, n: n, heads: heads, headDim: hd, theta: theta)
            return weightedSum(y, r)
        }
        #expect(res.passes(tolerance: kernelTolerance), "\(res)")
    }

    @Test func swiglu() {
        let count = 40
        let g = randomBuffer(count, seed: 13, scale: 2), u = randomBuffer(count, seed: 14), r = randomBuffer(count, seed: 15)
        let dg = FloatBuffer(count: count), du = FloatBuffer(count: count)
        swigluBackward(dg.pointer, du.pointer, r.pointer, g.pointer, u.pointer, count: count)
        let rg = FloatBuffer(count: count), ru = FloatBuffer(count: count)
        swigluBackwardReference(rg.pointer, ru.pointer, r.pointer, g.pointer, u.pointer, count: count)
        #expect(maxAbsDiff(dg, rg) < 1e-5 && maxAbsDiff(du, ru) < 1e-5)
        let y = FloatBuffer(count: count)
        let loss = { () -> Double in
            swigluForwardReference(y.pointer, g.pointer, u.pointer, count: count)
            return weightedSum(y, r)
        }
        for (p, d) in [(g, dg), (u, du)] {
            let res = GradientChecker.check(parameter: p, analytic: d, loss: loss)
            #expect(res.passes(tolerance: kernelTolerance), "\(res)")
        }
    }

    @Test func attention() {
        let offsets = [0, 3, 8, 12], heads = 4, kvHeads = 2, hd = 8
        let n = offsets.last!, qDim = heads * hd, kvDim = kvHeads * hd
        let q = randomBuffer(n * qDim, seed: 16), k = randomBuffer(n * kvDim, seed: 17), v = randomBuffer(n * kvDim, seed: 18)
        let r = randomBuffer(n * qDim, seed: 19)
        let out = FloatBuffer(count: n * qDim), lse = FloatBuffer(count: n * heads)
        let refOut = FloatBuffer(count: n * qDim), refLse = FloatBuffer(count: n * heads)
        attentionTrainingForward(out.pointer, lse.pointer, q.pointer, keys: k.pointer, values: v.pointer,
                                 offsets: offsets, heads: heads, kvHeads: kvHeads, headDim: hd)
        attentionTrainingForwardReference(refOut.pointer, refLse.pointer, q.pointer, keys: k.pointer, values: v.pointer,
                                          offsets: offsets, heads: heads, kvHeads: kvHeads, headDim: hd)
        #expect(maxAbsDiff(out, refOut) < 1e-5 && maxAbsDiff(lse, refLse) < 1e-5)
        // The inference kernel (KV cache, start 0) agrees sequence by sequence.
        let inference = FloatBuffer(count: n * qDim)
        for s in 0..<offsets.count - 1 {
            let r0 = offsets[s]
            attentionForward(inference.pointer + r0 * qDim, q.pointer + r0 * qDim, keys: k.pointer + r0 * kvDim,
                             values: v.pointer + r0 * kvDim, startPosition: 0, n: offsets[s + 1] - r0,
                             heads: heads, kvHeads: kvHeads, headDim: hd)
        }
        #expect(maxAbsDiff(out, inference) < 1e-5)

        let dq = FloatBuffer(count: n * qDim), dk = FloatBuffer(count: n * kvDim), dv = FloatBuffer(count: n * kvDim)
        attentionBackward(dq.pointer, dk.pointer, dv.pointer, r.pointer, q.pointer, keys: k.pointer, values: v.pointer,
                          out: out.pointer, lse: lse.pointer, offsets: offsets, heads: heads, kvHeads: kvHeads, headDim: hd)
        let rq = FloatBuffer(count: n * qDim), rk = FloatBuffer(count: n * kvDim), rv = FloatBuffer(count: n * kvDim)
        attentionBackwardReference(rq.pointer, rk.pointer, rv.pointer, r.pointer, q.pointer, keys: k.pointer, values: v.pointer,
                                   out: out.pointer, offsets: offsets, heads: heads, kvHeads: kvHeads, headDim: hd)
        #expect(maxAbsDiff(dq, rq) < 1e-4 && maxAbsDiff(dk, rk) < 1e-4 && maxAbsDiff(dv, rv) < 1e-4)
        let y = FloatBuffer(count: n * qDim), l = FloatBuffer(count: n * heads)
        let loss = { () -> Double in
            attentionTrainingForwardReference(y.pointer, l.pointer, q.pointer, keys: k.pointer, values: v.pointer,
                                              offsets: offsets, heads: heads, kvHeads: kvHeads, headDim: hd)
            return weightedSum(y, r)
        }
        for (p, d) in [(q, dq), (k, dk), (v, dv)] {
            let res = GradientChecker.check(parameter: p, analytic: d, loss: loss)
            #expect(res.passes(tolerance: kernelTolerance), "\(res)")
        }
    }

    /// The training attention's forward and backward against their references at every ISA
    /// level this CPU has (the pool runs a caller's tasks at the caller's level), at head widths
    /// that take the vector kernels' masked tails and at SmolLM2's, with grouped heads and
    /// sequences long enough for the scores' four-keys-at-a-time path.
    @Test func attentionAtEveryLevel() {
        let offsets = [0, 3, 10, 19], heads = 6, kvHeads = 2
        for hd in [8, 20, 64] {
            let n = offsets.last!, qDim = heads * hd, kvDim = kvHeads * hd
            let q = randomBuffer(n * qDim, seed: 26), k = randomBuffer(n * kvDim, seed: 27), v = randomBuffer(n * kvDim, seed: 28)
            let r = randomBuffer(n * qDim, seed: 29)
            let refOut = FloatBuffer(count: n * qDim), refLse = FloatBuffer(count: n * heads)
            attentionTrainingForwardReference(refOut.pointer, refLse.pointer, q.pointer, keys: k.pointer, values: v.pointer,
                                              offsets: offsets, heads: heads, kvHeads: kvHeads, headDim: hd)
            let rq = FloatBuffer(count: n * qDim), rk = FloatBuffer(count: n * kvDim), rv = FloatBuffer(count: n * kvDim)
            attentionBackwardReference(rq.pointer, rk.pointer, rv.pointer, r.pointer, q.pointer, keys: k.pointer, values: v.pointer,
                                       out: refOut.pointer, offsets: offsets, heads: heads, kvHeads: kvHeads, headDim: hd)
            for isa in KernelISA.allCases where isa.rawValue <= KernelISA.detected.rawValue {
                KernelISA.current = isa
                defer { KernelISA.current = .detected }
                let out = FloatBuffer(count: n * qDim), lse = FloatBuffer(count: n * heads)
                attentionTrainingForward(out.pointer, lse.pointer, q.pointer, keys: k.pointer, values: v.pointer,
                                         offsets: offsets, heads: heads, kvHeads: kvHeads, headDim: hd)
                #expect(maxAbsDiff(out, refOut) < 1e-5 && maxAbsDiff(lse, refLse) < 1e-5, "forward, \(isa), D=\(hd)")
                let dq = FloatBuffer(count: n * qDim), dk = FloatBuffer(count: n * kvDim), dv = FloatBuffer(count: n * kvDim)
                attentionBackward(dq.pointer, dk.pointer, dv.pointer, r.pointer, q.pointer, keys: k.pointer, values: v.pointer,
                                  out: out.pointer, lse: lse.pointer, offsets: offsets, heads: heads, kvHeads: kvHeads, headDim: hd)
                #expect(maxAbsDiff(dq, rq) < 1e-4 && maxAbsDiff(dk, rk) < 1e-4 && maxAbsDiff(dv, rv) < 1e-4, "backward, \(isa), D=\(hd)")
            }
        }
    }

    @Test func softmaxCrossEntropy() {
        let n = 4, vocab = 9
        let z = randomBuffer(n * vocab, seed: 20, scale: 2)
        let targets: [Int32] = [3, -1, 0, 8]
        let dLoss = FloatBuffer([0.5, 2, -1, 0.25])
        let losses = FloatBuffer(count: n), probs = FloatBuffer(count: n * vocab)
        let refLosses = FloatBuffer(count: n), refProbs = FloatBuffer(count: n * vocab)
        softmaxCrossEntropyForward(losses.pointer, probs.pointer, z.pointer, targets: targets, n: n, vocab: vocab)
        softmaxCrossEntropyForwardReference(refLosses.pointer, refProbs.pointer, z.pointer, targets: targets, n: n, vocab: vocab)
        #expect(maxAbsDiff(losses, refLosses) < 1e-5 && maxAbsDiff(probs, refProbs) < 1e-6)
        #expect(losses[1] == 0)
        let dz = FloatBuffer(count: n * vocab), rz = FloatBuffer(count: n * vocab)
        softmaxCrossEntropyBackward(dz.pointer, probs.pointer, targets: targets, dLosses: dLoss.pointer, n: n, vocab: vocab)
        softmaxCrossEntropyBackwardReference(rz.pointer, refProbs.pointer, targets: targets, dLosses: dLoss.pointer, n: n, vocab: vocab)
        #expect(maxAbsDiff(dz, rz) < 1e-6)
        let res = GradientChecker.check(parameter: z, analytic: dz) {
            softmaxCrossEntropyForwardReference(refLosses.pointer, refProbs.pointer, z.pointer, targets: targets, n: n, vocab: vocab)
            return weightedSum(refLosses, dLoss)
        }
        #expect(res.passes(tolerance: kernelTolerance), "\(res)")
    }

    @Test func softmax() {
        let n = 2, dim = 6
        let z = randomBuffer(n * dim, seed: 21), r = randomBuffer(n * dim, seed: 22)
        let p = FloatBuffer(count: n * dim)
        softmaxForwardReference(p.pointer, z.pointer, n: n, dim: dim)
        let dz = FloatBuffer(count: n * dim), rz = FloatBuffer(count: n * dim)
        softmaxBackward(dz.pointer, r.pointer, p.pointer, n: n, dim: dim)
        softmaxBackwardReference(rz.pointer, r.pointer, p.pointer, n: n, dim: dim)
        #expect(maxAbsDiff(dz, rz) < 1e-6)
        let y = FloatBuffer(count: n * dim)
        let res = GradientChecker.check(parameter: z, analytic: dz) {
            softmaxForwardReference(y.pointer, z.pointer, n: n, dim: dim)
            return weightedSum(y, r)
        }
        #expect(res.passes(tolerance: kernelTolerance), "\(res)")
    }

    @Test func embeddingAndResidual() {
        let vocab = 5, dim = 4, tokens: [Int32] = [1, 3, 1, 0]
        let table = randomBuffer(vocab * dim, seed: 23), r = randomBuffer(tokens.count * dim, seed: 24)
        let dt = FloatBuffer(count: vocab * dim), rt = FloatBuffer(count: vocab * dim)
        embeddingBackward(dt.pointer, r.pointer, tokens: tokens, n: tokens.count, dim: dim)
        embeddingBackwardReference(rt.pointer, r.pointer, tokens: tokens, n: tokens.count, dim: dim)
        #expect(maxAbsDiff(dt, rt) == 0)
        let y = FloatBuffer(count: tokens.count * dim)
        let res = GradientChecker.check(parameter: table, analytic: dt) {
            embeddingForward(y.pointer, table.pointer, tokens: tokens, n: tokens.count, dim: dim)
            return weightedSum(y, r)
        }
        #expect(res.passes(tolerance: kernelTolerance), "\(res)")
        // acc += x: ∂/∂x of Σ r·acc is r.
        let x = randomBuffer(6, seed: 25), acc = randomBuffer(6, seed: 26), r2 = randomBuffer(6, seed: 27)
        let dx = FloatBuffer(count: 6)
        addInPlaceBackward(dx.pointer, r2.pointer, count: 6)
        let out = FloatBuffer(count: 6)
        let res2 = GradientChecker.check(parameter: x, analytic: dx) {
            out.pointer.update(from: acc.pointer, count: 6)
            addInPlaceReference(out.pointer, x.pointer, count: 6)
            return weightedSum(out, r2)
        }
        #expect(res2.passes(tolerance: kernelTolerance), "\(res2)")
    }
}

/// The checker must catch the mistakes it exists for: these deliberately broken gradients
/// have to FAIL it.
@Suite struct BrokenGradientTests {
    @Test func wrongSignFails() {
        let count = 40
        let g = randomBuffer(count, seed: 13, scale: 2), u = randomBuffer(count, seed: 14), r = randomBuffer(count, seed: 15)
        let dg = FloatBuffer(count: count), du = FloatBuffer(count: count)
        swigluBackward(dg.pointer, du.pointer, r.pointer, g.pointer, u.pointer, count: count)
        for i in 0..<count { du[i] = -du[i] }  // the bug
        let y = FloatBuffer(count: count)
        let res = GradientChecker.check(parameter: u, analytic: du) {
            swigluForwardReference(y.pointer, g.pointer, u.pointer, count: count)
            return weightedSum(y, r)
        }
        #expect(!res.passes(tolerance: kernelTolerance), "a wrong-sign gradient passed: \(res)")
        #expect(res.maxError > 0.9)
    }

    @Test func missingTermFails() {
        // RMSNorm dInput without the term through 1/rms (−r³/C · x · Σ w·dy·x).
        let n = 3, dim = 10, eps: Float = 1e-5
        let x = randomBuffer(n * dim, seed: 5), w = randomBuffer(dim, seed: 6, scale: 0.2, offset: 1)
        let r = randomBuffer(n * dim, seed: 7)
        let dx = FloatBuffer(count: n * dim)
        for row in 0..<n {
            var ss: Double = 0
            for c in 0..<dim { ss += Double(x[row * dim + c] * x[row * dim + c]) }
            let rs = Float(1 / (ss / Double(dim) + Double(eps)).squareRoot())
            for c in 0..<dim { dx[row * dim + c] = rs * w[c] * r[row * dim + c] }
        }
        let y = FloatBuffer(count: n * dim)
        let res = GradientChecker.check(parameter: x, analytic: dx) {
            rmsNormForwardReference(y.pointer, x.pointer, w.pointer, n: n, dim: dim, eps: eps)
            return weightedSum(y, r)
        }
        #expect(!res.passes(tolerance: kernelTolerance), "a gradient missing a term passed: \(res)")
    }
}

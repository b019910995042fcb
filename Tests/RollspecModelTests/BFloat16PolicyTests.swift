import Testing
import RollspecKernels
import RollspecModel
import RollspecTesting

/// A `.bfloat16` model is the float model of its rounded weights on every path: single-token
/// decode and short verifies (bf16 kernel), long verifies and wide batches (float kernels on the
/// rounded copy). The reference rounds the weights here, by picking the nearer of the two
/// bfloat16 neighbours (ties to the even one), not by the library's bit trick.
@Suite struct BFloat16PolicyTests {
    static func nearestBFloat16(_ x: Float) -> Float {
        guard x.isFinite else { return x }
        let down = Float(bitPattern: x.bitPattern & 0xffff_0000)
        let up = Float(bitPattern: (x.bitPattern & 0xffff_0000) &+ 0x1_0000)
        let dDown = abs(Double(x) - Double(down)), dUp = abs(Double(up) - Double(x))
        if dDown != dUp { return dDown < dUp ? down : up }
        return (down.bitPattern >> 16) & 1 == 0 ? down : up
    }

    static func roundedHere(_ w: LlamaWeights) -> LlamaWeights {
        var tensors = [String: FloatBuffer]()
        for (name, buffer) in w.namedTensors { tensors[name] = FloatBuffer(buffer.array.map(nearestBFloat16)) }
        return LlamaWeights(config: w.config, tensors: tensors)
    }

    let config = TinyModels.llamaConfig(vocab: 50, hidden: 24, layers: 2, heads: 6, kvHeads: 3, ffn: 40, tied: false, bias: true)
    let tokens = [3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 32, 38, 4, 6, 2, 6, 43, 3, 8, 11, 12, 13, 1]

    func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    @Test func everyPathComputesTheRoundedModel() {
        let weights = TinyModels.randomWeights(config: config, seed: 31)
        let bf16 = LlamaModel(weights: weights, precision: .bfloat16)
        let reference = LlamaModel(weights: Self.roundedHere(weights))
        let unrounded = LlamaModel(weights: weights)
        #expect(bf16.precision == .bfloat16)
        #expect(tokens.count > LlamaModel.roundedMaxRows, "the long verify must take the float path")

        // Long verify (float kernels on the rounded copy) and a chain of decodes (bf16 kernel).
        let want = reference.verify(tokens, cache: reference.makeCache())
        let long = bf16.verify(tokens, cache: bf16.makeCache())
        let cache = bf16.makeCache()
        var worst: Float = 0, worstLong: Float = 0, rounding: Float = 0
        for (i, t) in tokens.enumerated() {
            worst = max(worst, maxDifference(bf16.decode(t, cache: cache), want.rowArray(i)))
            worstLong = max(worstLong, maxDifference(long.rowArray(i), want.rowArray(i)))
        }
        let plain = unrounded.verify(tokens, cache: unrounded.makeCache())
        for i in tokens.indices { rounding = max(rounding, maxDifference(plain.rowArray(i), want.rowArray(i))) }
        #expect(worst < 2e-4 && worstLong < 2e-4, "decode \(worst), long verify \(worstLong)")
        // Not vacuous: the rounding moves the logits far more than summation order does.
        #expect(rounding > 20 * max(worst, worstLong, 1e-6), "rounding moved logits by only \(rounding)")

        // A batch wider than the bf16 kernel's rows, after a shared prefix.
        let b = LlamaModel.roundedMaxRows + 4
        let caches = (0..<b).map { _ in bf16.makeCache() }, refCaches = (0..<b).map { _ in reference.makeCache() }
        for (c, r) in zip(caches, refCaches) { _ = bf16.prefill([1, 2, 3], cache: c); _ = reference.prefill([1, 2, 3], cache: r) }
        let next = (0..<b).map { $0 % config.vocabSize }
        let batch = bf16.decodeBatch(next, caches: caches), refBatch = reference.decodeBatch(next, caches: refCaches)
        var worstBatch: Float = 0
        for i in 0..<b { worstBatch = max(worstBatch, maxDifference(batch.rowArray(i), refBatch.rowArray(i))) }
        #expect(worstBatch < 2e-4, "batch of \(b): \(worstBatch)")
    }

    @Test func theCallersWeightsAreNotRounded() {
        let weights = TinyModels.randomWeights(config: config, seed: 32)
        let before = weights.layers[0].wq.array
        let model = LlamaModel(weights: weights, precision: .bfloat16)
        #expect(weights.layers[0].wq.array == before)
        #expect(model.weights.layers[0].wq.array != before)
        #expect(model.weights.layers[0].wq.array == before.map(Self.nearestBFloat16))
    }

    @Test func aTiedHeadStaysTied() {
        let weights = TinyModels.randomWeights(config: TinyModels.llamaConfig(), seed: 33)
        let rounded = weights.roundedToBFloat16()
        #expect(rounded.lmHead === rounded.embedding)
    }
}

import Testing
import RollspecKernels
import RollspecModel
import RollspecTesting

/// A `.bfloat16` model computes one function on every path, whatever the pass's width and the
/// CPU's instruction set: single-token decode, verifies and batches through the bf16 kernel
/// (VDPBF16PS, or float FMAs on widened values at lower levels), and passes wider than
/// `roundedMaxRows()` (below AMX) through `sgemm` on the rounded float copy with inputs rounded
/// in Swift.
/// That function is checked against an independent numpy implementation on three small models
/// in `ReferenceLogitsTests.bfloat16LogitsMatchTheNumpyReference`. The weights are rounded here
/// by `BFloat16Reference`, not by the library's bit trick.
@Suite struct BFloat16PolicyTests {
    static func roundedHere(_ w: LlamaWeights) -> LlamaWeights {
        var tensors = [String: FloatBuffer]()
        for (name, buffer) in w.namedTensors { tensors[name] = FloatBuffer(buffer.array.map(BFloat16Reference.nearest)) }
        return LlamaWeights(config: w.config, tensors: tensors)
    }

    // C = 72 and F = 100: whole 32-channel steps of the bf16 kernel and a masked tail.
    let config = TinyModels.llamaConfig(vocab: 50, hidden: 72, layers: 2, heads: 6, kvHeads: 3, ffn: 100, tied: false, bias: true)

    func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    @Test func everyPathComputesTheSameRoundedModel() {
        let weights = TinyModels.randomWeights(config: config, seed: 31)
        let bf16 = LlamaModel(weights: weights, precision: .bfloat16)
        let weightsOnly = LlamaModel(weights: Self.roundedHere(weights))  // float activations
        #expect(bf16.precision == .bfloat16)
        var rng = RandomSource(seed: 7)
        // The reference: one pass wider than the bf16 kernel takes below AMX (sgemm, inputs
        // rounded in Swift); with AMX every pass takes the bf16 kernel. Only its first 24 rows
        // are compared: over a few hundred positions, the paths' summation orders put some
        // float32 value on the other side of a bfloat16 rounding (an input or a cached key),
        // and every later row then differs by ~1e-2, on every path alike.
        let floatLevel = min(KernelISA.detected, .avx512bf16)
        let long = (0..<(LlamaModel.roundedMaxRows(floatLevel) + 8)).map { _ in Int.random(in: 0..<config.vocabSize, using: &rng) }
        let short = Array(long.prefix(24))
        KernelISA.current = floatLevel
        let want = bf16.verify(long, cache: bf16.makeCache())
        KernelISA.current = .detected
        var worst: [String: Float] = [:]
        func note(_ path: String, _ d: Float) { worst[path] = max(worst[path] ?? 0, d) }
        // A chain of decodes (one row) and a short verify, at every level the CPU runs.
        for isa in KernelISA.allCases where isa <= .detected {
            KernelISA.current = isa
            defer { KernelISA.current = .detected }
            let cache = bf16.makeCache()
            for (i, t) in short.enumerated() { note("decode \(isa)", maxDifference(bf16.decode(t, cache: cache), want.rowArray(i))) }
            let verify = bf16.verify(short, cache: bf16.makeCache())
            for i in short.indices { note("verify \(isa)", maxDifference(verify.rowArray(i), want.rowArray(i))) }
        }
        // A batch of sequences, each one token past its own prefix, against one-row decodes.
        let b = 20
        let caches = (0..<b).map { _ in bf16.makeCache() }
        for (i, cache) in caches.enumerated() { _ = bf16.prefill(Array(long[i..<(i + 3)]), cache: cache) }
        let batch = bf16.decodeBatch(Array(long[40..<(40 + b)]), caches: caches)
        for i in 0..<b {
            let alone = bf16.makeCache()
            _ = bf16.prefill(Array(long[i..<(i + 3)]), cache: alone)
            note("batch", maxDifference(batch.rowArray(i), bf16.decode(long[40 + i], cache: alone)))
        }
        let paths = worst.values.max() ?? .infinity
        #expect(paths < 2e-4, "\(worst)")

        // Not vacuous: rounding the activations moves the logits far more than the paths differ.
        let activations = weightsOnly.verify(long, cache: weightsOnly.makeCache())
        var rounding: Float = 0
        for i in long.indices { rounding = max(rounding, maxDifference(activations.rowArray(i), want.rowArray(i))) }
        #expect(rounding > 20 * max(paths, 1e-6), "rounding the activations moved logits by only \(rounding)")
    }

    /// A `.bfloat16` model's cache holds its keys and values rounded to the nearest bfloat16
    /// (ties to even, by `BFloat16Reference`): layer 0's rows, which no earlier rounding has
    /// touched, against a float32 cache filled by the same model. A fork copies them as they are.
    @Test func itsCacheHoldsTheKeysAndValuesRounded() {
        let model = LlamaModel(weights: TinyModels.randomWeights(config: config, seed: 31), precision: .bfloat16)
        let tokens = [3, 14, 15, 9, 26, 5]
        let half = model.makeCache(), float = model.makeCache(element: .float32)
        #expect(half.element == .bfloat16 && float.element == .float32)
        _ = model.prefill(tokens, cache: half)
        _ = model.prefill(tokens, cache: float)
        let h = half.rows(layer: 0), f = float.rows(layer: 0)
        #expect(h.keys.count == tokens.count * half.kvDim)
        #expect(h.keys == f.keys.map(BFloat16Reference.nearest))
        #expect(h.values == f.values.map(BFloat16Reference.nearest))
        #expect(h.keys != f.keys, "the float32 keys were bfloat16 already")
        let copy = half.fork()
        #expect(copy.rows(layer: 1).keys == half.rows(layer: 1).keys && copy.element == .bfloat16)
    }

    @Test func theCallersWeightsAreNotRounded() {
        let weights = TinyModels.randomWeights(config: config, seed: 32)
        let before = weights.layers[0].wq.array
        let model = LlamaModel(weights: weights, precision: .bfloat16)
        #expect(weights.layers[0].wq.array == before)
        #expect(model.weights.layers[0].wq.array != before)
        #expect(model.weights.layers[0].wq.array == before.map(BFloat16Reference.nearest))
    }

    /// Tensors that hold bf16 values already (a BF16 checkpoint) are shared, the others rounded
    /// into copies; the model is the same either way.
    @Test func tensorsThatAreBFloat16AlreadyAreSharedNotCopied() {
        let weights = TinyModels.randomWeights(config: config, seed: 34)
        let once = weights.roundedToBFloat16()
        let twice = once.roundedToBFloat16()
        #expect(zip(once.namedTensors, twice.namedTensors).allSatisfy { $0.buffer === $1.buffer })
        #expect(zip(weights.namedTensors, once.namedTensors).allSatisfy { $0.buffer !== $1.buffer })
        let a = LlamaModel(weights: weights, precision: .bfloat16), b = LlamaModel(weights: once, precision: .bfloat16)
        #expect(a.decode(5, cache: a.makeCache()) == b.decode(5, cache: b.makeCache()))
    }

    @Test func aTiedHeadStaysTied() {
        let weights = TinyModels.randomWeights(config: TinyModels.llamaConfig(), seed: 33)
        let rounded = weights.roundedToBFloat16()
        #expect(rounded.lmHead === rounded.embedding)
    }
}

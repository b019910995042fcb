import Foundation
import RollspecKernels
import RollspecModel
import RollspecTesting
import RollspecTraining
import Testing

/// A training model with bfloat16 products (`TrainingModel(weights:products: .bfloat16)`, a
/// learner beside bfloat16 workers): its forward is the `.bfloat16` inference model's (not the
/// float32 one's), it follows its weights after `weightsDidChange()`, and its gradient is the
/// float32 gradient to bfloat16's precision, tensor by tensor.
@Suite struct BFloat16ProductsTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let tied: Bool, bias: Bool
        var testDescription: String { "tied=\(tied) bias=\(bias)" }
    }

    static func config(_ c: Case) -> LlamaConfig {
        TinyModels.llamaConfig(vocab: 32, hidden: 16, layers: 2, heads: 4, kvHeads: 2, ffn: 24, tied: c.tied, bias: c.bias)
    }

    /// Largest |Δ| between `logits` (row i for `rows[i]`) and the inference model's, run on each
    /// whole sequence.
    static func gap(_ logits: FloatBuffer, _ rows: [SharedPrefixTests.LossRow], _ inference: LlamaModel) -> Float {
        let vocab = inference.config.vocabSize
        var worst: Float = 0
        for (i, r) in rows.enumerated() {
            let z = inference.forward([ForwardSegment(tokens: r.sequence, cache: inference.makeCache(capacity: 16))], logits: .all)
            for v in 0..<vocab { worst = max(worst, abs(logits[i * vocab + v] - z.row(r.position)[v])) }
        }
        return worst
    }

    @Test(arguments: [Case(tied: true, bias: false), Case(tied: false, bias: true)])
    func theForwardIsTheBFloat16InferenceModels(_ c: Case) {
        let weights = TinyModels.randomWeights(config: Self.config(c), seed: 21, scale: 1)
        let (shared, continuing, _, rows) = SharedPrefixTests.batches()
        let model = TrainingModel(weights: weights, products: .bfloat16)
        let logits = model.forward(shared, continuing: continuing, logitRows: rows.map(\.shared))
        let bf16 = Self.gap(logits, rows, LlamaModel(weights: weights, precision: .bfloat16))
        let float = Self.gap(logits, rows, LlamaModel(weights: weights))
        #expect(bf16 < 1e-4, "against the bfloat16 inference model: \(bf16)")
        #expect(float > 100 * max(bf16, 1e-6), "against the float32 one: \(float) (bf16: \(bf16))")
    }

    /// An optimiser changes the weights in place: after `weightsDidChange()` the forward is the
    /// new weights' bfloat16 model, every rounded copy included.
    @Test(arguments: [Case(tied: true, bias: false), Case(tied: false, bias: true)])
    func itFollowsItsWeightsAfterWeightsDidChange(_ c: Case) {
        let weights = TinyModels.randomWeights(config: Self.config(c), seed: 22, scale: 1)
        let (shared, continuing, _, rows) = SharedPrefixTests.batches()
        let model = TrainingModel(weights: weights, products: .bfloat16)
        _ = model.forward(shared, continuing: continuing, logitRows: rows.map(\.shared))
        let before = LlamaModel(weights: weights.roundedToBFloat16(), precision: .bfloat16)
        var rng = RandomSource(seed: 5)
        for (_, b) in weights.namedTensors {
            for i in 0..<b.count { b[i] += 0.1 * rng.nextGaussian() }
        }
        let stale = model.forward(shared, continuing: continuing, logitRows: rows.map(\.shared))
        #expect(Self.gap(stale, rows, before) < 1e-4, "without the call it keeps the copies it had")
        model.weightsDidChange()
        let logits = model.forward(shared, continuing: continuing, logitRows: rows.map(\.shared))
        let after = Self.gap(logits, rows, LlamaModel(weights: weights, precision: .bfloat16))
        #expect(after < 1e-4, "against the changed weights' bfloat16 model: \(after)")
        #expect(Self.gap(logits, rows, before) > 100 * max(after, 1e-6))
    }

    /// With `fixedHead` (a feature draft's, whose embedding and head are its target's) the
    /// layers follow their weights after `weightsDidChange()`, as without it, but the head's
    /// copy is the one rounded first: a change to the head alone leaves the logits as they were.
    @Test func aFixedHeadIsRoundedOnceAndTheLayersFollow() {
        let weights = TinyModels.randomWeights(config: Self.config(Case(tied: true, bias: false)), seed: 25, scale: 1)
        let (shared, continuing, _, rows) = SharedPrefixTests.batches()
        let model = TrainingModel(weights: weights, products: .bfloat16, fixedHead: true)
        func logits() -> FloatBuffer { model.forward(shared, continuing: continuing, logitRows: rows.map(\.shared)) }
        let first = logits()
        var rng = RandomSource(seed: 6)
        for l in weights.layers { for i in 0..<l.wDown.count { l.wDown[i] += 0.1 * rng.nextGaussian() } }
        model.weightsDidChange()
        let moved = logits()
        let after = Self.gap(moved, rows, LlamaModel(weights: weights, precision: .bfloat16))
        #expect(after < 1e-4, "against the changed layers' bfloat16 model: \(after)")
        #expect(zip(moved.array, first.array).contains { $0 != $1 }, "the layers' change must show")

        let head = weights.lmHead.array
        for i in 0..<weights.lmHead.count { weights.lmHead[i] *= 1.5 }
        model.weightsDidChange()
        let unchanged = logits().array == moved.array
        #expect(unchanged, "the fixed head's copy is not rounded again")
        for i in 0..<weights.lmHead.count { weights.lmHead[i] = head[i] }
    }

    /// The gradient of every tensor is the float32 model's to within bfloat16's rounding: a
    /// product's gradient left out, or taken against the wrong matrix, is far outside it.
    @Test(arguments: [Case(tied: true, bias: false), Case(tied: false, bias: true)])
    func theGradientIsTheFloatOneToBFloat16Precision(_ c: Case) throws {
        let config = Self.config(c)
        let weights = TinyModels.randomWeights(config: config, seed: 23, scale: 1)
        let (shared, continuing, _, rows) = SharedPrefixTests.batches()
        func gradients(_ products: WeightPrecision) -> LlamaGradients {
            let model = TrainingModel(weights: weights, products: products)
            let logits = model.forward(shared, continuing: continuing, logitRows: rows.map(\.shared))
            let loss = Loss.crossEntropy(logits: logits, vocab: config.vocabSize, targets: rows.map(\.target))
            let g = LlamaGradients(config: config)
            model.backward(loss.dLogits.pointer, into: g)
            return g
        }
        let float = Dictionary(gradients(.float32).namedTensors.map { ($0.name, $0.buffer.array) }, uniquingKeysWith: { a, _ in a })
        func norm(_ x: [Float]) -> Float { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        // A tensor whose gradient is nearly zero (k_proj's bias: softmax ignores a shift common
        // to all keys) is held to the whole gradient's scale instead.
        let overall = norm(float.values.flatMap { $0 })
        var largest: Float = 0
        for (name, g) in gradients(.bfloat16).namedTensors {
            let want = try #require(float[name])
            let diff = norm(zip(g.array, want).map { $0 - $1 }), size = norm(want)
            #expect(diff <= 0.03 * size + 1e-3 * overall, "\(name): differs by \(diff) of \(size)")
            largest = max(largest, diff / max(size, 1e-12))
        }
        #expect(largest > 1e-4, "bfloat16 products round: some gradient must move (\(largest))")
    }

    /// With an output vocabulary (a draft's restricted head) the logits are the whole bfloat16
    /// model's at those tokens, the head's rows follow the weights after `weightsDidChange()`,
    /// and the head's gradient, scattered back to the rows of those tokens, is the float32
    /// model's to bfloat16's precision (nothing elsewhere).
    @Test func anOutputVocabularyIsTheWholeHeadsColumns() throws {
        let c = Case(tied: false, bias: false)
        let config = Self.config(c)
        let weights = TinyModels.randomWeights(config: config, seed: 24, scale: 1)
        let (shared, continuing, _, rows) = SharedPrefixTests.batches()
        let ids: [Int32] = Array(0..<Int32(config.vocabSize)).filter { $0 % 3 != 1 }
        let whole = TrainingModel(weights: weights, products: .bfloat16)
            .forward(shared, continuing: continuing, logitRows: rows.map(\.shared))
        let model = TrainingModel(weights: weights, products: .bfloat16)
        model.outputVocabulary = ids
        let logits = model.forward(shared, continuing: continuing, logitRows: rows.map(\.shared))
        var worst: Float = 0
        for i in rows.indices {
            for (j, t) in ids.enumerated() { worst = max(worst, abs(logits[i * ids.count + j] - whole[i * config.vocabSize + Int(t)])) }
        }
        #expect(worst < 1e-5, "against the whole head's columns: \(worst)")

        for i in 0..<weights.lmHead.count { weights.lmHead[i] *= 1.5 }
        model.weightsDidChange()
        let scaled = model.forward(shared, continuing: continuing, logitRows: rows.map(\.shared))
        let wholeScaled = TrainingModel(weights: weights, products: .bfloat16)
            .forward(shared, continuing: continuing, logitRows: rows.map(\.shared))
        worst = 0
        for i in rows.indices {
            for (j, t) in ids.enumerated() { worst = max(worst, abs(scaled[i * ids.count + j] - wholeScaled[i * config.vocabSize + Int(t)])) }
        }
        #expect(worst < 1e-5, "after the head changed: \(worst)")

        func headGradient(_ products: WeightPrecision) -> [Float] {
            let m = TrainingModel(weights: weights, products: products)
            m.outputVocabulary = ids
            let z = m.forward(shared, continuing: continuing, logitRows: rows.map(\.shared))
            let targets = rows.map { r in ids.firstIndex(of: Int32(r.target)) ?? 0 }
            let loss = Loss.crossEntropy(logits: z, vocab: ids.count, targets: targets)
            let g = LlamaGradients(config: config)
            m.backward(loss.dLogits.pointer, into: g)
            return g.lmHead.array
        }
        let float = headGradient(.float32), bf16 = headGradient(.bfloat16)
        func norm(_ x: some Sequence<Float>) -> Float { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        let diff = norm(zip(bf16, float).map { $0 - $1 }), size = norm(float)
        #expect(size > 0 && diff <= 0.03 * size, "head gradient differs by \(diff) of \(size)")
        #expect(diff > 1e-4 * size, "bfloat16 products round: the head's gradient must move (\(diff))")
        let dim = config.hiddenSize
        let outside = (0..<config.vocabSize).filter { !ids.contains(Int32($0)) }
        #expect(outside.allSatisfy { t in (0..<dim).allSatisfy { bf16[t * dim + $0] == 0 } }, "rows outside the vocabulary get nothing")
    }
}

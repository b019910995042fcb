import Foundation
import RollspecKernels
import RollspecModel
import RollspecTesting
@testable import RollspecTraining
import Testing

/// Training a feature-level (EAGLE) draft: its gradient against finite differences, and that
/// it learns a target's next-token law from the target's own features.
@Suite struct FeatureDraftTrainerTests {
    static let config = TinyModels.llamaConfig(vocab: 32, hidden: 16, layers: 2, heads: 4, kvHeads: 2, ffn: 32)
    static let target = TinyModels.randomWeights(config: config, seed: 12)

    /// Sequences sampled from the target at temperature 1, with its features, the first three
    /// positions a prompt that does not count.
    static func examples(count: Int, length: Int, seed: UInt64) throws -> [FeatureExample] {
        let model = LlamaModel(weights: target)
        let generator = SpeculativeGeneratorShim(model: model)
        var rng = RandomSource(seed: seed)
        return try (0..<count).map { _ in
            let prompt = (0..<3).map { _ in Int(rng.next() % 32) }
            let (tokens, features) = try generator.sample(prompt: prompt, maxTokens: length - 3, random: &rng)
            var mask = [Bool](repeating: true, count: tokens.count)
            for i in 0..<2 { mask[i] = false }
            return FeatureExample(tokens: tokens, features: features, lossMask: mask)
        }
    }

    func trainer(featureWeight: Float, vocabulary: [Int]? = nil, fromTarget: Bool = true) -> FeatureDraftTrainer {
        let draft = fromTarget ? DraftFactory.featureDraft(Self.target, layers: [1], embeddingScale: 1, featureScale: 0.5)
            : TinyModels.randomFeatureDraft(target: Self.target, seed: 8)
        let t = FeatureDraftTrainer(draft: draft, optimizer: AdamWConfig(schedule: .constant(3e-3), weightDecay: 0),
                                    outputVocabulary: vocabulary)
        t.featureWeight = featureWeight
        return t
    }

    @Test(arguments: [nil, Array(0..<32).filter { $0 % 3 != 1 }])
    func gradientMatchesFiniteDifferences(vocabulary: [Int]?) throws {
        let batch = try Self.examples(count: 3, length: 9, seed: 1)
        let t = trainer(featureWeight: 0.3, vocabulary: vocabulary)
        t.ceWeight = 0.5
        _ = t.computeGradients(batch, noisy: false)
        let analytic = t.gradientsByName
        let own = Dictionary(t.draft.namedTensors.map { ($0.name, $0.buffer) }, uniquingKeysWith: { a, _ in a })
        for name in ["fc.weight", "fc.bias", "model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight", "model.norm.weight"] {
            let g = analytic[name]!
            let result = GradientChecker.check(
                parameter: own[name]!, analytic: g, indices: GradientChecker.sampleIndices(of: g, largest: 6, random: 6),
                step: 1e-2) { Double(t.evaluate(batch).loss) }
            #expect(result.passes(tolerance: 2e-2), "\(name): \(result)")
        }
    }

    /// bfloat16 products (`products: .bfloat16`) give the float32 step's gradient to
    /// bfloat16's precision, tensor by tensor, restricted head included; and after a step the
    /// rounded copies are the new weights' (a trainer made afresh on them evaluates the same).
    @Test(arguments: [nil, Array(0..<32).filter { $0 % 3 != 1 }])
    func bfloat16ProductsGiveTheFloatGradient(vocabulary: [Int]?) throws {
        let batch = try Self.examples(count: 3, length: 9, seed: 1)
        func make(_ products: WeightPrecision) -> FeatureDraftTrainer {
            let draft = DraftFactory.featureDraft(Self.target, layers: [1], embeddingScale: 1, featureScale: 0.5)
            let t = FeatureDraftTrainer(draft: draft, optimizer: AdamWConfig(schedule: .constant(3e-3), weightDecay: 0),
                                        outputVocabulary: vocabulary, products: products)
            (t.featureWeight, t.ceWeight) = (0.3, 0.5)
            return t
        }
        let float = make(.float32), bf16 = make(.bfloat16)
        _ = float.computeGradients(batch, noisy: false)
        _ = bf16.computeGradients(batch, noisy: false)
        let want = float.gradientsByName, got = bf16.gradientsByName
        func norm(_ x: [Float]) -> Float { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        let overall = norm(want.values.flatMap(\.array))
        var largest: Float = 0
        for (name, g) in got {
            let w = try #require(want[name]).array
            let diff = norm(zip(g.array, w).map { $0 - $1 }), size = norm(w)
            #expect(diff <= 0.03 * size + 1e-3 * overall, "\(name): differs by \(diff) of \(size)")
            largest = max(largest, diff / max(size, 1e-12))
        }
        #expect(largest > 1e-4, "bfloat16 products round: some gradient must move (\(largest))")

        _ = bf16.step(batch)
        let fresh = FeatureDraftTrainer(draft: try bf16.draft.ownTensors.bound(to: Self.target), optimizer: AdamWConfig(schedule: .constant(0)),
                                        outputVocabulary: vocabulary, products: .bfloat16)
        (fresh.featureWeight, fresh.ceWeight) = (0.3, 0.5)
        #expect(bf16.evaluate(batch).loss == fresh.evaluate(batch).loss, "the stepped trainer's copies are its new weights'")
    }

    @Test func aGradientWithoutTheFeatureTermFailsTheCheck() throws {
        // The check above must see the feature regression: analytic gradients taken without it
        // disagree with finite differences of the loss that has it.
        let batch = try Self.examples(count: 3, length: 9, seed: 1)
        let t = trainer(featureWeight: 0)
        _ = t.computeGradients(batch, noisy: false)
        let g = t.gradientsByName["fc.weight"]!
        t.featureWeight = 0.3
        let result = GradientChecker.check(
            parameter: t.draft.fc, analytic: g, indices: GradientChecker.sampleIndices(of: g, largest: 6, random: 6),
            step: 1e-2) { Double(t.evaluate(batch).loss) }
        #expect(!result.passes(tolerance: 2e-2), "a gradient missing the feature term passed: \(result)")
    }

    @Test func evaluationInChunksGivesTheFiguresOfOnePass() throws {
        // Examples of unequal length, so that chunks hold unequal row counts and a plain mean
        // of the chunks' means would differ from the mean over rows.
        let held = try Self.examples(count: 3, length: 20, seed: 4) + Self.examples(count: 4, length: 7, seed: 5)
        let t = trainer(featureWeight: 0.3, vocabulary: Array(0..<32).filter { $0 % 3 != 1 })
        t.ceWeight = 0.5
        let whole = t.evaluate(held, chunk: held.count)
        for chunk in [1, 2, 4] {
            let parts = t.evaluate(held, chunk: chunk)
            #expect(parts.tokens == whole.tokens)
            for (name, a, b) in [("loss", parts.loss, whole.loss), ("kl", parts.kl, whole.kl),
                                 ("feature", parts.featureLoss, whole.featureLoss),
                                 ("acceptance", parts.expectedAcceptance, whole.expectedAcceptance)] {
                #expect(abs(a - b) <= 1e-5 * max(1, abs(b)), "chunk \(chunk), \(name): \(a) against one pass \(b)")
            }
        }
        // The unweighted mean of the chunks' acceptances is not the same figure here.
        let firstLong = t.evaluate(Array(held.prefix(3)), chunk: 3), shortOnes = t.evaluate(Array(held.suffix(4)), chunk: 4)
        let unweighted = (firstLong.expectedAcceptance + shortOnes.expectedAcceptance) / 2
        #expect(abs(unweighted - whole.expectedAcceptance) > 1e-4, "the check cannot tell weighted from unweighted means")
    }

    @Test(arguments: [false, true])
    func learnsTheTargetsNextTokenLaw(trainOnGuesses: Bool) throws {
        // Expected acceptance of the first drafted token on held-out sequences rises well above
        // a random draft's.
        let train = try Self.examples(count: 24, length: 20, seed: 2), held = try Self.examples(count: 6, length: 20, seed: 3)
        let t = trainer(featureWeight: 0.05, fromTarget: false)
        t.trainOnGuesses = trainOnGuesses
        let before = t.evaluate(held).expectedAcceptance
        for i in 0..<300 { _ = t.step(Array(train[(i * 4) % 24..<((i * 4) % 24 + 4)])) }
        let after = t.evaluate(held).expectedAcceptance
        #expect(after > before + 0.25, "expected acceptance \(before) → \(after)")
    }

    @Test func theGuessedPassReadsTheGuessesAndLearnsTheTargetsFeatures() throws {
        // `trainOnGuesses`' second pass: every entry whose feature the first pass guessed reads
        // the guess, and its losses still aim at the target's features. Reference: the draft run
        // as it drafts (`FeatureDraftModel`, the inference path), twice: once on the target's
        // features for the guesses, once with the guesses put in their place.
        let batch = try Self.examples(count: 2, length: 10, seed: 9)
        let t = trainer(featureWeight: 0.3, fromTarget: false)
        _ = t.computeGradients(batch, noisy: false)
        let pass = try #require(t.run(batch, noisy: false, withGradients: false, fromLastGuesses: true))

        let model = FeatureDraftModel(weights: t.draft), dim = Self.config.hiddenSize
        func guesses(_ e: FeatureExample, _ features: [Float]) -> [Float] {
            let out = features.withUnsafeBufferPointer {
                model.forward(tokens: Array(e.tokens[1...]), features: $0.baseAddress!, cache: model.makeCache())
            }
            return out.features!.array
        }
        func smoothL1(_ d: Float) -> Double { abs(d) < 1 ? Double(0.5 * d * d) : Double(abs(d) - 0.5) }
        var toTarget = 0.0, toGuess = 0.0, rows = 0
        for e in batch {
            let entries = e.tokens.count - 1
            let counted = (0..<entries).filter { $0 + 1 < entries && e.lossMask[$0 + 1] }
            let first = guesses(e, e.features)
            var inputs = e.features
            for p in counted { inputs.replaceSubrange((p + 1) * dim..<(p + 2) * dim, with: first[p * dim..<(p + 1) * dim]) }
            let second = guesses(e, inputs)
            for p in counted {
                for c in 0..<dim {
                    toTarget += smoothL1(second[p * dim + c] - e.features[(p + 1) * dim + c])
                    toGuess += smoothL1(second[p * dim + c] - first[(p + 1) * dim + c])
                }
                rows += 1
            }
        }
        toTarget /= Double(rows)
        toGuess /= Double(rows)
        #expect(abs(Double(pass.featureLoss) - toTarget) <= 1e-3 * toTarget, "pass \(pass.featureLoss), reference \(toTarget)")
        // The check can tell: regressing onto the guesses themselves gives another figure.
        #expect(abs(toGuess - toTarget) > 0.05 * toTarget, "to the target \(toTarget), to the guesses \(toGuess)")
    }

    @Test func keptGuessesAreReadFromAnExamplesSecondVisitOn() throws {
        let batch = try Self.examples(count: 3, length: 9, seed: 1).enumerated().map { i, e in
            var e = e
            e.id = i
            return e
        }
        // Rows counted per pass: entry p counts when position p + 1 is masked in and has a feature.
        let rows = batch.reduce(0) { n, e in n + (0..<(e.tokens.count - 2)).filter { e.lossMask[$0 + 1] }.count }
        let t = trainer(featureWeight: 0.3)
        t.keptGuessShare = 1
        _ = t.step(batch)
        #expect(t.lastEntriesFromKeptGuesses == 0, "nothing is kept before an example's first visit")
        _ = t.step(batch)
        #expect(t.lastEntriesFromKeptGuesses == rows, "every guessed feature is read on the next visit")
        t.keptGuessShare = 0.5
        var read = 0
        for _ in 0..<20 { _ = t.step(batch); read += t.lastEntriesFromKeptGuesses }
        #expect(abs(Double(read) / Double(20 * rows) - 0.5) < 0.1, "share 0.5 read \(read) of \(20 * rows)")
        // Examples without an id keep nothing; evaluation never reads what was kept.
        t.keptGuessShare = 1
        _ = t.step(batch.map { var e = $0; e.id = nil; return e })
        #expect(t.lastEntriesFromKeptGuesses == 0)
        let first = t.evaluate(batch), again = t.evaluate(batch)
        #expect(first.loss == again.loss && first.expectedAcceptance == again.expectedAcceptance)
    }
}

/// Sampling from the target that also returns its features (what `rollspec distill
/// --draft-kind eagle` records), without the speculation module.
struct SpeculativeGeneratorShim {
    let model: LlamaModel

    func sample(prompt: [Int], maxTokens: Int, random: inout RandomSource) throws -> (tokens: [Int], features: [Float]) {
        let cache = model.makeCache()
        var tokens = prompt, features: [Float] = []
        var out = model.forward([ForwardSegment(tokens: prompt, cache: cache)], logits: .last, features: true)
        for _ in 0..<maxTokens {
            features += out.features!.array
            let q = TokenDistribution(logits: out.row(0), vocabSize: model.config.vocabSize, parameters: SamplingParameters(temperature: 1))
            let best = q.sample(uniform: random.nextUnit()).token
            tokens.append(best)
            out = model.forward([ForwardSegment(tokens: [best], cache: cache)], logits: .last, features: true)
        }
        // The last token was run too; keep only positions 0 ..< T − 1, as the generator does.
        return (tokens, Array(features.prefix((tokens.count - 1) * model.config.hiddenSize)))
    }
}

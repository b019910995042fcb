import Foundation
import RollspecKernels
import RollspecModel

/// One training sequence for a feature-level draft: the tokens and the target's feature of
/// every position but the last.
public struct FeatureExample: @unchecked Sendable {
    /// `[T]` token ids (prompt and answer).
    public var tokens: [Int]
    /// `[(T − 1) · C]` the target's final-norm hidden state at positions `0 ..< T − 1`.
    public var features: [Float]
    /// `[T]`: position i counts when the target's prediction of `tokens[i + 1]` is one the
    /// draft should learn (the answer positions).
    public var lossMask: [Bool]
    /// Identifies the example across steps (its index in the training set), for what the
    /// trainer keeps per example (`FeatureDraftTrainer.keptGuessShare`); nil: nothing is kept.
    public var id: Int?

    public init(tokens: [Int], features: [Float], lossMask: [Bool], id: Int? = nil) {
        self.tokens = tokens
        self.features = features
        self.lossMask = lossMask
        self.id = id
    }
}

/// What one step or evaluation of a feature-level draft measured (means over counted rows).
public struct FeatureStepStats: Sendable, Equatable {
    /// `klWeight · kl + featureWeight · featureLoss`.
    public var loss: Float
    /// KL(target ‖ draft) of the next-token distributions over the output vocabulary.
    public var kl: Float
    /// Smooth-L1 distance of the guessed feature from the target's, summed over channels.
    public var featureLoss: Float
    /// Held-out only: E[Σ_x min(p(x), q(x))] with p the target's full distribution and q the
    /// draft's (restricted) one, for the first drafted token.
    public var expectedAcceptance: Float
    public var gradNorm: Float
    public var tokens: Int
    public var seconds: Double
    public var learningRate: Float

    public var tokensPerSecond: Double { seconds > 0 ? Double(tokens) / seconds : 0 }
}

/// Trains a feature-level draft (EAGLE, Li et al. 2024) on the target's features: for each
/// draft entry `(x_{p+1}, f_p)` it regresses the guess of `f_{p+1}` onto the target's (smooth
/// L1, summed over channels) and pulls the draft's next-token distribution, the target's head
/// applied to the guess, towards the target's own, head applied to `f_{p+1}` (KL). Input
/// features get uniform noise, as in EAGLE, so that the draft tolerates its own guesses when it
/// drafts several tokens. The embedding and head are the target's and stay frozen.
public final class FeatureDraftTrainer {
    public let draft: FeatureDraftWeights
    public let model: TrainingModel
    public let optimizer: AdamW
    private let gradients: LlamaGradients
    private let dFc: FloatBuffer, dFcBias: FloatBuffer
    public var klWeight: Float = 1
    /// Weight of a cross-entropy on the actual next token (the target's greedy choice when its
    /// answers are greedy: what acceptance at T=0 counts); targets outside the output
    /// vocabulary do not count.
    public var ceWeight: Float = 0
    public var featureWeight: Float = 0.005
    /// Half-width of the uniform noise added to input features, in units of their RMS.
    public var noise: Float = 0.2
    /// Also train on the draft's own guesses (a second pass per step in which each answer
    /// entry's feature is the first pass's guess of it, gradients not carried through the
    /// guess): drafting a second token reads a guessed feature, and this teaches the draft to.
    /// A cheap form of EAGLE-3's training-time test; doubles the cost of a step.
    public var trainOnGuesses = false
    /// Share of the answer entries whose input feature is the draft's own guess of it, kept
    /// from the example's previous visit (an epoch earlier), in place of the target's feature
    /// plus noise. A second drafted token reads such a guess, which differs from the target's
    /// feature far more than the noise does; this teaches the draft to read one at no extra
    /// cost per step (`trainOnGuesses` does it with fresh guesses and a second pass). Only
    /// examples with an `id` take part; the first epoch has nothing kept yet.
    public var keptGuessShare: Float = 0
    /// Per example id: for each position p, the row in `values` of the kept guess of f_p (−1:
    /// none), and the guesses as bfloat16 bits (truncated; they stand in for noisy features).
    private struct KeptGuesses {
        var row: [Int32]
        var values: [UInt16]
    }
    private var keptGuesses: [Int: KeptGuesses] = [:]
    /// Entries of the last training pass that read a kept guess.
    public private(set) var lastEntriesFromKeptGuesses = 0
    /// The last pass's guesses: `[R, C]` and the (example, position) of the feature each guesses.
    private var lastGuesses: [Float] = []
    private var lastGuessed: [(example: Int, position: Int)] = []
    /// RMS of one feature channel, measured on the first batch (scales `noise`).
    public private(set) var featureRMS: Float?
    private var rng = RandomSource(seed: 11)
    /// Token ids the draft's head covers (sorted), or nil for the whole vocabulary.
    public private(set) var outputVocabulary: [Int]?
    /// Token id → logits column, with an output vocabulary.
    private var column: [Int: Int] = [:]
    /// How the step's matrix products run (`init(draft:optimizer:outputVocabulary:products:)`).
    public let products: WeightPrecision
    /// With bfloat16 products: fc rounded (`[C, 2C]`; again after each optimiser step: its
    /// backward needs no transposed copy, as nothing comes before it). The teacher's logits
    /// come from the model's rounded head, the same rows (`TrainingModel.roundedHead`).
    private let fc16: BFloat16Buffer?
    private let backwardScratch = MatmulBackwardScratch()
    /// `[R, S]` buffers of a step, reused from step to step (tens of MB each: fresh pages
    /// cost the kernel's zeroing): the draft's logits, the teacher's, and the two losses'
    /// gradients.
    private let logitsStorage = ReusableBuffer(step: 1 << 20), teacherStorage = ReusableBuffer(step: 1 << 20)
    private let klStorage = ReusableBuffer(step: 1 << 20), ceStorage = ReusableBuffer(step: 1 << 20)
    /// The same for the `[N, 2C]` and `[N, C]` / `[R, C]` buffers: the entries' inputs, fc's
    /// output, the target features, the regression's gradient and the inputs' gradient.
    private let pairsStorage = ReusableBuffer(step: 1 << 20), mixedStorage = ReusableBuffer(step: 1 << 20)
    private let targetStorage = ReusableBuffer(step: 1 << 18), dGuessStorage = ReusableBuffer(step: 1 << 18)
    private let dMixedStorage = ReusableBuffer(step: 1 << 20)

    /// - Parameter products: `.bfloat16` runs every matrix product of a step, forward and
    ///   backward, on bfloat16 values with float32 sums (`TrainingModel.init(weights:products:)`,
    ///   the draft's restricted head included), the teacher's head too; gradients, the
    ///   optimiser, norms, attention and the losses stay float32. On AMX tiles a step is several
    ///   times as fast (`rollspec bench training --eagle-draft`). Held-out figures then also
    ///   come from the bfloat16 products, except the target's own distribution.
    public init(draft: FeatureDraftWeights, optimizer: AdamWConfig, outputVocabulary: [Int]? = nil,
                products: WeightPrecision = .float32) {
        self.draft = draft
        self.products = products
        // The draft's embedding and head are its target's, frozen (`frozen` below).
        model = TrainingModel(weights: draft.body, products: products, fixedHead: true)
        let frozen: Set<String> = ["model.embed_tokens.weight", "lm_head.weight"]
        self.optimizer = AdamW(parameters: draft.namedTensors, config: optimizer, frozen: frozen)
        gradients = LlamaGradients(config: draft.config)
        dFc = FloatBuffer(count: draft.fc.count)
        dFcBias = FloatBuffer(count: draft.fcBias.count)
        if let ids = outputVocabulary.map({ Array(Set($0)).sorted() }) {
            self.outputVocabulary = ids
            column = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0) })
            model.outputVocabulary = ids.map { Int32($0) }
        }
        fc16 = products == .bfloat16 ? BFloat16Buffer(rounding: draft.fc) : nil
    }

    /// One optimiser step on `batch`.
    public func step(_ batch: [FeatureExample]) -> FeatureStepStats {
        let start = Date()
        let lr = optimizer.nextLearningRate
        guard let pass = computeGradients(batch) else {
            return FeatureStepStats(loss: 0, kl: 0, featureLoss: 0, expectedAcceptance: 0, gradNorm: 0, tokens: 0,
                                    seconds: Date().timeIntervalSince(start), learningRate: lr)
        }
        if trainOnGuesses {
            _ = run(batch, noisy: true, withGradients: true, accumulate: true, fromLastGuesses: true)
        }
        let stats = optimizer.step(gradients: self.gradientsByName)
        if let fc16 {
            model.weightsDidChange()
            fc16.assign(rounding: draft.fc.pointer)
        }
        var out = pass
        out.gradNorm = stats.gradNorm
        out.learningRate = stats.learningRate
        out.seconds = Date().timeIntervalSince(start)
        return out
    }

    /// The loss of `batch` and, in `gradientsByName`, its gradient with respect to every
    /// trainable tensor; nothing is updated. `noisy: false` makes it a deterministic function
    /// of the weights (for gradient checks).
    public func computeGradients(_ batch: [FeatureExample], noisy: Bool = true) -> FeatureStepStats? {
        run(batch, noisy: noisy, withGradients: true)
    }

    /// The gradients of the last `computeGradients`, by tensor name (`fc.weight`, `model.layers.0.…`).
    public var gradientsByName: [String: FloatBuffer] {
        var named = Dictionary(gradients.namedTensors.map { ($0.name, $0.buffer) }, uniquingKeysWith: { a, _ in a })
        named["fc.weight"] = dFc
        named["fc.bias"] = dFcBias
        return named
    }

    /// Losses and the expected acceptance of the first drafted token on `batch`, with the
    /// target's full distribution as p; nothing is updated.
    ///
    /// The batch is evaluated `chunk` examples at a time and the per-row means are combined
    /// weighted by rows, which gives the same figures as one pass. One pass over a whole
    /// held-out set allocates the target's distribution for every row at once (33 SmolLM2
    /// answers: 3,700 rows × 49,152 floats, 0.7 GB), and fresh pages cost: on a 2-vCPU VM one
    /// such evaluation took ~21 s, against ~3 s in chunks of 4.
    public func evaluate(_ batch: [FeatureExample], chunk: Int = 4) -> FeatureStepStats {
        let start = Date()
        var total = FeatureStepStats(loss: 0, kl: 0, featureLoss: 0, expectedAcceptance: 0, gradNorm: 0, tokens: 0,
                                     seconds: 0, learningRate: optimizer.nextLearningRate)
        for first in stride(from: 0, to: batch.count, by: max(chunk, 1)) {
            guard let part = run(Array(batch[first..<min(batch.count, first + max(chunk, 1))]), noisy: false, withGradients: false)
            else { continue }
            let (a, b) = (Float(total.tokens), Float(part.tokens))
            func mix(_ x: Float, _ y: Float) -> Float { (x * a + y * b) / (a + b) }
            total.loss = mix(total.loss, part.loss)
            total.kl = mix(total.kl, part.kl)
            total.featureLoss = mix(total.featureLoss, part.featureLoss)
            total.expectedAcceptance = mix(total.expectedAcceptance, part.expectedAcceptance)
            total.tokens += part.tokens
        }
        total.seconds = Date().timeIntervalSince(start)
        return total
    }

    /// Saves the draft (see `FeatureDraftWeights.save`).
    public func save(to directory: URL) throws { try draft.save(to: directory) }

    // MARK: The pass

    /// The draft's forward over a batch's entries: what the losses and their backward read.
    private struct Forward {
        /// `[R, width]` the draft's logits at the counted entries.
        var logits: FloatBuffer
        /// `[N, 2C]` the entries' inputs `[embedding ; feature (+ noise)]`, for fc's backward.
        var pairs: FloatBuffer
        /// Entries in all (N) and counted rows (R).
        var entries: Int, rows: Int
        /// Per counted row, the (example, position) of the target feature it guesses: the row
        /// predicts `tokens[position + 1]` of that example.
        var targetFeatureRows: [(example: Int, position: Int)]
        var nextTokens: [Int]
    }

    /// - Parameter fromLastGuesses: each entry whose feature the last pass over this batch
    ///   guessed reads the guess instead (no noise); the losses' targets stay the target's.
    private func forward(_ batch: [FeatureExample], noisy: Bool, fromLastGuesses: Bool = false) -> Forward? {
        let dim = draft.config.hiddenSize
        // Draft entry p of an example is (tokens[p + 1], f_p); it counts when f_{p+1} exists
        // and position p + 1 is masked in.
        var sequences: [[Int]] = [], rows: [Int] = [], targetFeatureRows: [(example: Int, position: Int)] = []
        var nextTokens: [Int] = []
        var offset = 0
        for (e, ex) in batch.enumerated() where ex.tokens.count >= 2 {
            precondition(ex.features.count == (ex.tokens.count - 1) * dim, "example \(e): features must be [T − 1, C]")
            let entries = ex.tokens.count - 1
            for p in 0..<entries where p + 1 < entries && p + 1 < ex.lossMask.count && ex.lossMask[p + 1] {
                rows.append(offset + p)
                targetFeatureRows.append((e, p + 1))
                nextTokens.append(ex.tokens[p + 2])
            }
            sequences.append(Array(ex.tokens[1...]))
            offset += entries
        }
        guard !rows.isEmpty else { return nil }
        let n = offset

        // Inputs: [embedding(x_{p+1}) ; f_p + noise], mixed by fc.
        if featureRMS == nil {
            var sq = 0.0, count = 0
            for ex in batch { for v in ex.features { sq += Double(v * v) }; count += ex.features.count }
            featureRMS = Float((sq / Double(max(count, 1))).squareRoot())
        }
        let amplitude = noisy ? noise * (featureRMS ?? 1) : 0
        let pairs = pairsStorage.view(count: n * 2 * dim)  // every row written below
        var row = 0
        var fromKept = 0
        var guessed: [Int: [Int: Int]] = [:]  // example → position → row of `lastGuesses`
        if fromLastGuesses { for (i, t) in lastGuessed.enumerated() { guessed[t.example, default: [:]][t.position] = i } }
        for (e, ex) in batch.enumerated() where ex.tokens.count >= 2 {
            let kept = noisy && keptGuessShare > 0 ? ex.id.flatMap { keptGuesses[$0] } : nil
            for p in 0..<(ex.tokens.count - 1) {
                let out = pairs.pointer + row * 2 * dim
                out.update(from: draft.body.embedding.pointer + ex.tokens[p + 1] * dim, count: dim)
                if let i = guessed[e]?[p] {
                    lastGuesses.withUnsafeBufferPointer { (out + dim).update(from: $0.baseAddress! + i * dim, count: dim) }
                } else if let kept, p < kept.row.count, kept.row[p] >= 0, Float(rng.nextUnit()) < keptGuessShare {
                    kept.values.withUnsafeBufferPointer {
                        convertBFloat16ToFloat(out + dim, $0.baseAddress! + Int(kept.row[p]) * dim, count: dim)
                    }
                    fromKept += 1
                } else {
                    for c in 0..<dim {
                        let jitter = amplitude > 0 ? amplitude * Float(2 * rng.nextUnit() - 1) : 0
                        out[dim + c] = ex.features[p * dim + c] + jitter
                    }
                }
                row += 1
            }
        }
        if noisy { lastEntriesFromKeptGuesses = fromKept }
        let mixed = mixedStorage.view(count: n * dim)  // written by fc
        if let fc16 {
            matmulForward(mixed.pointer, pairs.pointer, fc16, draft.fcBias.pointer, n: n, inDim: 2 * dim, outDim: dim)
        } else {
            matmulForward(mixed.pointer, pairs.pointer, draft.fc.pointer, draft.fcBias.pointer, n: n, inDim: 2 * dim, outDim: dim)
        }
        let logits = model.forward(sequences, logitRows: rows, inputs: mixed.pointer, logitsInto: logitsStorage)
        return Forward(logits: logits, pairs: pairs, entries: n, rows: rows.count, targetFeatureRows: targetFeatureRows,
                       nextTokens: nextTokens)
    }

    /// The draft's probability of the actual next token at every counted position of `batch`
    /// — drafting from the target's own features, as the first drafted token of a step does —
    /// under each example's sampling (`sampling[e]`; temperature 1 when nil); nothing is
    /// updated. Feeds `Loss.sampledAcceptance`.
    public func nextTokenProbabilities(_ batch: [FeatureExample], sampling: [SamplingParameters]? = nil)
        -> [NextTokenProbability]
    {
        precondition(sampling == nil || sampling!.count == batch.count, "one sampling per example")
        guard let f = forward(batch, noisy: false) else { return [] }
        let columns = f.nextTokens.map { outputVocabulary == nil ? $0 : column[$0] }
        let rowSampling = f.targetFeatureRows.map { sampling?[$0.example] ?? SamplingParameters(temperature: 1) }
        let q = Loss.draftProbabilities(logits: f.logits, width: model.outputWidth, columns: columns, sampling: rowSampling)
        return f.targetFeatureRows.enumerated().map { r, t in
            NextTokenProbability(example: t.example, position: t.position, probability: q[r])
        }
    }

    /// The same draft (its own tensors, shared, not copied) bound to `target`'s embedding and
    /// head, with the optimiser's moments and step carried over: a speculator trainer follows
    /// each new policy version without restarting Adam. Settings and the measured feature RMS
    /// carry over too; an output vocabulary does not (the online trainer uses none).
    public func rebound(to target: LlamaWeights) throws -> FeatureDraftTrainer {
        let next = FeatureDraftTrainer(draft: try draft.ownTensors.bound(to: target), optimizer: optimizer.config, products: products)
        next.optimizer.continue(from: optimizer)
        next.klWeight = klWeight
        next.ceWeight = ceWeight
        next.featureWeight = featureWeight
        next.noise = noise
        next.trainOnGuesses = trainOnGuesses
        next.keptGuessShare = keptGuessShare
        next.featureRMS = featureRMS
        return next
    }

    /// One pass over `batch`: the losses, the held-out acceptance when `withGradients` is off,
    /// and, with it on, the gradients (added to the last pass's when `accumulate`). Internal for
    /// the tests of the guessed pass.
    func run(_ batch: [FeatureExample], noisy: Bool, withGradients: Bool, accumulate: Bool = false,
             fromLastGuesses: Bool = false) -> FeatureStepStats? {
        let dim = draft.config.hiddenSize
        guard let f = forward(batch, noisy: noisy, fromLastGuesses: fromLastGuesses) else { return nil }
        let logits = f.logits, pairs = f.pairs, n = f.entries, r = f.rows
        let targetFeatureRows = f.targetFeatureRows, nextTokens = f.nextTokens
        let width = model.outputWidth

        // Teacher: the target's head on its own next feature.
        let targets = targetStorage.view(count: r * dim)  // every row written below
        for (i, t) in targetFeatureRows.enumerated() {
            (targets.pointer + i * dim).update(from: batch[t.example].features, count: dim, from: t.position * dim)
        }
        let teacherLogits = teacherStorage.view(count: r * width)
        if let head16 = model.roundedHead {
            matmulForward(teacherLogits.pointer, targets.pointer, head16, nil, n: r, inDim: dim, outDim: width)
        } else {
            matmulForward(teacherLogits.pointer, targets.pointer, model.headRows.pointer, nil, n: r, inDim: dim, outDim: width)
        }
        let kl = Loss.distillation(logits: logits, vocab: width, targetLogits: teacherLogits, into: klStorage)
        var ce: LossResult?
        if ceWeight > 0 {
            let columns = nextTokens.map { t in outputVocabulary == nil ? t : (column[t] ?? -1) }
            ce = Loss.crossEntropy(logits: logits, vocab: width, targets: columns.map { max($0, 0) },
                                   rowWeights: columns.map { $0 >= 0 ? ceWeight : 0 }, into: ceStorage)
        }

        // Smooth L1 (β = 1) of the guessed feature, summed over channels, mean over rows.
        let guess = model.headInput
        lastGuesses.removeAll(keepingCapacity: true)
        lastGuesses.append(contentsOf: UnsafeBufferPointer(start: guess, count: r * dim))
        lastGuessed = targetFeatureRows
        if withGradients && noisy && !accumulate && keptGuessShare > 0 { keep(guesses: guess, of: targetFeatureRows, in: batch) }
        let dGuess = dGuessStorage.view(count: r * dim)  // every entry written below
        var featureLoss = 0.0
        let scale = featureWeight / Float(r)
        for i in 0..<(r * dim) {
            let d = guess[i] - targets[i]
            if abs(d) < 1 { featureLoss += Double(0.5 * d * d); dGuess[i] = scale * d }
            else { featureLoss += Double(abs(d) - 0.5); dGuess[i] = scale * (d > 0 ? 1 : -1) }
        }
        featureLoss /= Double(r)

        var acceptance: Float = 0
        if !withGradients { acceptance = expectedAcceptance(draftLogits: logits, targetFeatures: targets, rows: r) }
        if withGradients {
            let dLogits = kl.dLogits
            if klWeight != 1 { for i in 0..<dLogits.count { dLogits[i] *= klWeight } }
            if let ce { addInPlace(dLogits.pointer, ce.dLogits.pointer, count: dLogits.count) }
            if !accumulate {
                gradients.zero()
                memset(dFc.pointer, 0, dFc.count * 4)
                memset(dFcBias.pointer, 0, dFcBias.count * 4)
            }
            let dMixed = dMixedStorage.view(count: n * dim)  // written by the backward
            model.backward(dLogits.pointer, into: gradients, frozen: ["model.embed_tokens.weight", "lm_head.weight"],
                           dHeadInput: dGuess.pointer, dInputs: dMixed.pointer)
            if fc16 != nil {
                matmulBackward(nil, dFc.pointer, dFcBias.pointer, dMixed.pointer, pairs.pointer, transposedWeight: nil,
                               n: n, inDim: 2 * dim, outDim: dim, scratch: backwardScratch)
            } else {
                matmulBackward(nil, dFc.pointer, dFcBias.pointer, dMixed.pointer, pairs.pointer, draft.fc.pointer,
                               n: n, inDim: 2 * dim, outDim: dim)
            }
        }
        let klMean = kl.unweightedMean
        return FeatureStepStats(loss: klWeight * klMean + featureWeight * Float(featureLoss) + (ce?.loss ?? 0), kl: klMean,
                                featureLoss: Float(featureLoss), expectedAcceptance: acceptance, gradNorm: 0, tokens: r,
                                seconds: 0, learningRate: optimizer.nextLearningRate)
    }

    /// Keeps this pass's guesses (`[R, C]`, row i guessing f at `rows[i]`) for the examples'
    /// next visits, replacing what their last visit kept.
    private func keep(guesses: UnsafePointer<Float>, of rows: [(example: Int, position: Int)], in batch: [FeatureExample]) {
        let dim = draft.config.hiddenSize
        var fresh: [Int: KeptGuesses] = [:]
        for (i, t) in rows.enumerated() {
            guard let id = batch[t.example].id else { continue }
            var k = fresh.removeValue(forKey: id)
                ?? KeptGuesses(row: [Int32](repeating: -1, count: batch[t.example].tokens.count - 1), values: [])
            k.row[t.position] = Int32(k.values.count / dim)
            let g = guesses + i * dim
            k.values.append(contentsOf: (0..<dim).lazy.map { UInt16(truncatingIfNeeded: g[$0].bitPattern >> 16) })
            fresh[id] = k
        }
        for (id, k) in fresh { keptGuesses[id] = k }
    }

    /// Mean over rows of Σ_x min(p(x), q(x)): p the target's softmax over the whole vocabulary,
    /// q the draft's over its output vocabulary.
    private func expectedAcceptance(draftLogits: FloatBuffer, targetFeatures: FloatBuffer, rows r: Int) -> Float {
        let dim = draft.config.hiddenSize, vocab = draft.config.vocabSize, width = model.outputWidth
        let p = FloatBuffer(count: r * vocab)
        matmulForward(p.pointer, targetFeatures.pointer, draft.body.lmHead.pointer, nil, n: r, inDim: dim, outDim: vocab)
        softmaxForward(p.pointer, p.pointer, n: r, dim: vocab)
        let q = FloatBuffer(count: r * width)
        softmaxForward(q.pointer, draftLogits.pointer, n: r, dim: width)
        var total = 0.0
        for i in 0..<r {
            var sum = 0.0
            for j in 0..<width {
                let token = outputVocabulary?[j] ?? j
                sum += Double(min(p[i * vocab + token], q[i * width + j]))
            }
            total += sum
        }
        return Float(total / Double(r))
    }
}

private extension UnsafeMutablePointer where Pointee == Float {
    /// Copies `count` values of `array` starting at `from`.
    func update(from array: [Float], count: Int, from start: Int) {
        array.withUnsafeBufferPointer { self.update(from: $0.baseAddress! + start, count: count) }
    }
}

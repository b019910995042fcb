import Foundation
import RollspecKernels
import RollspecModel
import RollspecTraining

/// Forward + backward throughput of the training model, next to the rate of a plain BLAS
/// `sgemm` of comparable size on the same threads (Experiments/training-throughput).
public enum TrainingBenchmark {
    /// The measured figures.
    public struct Result: Sendable, CustomStringConvertible {
        public var config: LlamaConfig
        public var batch: Int
        public var sequenceLength: Int
        public var steps: Int
        /// Mean seconds of one forward + cross-entropy + backward over `batch × sequenceLength` tokens.
        public var secondsPerStep: Double
        /// Model FLOPs of one step: 6 · (matmul weights) · tokens (2 forward + 4 backward per
        /// weight and token) plus attention, 6 · 2 · T²/2 · D · H per layer and sequence
        /// (scores and mixing, causal half, ×3 for forward and backward).
        public var flopsPerStep: Double
        /// `[m, k, n]` of the reference sgemm and its rate.
        public var sgemmShape: [Int]
        public var sgemmGFLOPs: Double
        /// OpenBLAS's kernel set that ran the sgemm (and the model's large products).
        public var blasCore: String
        public var threads: Int

        public var tokensPerSecond: Double { Double(batch * sequenceLength) / secondsPerStep }
        public var achievedGFLOPs: Double { flopsPerStep / secondsPerStep / 1e9 }
        public var fractionOfSgemm: Double { achievedGFLOPs / sgemmGFLOPs }

        public var description: String {
            String(format: "%d×%d tokens, %.1fM params, %d threads: %.0f tokens/s, %.1f ms/step, %.2f GFLOP/s model (%.0f%% of sgemm %@ at %.2f GFLOP/s, BLAS %@ kernels)",
                   batch, sequenceLength, Double(config.parameterCount) / 1e6, threads, tokensPerSecond,
                   secondsPerStep * 1e3, achievedGFLOPs, 100 * fractionOfSgemm,
                   sgemmShape.map(String.init).joined(separator: "×"), sgemmGFLOPs, blasCore)
        }
    }

    /// The ~10M-parameter Llama of the benchmark: vocab 8192, dim 256, 6 layers, 8 heads
    /// (4 kv heads), ffn 768, tied head.
    public static let defaultConfig = LlamaConfig(
        vocabSize: 8192, hiddenSize: 256, intermediateSize: 768, numHiddenLayers: 6,
        numAttentionHeads: 8, numKeyValueHeads: 4, tieWordEmbeddings: true)

    /// Times forward + cross-entropy + backward of `config` on `batch` random sequences of
    /// `sequenceLength` tokens (logits on every position), then an sgemm of the FFN's shape
    /// (`[B·T, C] · [C, F]`) on the same threads.
    public static func throughput(
        config: LlamaConfig = defaultConfig, batch: Int = 8, sequenceLength: Int = 128,
        steps: Int = 5, warmup: Int = 1, seed: UInt64 = 0
    ) -> Result {
        let weights = DraftFactory.scratch(config: config, seed: seed)
        let model = TrainingModel(weights: weights)
        let gradients = LlamaGradients(config: config)
        var rng = RandomSource(seed: seed + 1)
        let sequences = (0..<batch).map { _ in (0..<sequenceLength).map { _ in Int(rng.next() % UInt64(config.vocabSize)) } }
        let targets = sequences.flatMap { Array($0.dropFirst()) + [0] }
        func step() {
            let logits = model.forward(sequences)
            let loss = Loss.crossEntropy(logits: logits, vocab: config.vocabSize, targets: targets)
            gradients.zero()
            model.backward(loss.dLogits.pointer, into: gradients)
        }
        for _ in 0..<warmup { step() }
        let start = Date()
        for _ in 0..<steps { step() }
        let seconds = Date().timeIntervalSince(start) / Double(max(steps, 1))

        let c = config, tokens = Double(batch * sequenceLength)
        let q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
        let matmulWeights = Double(c.numHiddenLayers * (c.hiddenSize * (2 * q + 2 * kv) + 3 * c.hiddenSize * c.intermediateSize)
                                   + c.vocabSize * c.hiddenSize)
        let attention = Double(c.numHiddenLayers * batch) * 6 * Double(sequenceLength * sequenceLength) * Double(q)
        let flops = 6 * matmulWeights * tokens + attention

        let m = batch * sequenceLength, k = c.hiddenSize, n = c.intermediateSize
        let a = FloatBuffer(count: m * k), w = FloatBuffer(count: n * k), out = FloatBuffer(count: m * n)
        for i in 0..<a.count { a[i] = Float(i % 7) * 0.1 }
        for i in 0..<w.count { w[i] = Float(i % 5) * 0.1 }
        matmulForwardBLAS(out.pointer, a.pointer, w.pointer, nil, n: m, inDim: k, outDim: n)
        var reps = 0
        let gemmStart = Date()
        while Date().timeIntervalSince(gemmStart) < 0.5 || reps < 5 {
            matmulForwardBLAS(out.pointer, a.pointer, w.pointer, nil, n: m, inDim: k, outDim: n)
            reps += 1
        }
        let gemmSeconds = Date().timeIntervalSince(gemmStart) / Double(reps)
        return Result(config: config, batch: batch, sequenceLength: sequenceLength, steps: steps,
                      secondsPerStep: seconds, flopsPerStep: flops, sgemmShape: [m, k, n],
                      sgemmGFLOPs: 2 * Double(m * k * n) / gemmSeconds / 1e9, blasCore: BLASKernels.coreInUse,
                      threads: kernelThreads)
    }
}

// MARK: A policy update's pass

extension TrainingBenchmark {
    /// One precision's times in `policyPass`.
    public struct PassTimes: Sendable, Encodable {
        public var products: WeightPrecision
        /// Median seconds of the forward (logits on the response rows) and of the backward.
        public var forwardSeconds: Double
        public var backwardSeconds: Double
        public var seconds: Double { forwardSeconds + backwardSeconds }
    }

    /// What `policyPass` measured.
    public struct PolicyPassResult: Sendable, Encodable, CustomStringConvertible {
        public var rows: Int
        public var responseTokens: Int
        public var threads: Int
        /// float32 products first: the baseline of the ratios.
        public var times: [PassTimes]
        /// Largest |Δ| between the two forwards' logits, over the largest |logit|.
        public var logitDifference: Float
        /// Cosine between the two backwards' gradients (all weights).
        public var gradientCosine: Double

        public var description: String {
            let base = times[0]
            var lines = [String(format: "a GRPO update's pass: %d rows (%d response tokens with logits), %d threads", rows, responseTokens, threads),
                         "products    forward ms   backward ms   pass ms   ms / response token   pass ×"]
            for t in times {
                lines.append(String(format: "%-10@ %11.1f %13.1f %9.1f %21.2f %8.2f", t.products.rawValue, t.forwardSeconds * 1e3,
                                    t.backwardSeconds * 1e3, t.seconds * 1e3, t.seconds * 1e3 / Double(responseTokens), base.seconds / t.seconds))
            }
            lines.append(String(format: "logits differ by %.2g of their largest; gradients' cosine %.6f", logitDifference, gradientCosine))
            return lines.joined(separator: "\n")
        }
    }

    /// Forward and backward of a GRPO update's pass on `weights`, with float32 then bfloat16
    /// products (`TrainingModel.init(weights:products:)`), alternating, `repeats` times each;
    /// medians. The pass holds `groups` groups of `groupSize` responses of `responseTokens`
    /// tokens, each continuing its group's prompt of `promptTokens` (as `GRPOTrainer` lays them
    /// out), with logits on every response token; the loss gradient is fixed random noise.
    public static func policyPass(weights: LlamaWeights, groups: Int = 2, groupSize: Int = 8, promptTokens: Int = 64,
                                  responseTokens: Int = 120, repeats: Int = 3, seed: UInt64 = 0) -> PolicyPassResult {
        let vocab = weights.config.vocabSize
        var rng = RandomSource(seed: seed)
        func tokens(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % UInt64(vocab)) } }
        var sequences: [[Int]] = [], continuing: [Int?] = [], logitRows: [Int] = []
        var offset = 0
        for _ in 0..<groups {
            let prompt = sequences.count
            sequences.append(tokens(promptTokens)); continuing.append(nil)
            offset += promptTokens
            let promptLastRow = offset - 1
            for _ in 0..<groupSize {
                // Response token 0 is predicted by the prompt's last row, token j by row j − 1.
                sequences.append(tokens(responseTokens)); continuing.append(prompt)
                logitRows.append(promptLastRow)
                logitRows += offset..<(offset + responseTokens - 1)
                offset += responseTokens
            }
        }
        let dLogits = FloatBuffer(count: logitRows.count * vocab)
        for i in 0..<dLogits.count { dLogits[i] = Float(rng.nextUnit() - 0.5) * 1e-3 }
        let models = [WeightPrecision.float32, .bfloat16].map { TrainingModel(weights: weights, products: $0) }
        let gradients = models.map { _ in LlamaGradients(config: weights.config) }
        var forward = [[Double]](repeating: [], count: 2), backward = forward
        var logits: [[Float]] = [[], []]
        for round in 0..<(repeats + 1) {
            for (i, model) in models.enumerated() {
                let start = Date()
                let z = model.forward(sequences, continuing: continuing, logitRows: logitRows)
                let mid = Date()
                gradients[i].zero()
                model.backward(dLogits.pointer, into: gradients[i])
                let end = Date()
                if round == 0 {  // warm-up; keeps the first logits for the comparison
                    logits[i] = Array(UnsafeBufferPointer(start: z.pointer, count: z.count))
                    continue
                }
                forward[i].append(mid.timeIntervalSince(start))
                backward[i].append(end.timeIntervalSince(mid))
            }
        }
        let largest = logits[0].reduce(0) { max($0, abs($1)) }
        let gap = zip(logits[0], logits[1]).reduce(0) { max($0, abs($1.0 - $1.1)) }
        return PolicyPassResult(
            rows: offset, responseTokens: logitRows.count, threads: kernelThreads,
            times: (0..<2).map { PassTimes(products: models[$0].products, forwardSeconds: median(forward[$0]), backwardSeconds: median(backward[$0])) },
            logitDifference: gap / max(largest, 1e-30),
            gradientCosine: cosine(zip(gradients[0].namedTensors, gradients[1].namedTensors).map { ($0.buffer, $1.buffer) }))
    }

    /// What `eagleDraftStep` measured.
    public struct DraftStepResult: Sendable, Encodable, CustomStringConvertible {
        public var sequences: Int
        public var rows: Int
        public var headRows: Int
        public var threads: Int
        /// Median seconds of a step's forward, losses and backward (no optimiser step), float32
        /// products first: the baseline of the ratio.
        public var seconds: [Double]
        public var products: [WeightPrecision]
        /// Cosine between the two gradients (every tensor of the draft's own).
        public var gradientCosine: Double

        public var description: String {
            var lines = [String(format: "an EAGLE draft's training step: %d sequences, %d rows with losses, head of %d tokens, %d threads",
                                sequences, rows, headRows, threads),
                         "products    step ms   ms / row   step ×"]
            for (p, t) in zip(products, seconds) {
                lines.append(String(format: "%-10@ %8.1f %10.3f %8.2f", p.rawValue, t * 1e3, t * 1e3 / Double(rows), seconds[0] / t))
            }
            lines.append(String(format: "gradients' cosine %.6f", gradientCosine))
            return lines.joined(separator: "\n")
        }
    }

    /// A feature-level draft's training step as `rollspec distill --draft-kind eagle` takes it:
    /// the target's last layer as the draft, `sequences` sequences of `tokens` tokens with
    /// features of unit RMS (their values do not change the cost), every position after the
    /// first two counting, a head of the first `headRows` tokens (nil: the whole head, as the
    /// speculator trainer trains online), the recipe's losses (KL,
    /// feature regression, cross-entropy). float32 then bfloat16 products
    /// (`FeatureDraftTrainer.products`), alternating, `repeats` times each; medians.
    public static func eagleDraftStep(target: LlamaWeights, sequences: Int = 8, tokens: Int = 150, headRows: Int? = 8190,
                                      repeats: Int = 5, seed: UInt64 = 0) -> DraftStepResult {
        let c = target.config
        var rng = RandomSource(seed: seed)
        let batch = (0..<sequences).map { _ in
            FeatureExample(tokens: (0..<tokens).map { _ in Int(rng.next() % UInt64(c.vocabSize)) },
                           features: (0..<((tokens - 1) * c.hiddenSize)).map { _ in Float(rng.nextGaussian()) },
                           lossMask: (0..<tokens).map { $0 >= 2 })
        }
        let vocabulary = headRows.map { Array(0..<min($0, c.vocabSize)) }
        let trainers = [WeightPrecision.float32, .bfloat16].map { products in
            let draft = DraftFactory.featureDraft(target, layers: [c.numHiddenLayers - 1])
            let t = FeatureDraftTrainer(draft: draft, optimizer: AdamWConfig(schedule: .constant(0)),
                                        outputVocabulary: vocabulary, products: products)
            t.ceWeight = 1
            return t
        }
        var times = [[Double]](repeating: [], count: 2)
        var rows = 0
        for round in 0..<(repeats + 1) {
            for (i, t) in trainers.enumerated() {
                let start = Date()
                let stats = t.computeGradients(batch, noisy: false)
                if round > 0 { times[i].append(Date().timeIntervalSince(start)) }  // round 0 warms up
                rows = stats?.tokens ?? 0
            }
        }
        let (a, b) = (trainers[0].gradientsByName, trainers[1].gradientsByName)
        return DraftStepResult(sequences: sequences, rows: rows, headRows: vocabulary?.count ?? c.vocabSize, threads: kernelThreads,
                               seconds: times.map(median), products: trainers.map(\.products),
                               gradientCosine: cosine(a.compactMap { name, x in b[name].map { (x, $0) } }))
    }

    private static func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }

    /// The cosine between two gradients given tensor by tensor as pairs, summed in Double.
    private static func cosine(_ pairs: [(FloatBuffer, FloatBuffer)]) -> Double {
        var dot = 0.0, a2 = 0.0, b2 = 0.0
        for (a, b) in pairs {
            for j in 0..<a.count {
                let x = Double(a[j]), y = Double(b[j])
                dot += x * y; a2 += x * x; b2 += y * y
            }
        }
        return dot / max((a2 * b2).squareRoot(), 1e-300)
    }
}

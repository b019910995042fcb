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

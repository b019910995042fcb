import Foundation
import RollspecKernels
import RollspecModel

/// One training sequence for a draft model.
public struct TrainingExample: @unchecked Sendable {
    /// Token ids of the whole sequence (prompt and completion).
    public var tokens: [Int]
    /// `[T]` (or `[T − 1]`): position i counts in the loss, predicting `tokens[i + 1]`. The last
    /// position never counts (it has no next token).
    public var lossMask: [Bool]
    /// `[T]` per position, the target model's top-k next-token probabilities, if recorded; an
    /// empty list means none for that position.
    public var targetTopK: [[TopKProbability]]?
    /// Weight of the cross-entropy on the next token.
    public var ceWeight: Float
    /// Weight of the distillation KL to `targetTopK`.
    public var klWeight: Float

    public init(tokens: [Int], lossMask: [Bool], targetTopK: [[TopKProbability]]? = nil,
                ceWeight: Float = 1, klWeight: Float = 0) {
        self.tokens = tokens
        self.lossMask = lossMask
        self.targetTopK = targetTopK
        self.ceWeight = ceWeight
        self.klWeight = klWeight
    }
}

/// What one training step did. Losses are means over the counted positions of the batch.
public struct StepStats: Sendable, Equatable {
    /// The optimised loss: Σ_positions (ceWeight·ce + klWeight·kl) / counted positions.
    public var loss: Float
    /// Mean cross-entropy over counted positions (unweighted).
    public var ce: Float
    /// Mean top-k KL over counted positions that have top-k data (unweighted; 0 if none).
    public var kl: Float
    /// Global gradient norm before clipping.
    public var gradNorm: Float
    /// Counted positions (tokens predicted).
    public var tokens: Int
    /// Wall time of the step (forward, backward, update).
    public var seconds: Double
    public var learningRate: Float

    public var tokensPerSecond: Double { seconds > 0 ? Double(tokens) / seconds : 0 }
}

/// Held-out figures of a draft.
public struct EvaluationStats: Sendable, Equatable {
    /// Loss as in `StepStats.loss`.
    public var loss: Float
    public var ce: Float
    public var kl: Float
    /// Mean over counted positions of Σ_x min(p(x), q(x)): p the target's top-k renormalised
    /// where recorded, else the one-hot next token (then it is q(next token)); q the draft.
    /// This is the probability that speculative sampling accepts the draft's token there.
    public var expectedAcceptance: Float
    public var tokens: Int
}

/// Trains a draft model: cross-entropy on the next token plus distillation to a target's
/// recorded top-k distribution, AdamW with warmup and cosine decay, frozen tensors.
///
/// The loop of `rollspec distill` and of the speculator trainer: build batches of
/// `TrainingExample`, call `step`, now and then `evaluate` on held-out examples and `save`.
public final class DraftTrainer {
    public let model: TrainingModel
    public let optimizer: AdamW
    public let gradients: LlamaGradients
    /// How top-k targets enter the KL.
    public var topKTreatment: TopKTreatment = .renormalized
    public var weights: LlamaWeights { model.weights }
    /// Restricts the draft's head to these token ids in training (see
    /// `TrainingModel.outputVocabulary`): targets outside it are not counted, top-k entries
    /// outside it are dropped, and expected acceptance is that of a draft that can only
    /// propose these tokens — as it will at inference.
    public var outputVocabulary: [Int]? {
        didSet {
            model.outputVocabulary = outputVocabulary.map { Array(Set($0)).sorted().map { Int32($0) } }
            column = Dictionary(uniqueKeysWithValues: (model.outputVocabulary ?? []).enumerated().map { (Int($1), $0) })
        }
    }
    /// Token id → logits column when an output vocabulary is set.
    private var column: [Int: Int] = [:]

    /// - Parameters:
    ///   - weights: the draft, trained in place.
    ///   - optimizer: AdamW hyper-parameters and schedule.
    ///   - frozen: tensor names to keep fixed (e.g. `DraftFactory.sharedTensorNames`).
    public init(weights: LlamaWeights, optimizer: AdamWConfig, frozen: Set<String> = []) {
        model = TrainingModel(weights: weights)
        self.optimizer = AdamW(weights: weights, config: optimizer, frozen: frozen)
        gradients = LlamaGradients(config: weights.config)
    }

    /// One optimiser step on `batch`.
    public func step(_ batch: [TrainingExample]) -> StepStats {
        let start = Date()
        let lr = optimizer.nextLearningRate
        guard let pass = run(batch) else {
            return StepStats(loss: 0, ce: 0, kl: 0, gradNorm: 0, tokens: 0,
                             seconds: Date().timeIntervalSince(start), learningRate: lr)
        }
        gradients.zero()
        model.backward(pass.dLogits.pointer, into: gradients, frozen: optimizer.frozen)
        let stats = optimizer.step(gradients)
        return StepStats(loss: pass.loss, ce: pass.ce, kl: pass.kl, gradNorm: stats.gradNorm, tokens: pass.tokens,
                         seconds: Date().timeIntervalSince(start), learningRate: stats.learningRate)
    }

    /// Loss and expected acceptance on `batch`, without updating anything.
    public func evaluate(_ batch: [TrainingExample]) -> EvaluationStats {
        guard let pass = run(batch) else {
            return EvaluationStats(loss: 0, ce: 0, kl: 0, expectedAcceptance: 0, tokens: 0)
        }
        let vocab = model.outputWidth
        let p = pass.topK.enumerated().map { r, list -> [TopKProbability] in
            // A target the draft cannot propose contributes acceptance 0 (an empty list).
            list.isEmpty && pass.targets[r] >= 0 ? [(token: Int32(pass.targets[r]), prob: Float(1))] : list
        }
        let acceptance = Loss.expectedAcceptance(logits: pass.logits, vocab: vocab, topK: p)
        let mean = acceptance.reduce(Float(0)) { $0 + ($1 ?? 0) } / Float(max(pass.tokens, 1))
        return EvaluationStats(loss: pass.loss, ce: pass.ce, kl: pass.kl, expectedAcceptance: mean, tokens: pass.tokens)
    }

    /// The draft's probability of the actual next token at every counted position of `batch`,
    /// in order, under each example's sampling (`sampling[e]`; temperature 1 when nil); nothing
    /// is updated. Feeds `Loss.sampledAcceptance`.
    public func nextTokenProbabilities(_ batch: [TrainingExample], sampling: [SamplingParameters]? = nil)
        -> [NextTokenProbability]
    {
        precondition(sampling == nil || sampling!.count == batch.count, "one sampling per example")
        var sequences: [[Int]] = [], rows: [Int] = [], out: [NextTokenProbability] = []
        var columns: [Int?] = [], rowSampling: [SamplingParameters] = []
        var offset = 0
        for (e, ex) in batch.enumerated() where !ex.tokens.isEmpty {
            for i in 0..<(ex.tokens.count - 1) where i < ex.lossMask.count && ex.lossMask[i] {
                rows.append(offset + i)
                let next = ex.tokens[i + 1]
                columns.append(model.outputVocabulary == nil ? next : column[next])
                rowSampling.append(sampling?[e] ?? SamplingParameters(temperature: 1))
                out.append(NextTokenProbability(example: e, position: i, probability: 0))
            }
            sequences.append(ex.tokens)
            offset += ex.tokens.count
        }
        guard !rows.isEmpty else { return [] }
        let logits = model.forward(sequences, logitRows: rows)
        let q = Loss.draftProbabilities(logits: logits, width: model.outputWidth, columns: columns, sampling: rowSampling)
        for r in out.indices { out[r].probability = q[r] }
        return out
    }

    /// Saves the draft (HF checkpoint) and the optimiser state (`optimizer.safetensors`) to `directory`.
    public func save(to directory: URL) throws {
        try weights.save(to: directory)
        try optimizer.save(to: directory.appendingPathComponent(AdamW.fileName))
    }

    /// A trainer resumed from `save(to:)`: weights from the checkpoint, optimiser state restored.
    public static func resume(from directory: URL, optimizer: AdamWConfig, frozen: Set<String> = []) throws -> DraftTrainer {
        let weights = try ModelLoader.loadHuggingFace(directory: directory)
        let trainer = DraftTrainer(weights: weights, optimizer: optimizer, frozen: frozen)
        try trainer.optimizer.load(from: directory.appendingPathComponent(AdamW.fileName))
        return trainer
    }

    // MARK: The forward and the loss

    private struct Pass {
        var logits: FloatBuffer
        var dLogits: FloatBuffer
        var loss: Float, ce: Float, kl: Float
        var tokens: Int
        var targets: [Int]
        var topK: [[TopKProbability]]
    }

    /// Forward on the counted positions of `batch` and the combined loss; nil if none count.
    private func run(_ batch: [TrainingExample]) -> Pass? {
        var sequences: [[Int]] = [], rows: [Int] = [], targets: [Int] = []
        var topK: [[TopKProbability]] = [], ceW: [Float] = [], klW: [Float] = []
        var offset = 0
        for ex in batch where !ex.tokens.isEmpty {
            for i in 0..<(ex.tokens.count - 1) where i < ex.lossMask.count && ex.lossMask[i] {
                rows.append(offset + i)
                targets.append(ex.tokens[i + 1])
                let list = ex.targetTopK.flatMap { i < $0.count ? $0[i] : nil } ?? []
                topK.append(list)
                ceW.append(ex.ceWeight)
                klW.append(list.isEmpty ? 0 : ex.klWeight)
            }
            sequences.append(ex.tokens)
            offset += ex.tokens.count
        }
        guard !rows.isEmpty else { return nil }
        let vocab = model.outputWidth
        if model.outputVocabulary != nil {
            // Into the subset's column space; what the subset cannot express does not count.
            for r in rows.indices {
                if let j = column[targets[r]] { targets[r] = j } else { targets[r] = -1; ceW[r] = 0 }
                topK[r] = topK[r].compactMap { e in column[Int(e.token)].map { (token: Int32($0), prob: e.prob) } }
                if topK[r].isEmpty { klW[r] = 0 }
            }
        }
        let logits = model.forward(sequences, logitRows: rows)
        // A target outside the output vocabulary (-1) has weight 0; any column stands in.
        let ce = Loss.crossEntropy(logits: logits, vocab: vocab, targets: targets.map { max($0, 0) }, rowWeights: ceW)
        var loss = ce.loss, kl: Float = 0
        let dLogits = ce.dLogits
        let withTopK = topK.filter { !$0.isEmpty }.count
        if withTopK > 0 {
            // KL rows are normalised by all counted rows (mask nil; rows without data have
            // weight 0 and an empty list, which the loss skips), so the sum is one mean.
            let d = Loss.distillation(logits: logits, vocab: vocab, topK: topK.map { $0.isEmpty ? [(token: Int32(0), prob: Float(1))] : $0 },
                                      treatment: topKTreatment, rowWeights: klW)
            loss += d.loss
            addInPlace(dLogits.pointer, d.dLogits.pointer, count: dLogits.count)
            kl = zip(d.rowLosses, topK).reduce(Float(0)) { $0 + ($1.1.isEmpty ? 0 : $1.0) } / Float(withTopK)
        }
        return Pass(logits: logits, dLogits: dLogits, loss: loss, ce: ce.unweightedMean, kl: kl,
                    tokens: rows.count, targets: targets, topK: topK)
    }
}

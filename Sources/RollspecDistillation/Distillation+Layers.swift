import Foundation
import RollspecModel
import RollspecSpeculation
import RollspecTraining

extension Distillation {
    /// `draftKind` `layers`: a small Llama over tokens — target layers, a fresh model or an
    /// existing draft — trained with cross-entropy on the answer tokens plus KL to the recorded
    /// top-k, with AdamW; a layer copy's embedding (the tied head) stays frozen.
    func distillLayerDraft(train: [DistillExample], held: [DistillExample], budget: Double) throws -> DistillationSummary {
        let s = settings
        let targetWeights = target.weights
        var weights: LlamaWeights
        if let draft = s.draft {
            weights = try ModelLoader.loadWeights(path: draft)
        } else if let draftConfig = s.draftConfig {
            let config = try JSONDecoder().decode(LlamaConfig.self, from: Data(contentsOf: URL(fileURLWithPath: draftConfig)))
            weights = DraftFactory.scratch(config: config, seed: 1)
        } else {
            let chosen = s.layers ?? [0, 1, 2, 29]
            guard chosen.allSatisfy({ $0 >= 0 && $0 < targetWeights.config.numHiddenLayers }) else {
                throw DistillationError("--layers must be in 0..<\(targetWeights.config.numHiddenLayers)")
            }
            weights = DraftFactory.fromTarget(targetWeights, layers: chosen)
        }
        guard weights.config.vocabSize == targetWeights.config.vocabSize else {
            throw DistillationError("the draft's vocabulary (\(weights.config.vocabSize)) differs from the target's (\(targetWeights.config.vocabSize))")
        }
        // A fresh draft learns its own embedding; a layer copy keeps the target's, frozen.
        let frozen: Set<String> = s.draftConfig == nil ? ["model.embed_tokens.weight"] : []

        let (totalSteps, schedule) = s.schedule(examples: train.count)
        let trainer = DraftTrainer(weights: weights, optimizer: AdamWConfig(schedule: schedule, weightDecay: 0.01, maxGradNorm: 1),
                                   frozen: frozen)
        // The draft's head covers only the most frequent tokens, in training as at inference.
        let vocabulary = DraftVocabulary.frequentTokens(train, limit: s.vocabSubset, always: tokenizer.stopTokenIds)
        if s.vocabSubset > 0 { trainer.outputVocabulary = vocabulary }
        let trainExamples = train.map(trainingExample), heldExamples = held.map(trainingExample)
        console.line(String(format: "draft: %d layers, %.1fM parameters (%.1fM trained); %d training answers (%d tokens), %d held out",
                            weights.config.numHiddenLayers, Double(weights.config.parameterCount) / 1e6,
                            Double(weights.config.parameterCount - (frozen.isEmpty ? 0 : weights.embedding.count)) / 1e6,
                            train.count, train.reduce(0) { $0 + $1.answer.count }, held.count))

        let (step, log, final, start) = distillLoop(
            columns: "loss,ce,kl,grad_norm,learning_rate,tokens_per_second", examples: trainExamples.count, totalSteps: totalSteps, budget: budget,
            schedule: schedule, reschedule: trainer.optimizer.reschedule,
            step: { indices in
                let s = trainer.step(indices.map { trainExamples[$0] })
                return DistillStepFigures(
                    logColumns: String(format: "%.5f,%.5f,%.5f,%.4f,%.6f,%.1f", s.loss, s.ce, s.kl, s.gradNorm, s.learningRate, s.tokensPerSecond),
                    progress: String(format: "loss %.3f (ce %.3f kl %.3f)", s.loss, s.ce, s.kl), tokensPerSecond: s.tokensPerSecond)
            },
            evaluate: {
                let e = trainer.evaluate(heldExamples)
                return DistillEvaluation(loss: e.loss, expectedAcceptance: e.expectedAcceptance)
            })
        let trainingSeconds = Date().timeIntervalSince(start)
        try log.write(to: s.out.appendingPathComponent("training_log.csv"), atomically: true, encoding: .utf8)

        // Write the draft (HF format) and its output vocabulary.
        try trainer.weights.save(to: s.out)
        if s.vocabSubset > 0 {
            try JSONEncoder().encode(vocabulary).write(to: s.out.appendingPathComponent(DraftVocabulary.fileName))
        }

        // Measured acceptance of real speculative decoding on the held-out prompts (greedy).
        let draftModel = LlamaModel(weights: trainer.weights, outputVocabulary: s.vocabSubset > 0 ? vocabulary : nil)
        let report = try measureGreedy(held: held) { DraftModelProposer(model: draftModel) }
        return DistillationSummary(
            steps: step, trainingSeconds: trainingSeconds, heldoutLoss: final.loss,
            heldoutExpectedAcceptance: final.expectedAcceptance, measuredAcceptanceRate: report.overall.acceptanceRate,
            measuredMeanAcceptanceLength: report.overall.meanAcceptanceLength,
            perPositionAcceptance: report.overall.perPositionAcceptance,
            draftLayers: trainer.weights.config.numHiddenLayers,
            outputVocabulary: s.vocabSubset > 0 ? vocabulary.count : weights.config.vocabSize,
            targetPrecision: target.precision)
    }

    /// Position i predicts tokens[i + 1]: the answer is predicted from prompt.count − 1 on,
    /// with cross-entropy weight 1 and KL weight `klWeight`.
    private func trainingExample(_ e: DistillExample) -> TrainingExample {
        let tokens = e.prompt + e.answer
        var mask = [Bool](repeating: false, count: tokens.count)
        var topK = [[TopKProbability]](repeating: [], count: tokens.count)
        for (j, top) in e.topK.enumerated() {
            let position = e.prompt.count - 1 + j
            mask[position] = true
            topK[position] = zip(top.tokens, top.probabilities).map { (token: $0, prob: $1) }
        }
        return TrainingExample(tokens: tokens, lossMask: mask, targetTopK: topK, ceWeight: 1, klWeight: settings.klWeight)
    }
}

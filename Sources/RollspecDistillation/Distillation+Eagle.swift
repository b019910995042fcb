import Foundation
import RollspecModel
import RollspecSpeculation
import RollspecTraining

extension Distillation {
    /// `draftKind` `eagle`: trains a feature-level draft on the target's recorded features,
    /// with the same budget, progress line, log, held-out figures and outputs as the layer draft.
    func distillFeatureDraft(train: [DistillExample], held: [DistillExample], budget: Double) throws -> DistillationSummary {
        let s = settings
        let targetWeights = target.weights
        let chosen = s.layers ?? [targetWeights.config.numHiddenLayers - 1]
        guard !chosen.isEmpty, chosen.allSatisfy({ $0 >= 0 && $0 < targetWeights.config.numHiddenLayers }) else {
            throw DistillationError("--layers must be in 0..<\(targetWeights.config.numHiddenLayers)")
        }
        // fc starts as a sum of the token's embedding and the previous feature, each at unit RMS.
        let draft = DraftFactory.featureDraft(targetWeights, layers: chosen,
                                              embeddingScale: 1 / rms(targetWeights.embedding.array),
                                              featureScale: 1 / rms(train.prefix(64).flatMap(\.features)))
        let (totalSteps, schedule) = s.schedule(examples: train.count)
        let vocabulary = DraftVocabulary.frequentTokens(train, limit: s.vocabSubset, always: tokenizer.stopTokenIds)
        let trainer = FeatureDraftTrainer(draft: draft, optimizer: AdamWConfig(schedule: schedule, weightDecay: 0.01, maxGradNorm: 1),
                                          outputVocabulary: s.vocabSubset > 0 ? vocabulary : nil, products: s.draftProducts)
        trainer.klWeight = s.klWeight
        trainer.featureWeight = s.featureWeight
        trainer.noise = s.featureNoise
        trainer.trainOnGuesses = s.trainOnGuesses
        trainer.keptGuessShare = s.keptGuessShare
        trainer.ceWeight = s.ceWeight
        let trainExamples = train.enumerated().map { featureExample($1, id: $0) }, heldExamples = held.map { featureExample($0) }
        let own = draft.namedTensors.reduce(0) { $0 + $1.buffer.count }
        console.line(String(format: "eagle draft: layers %@ of the target, %.1fM parameters of its own, %@ products; %d training answers (%d tokens), %d held out",
                            chosen.map(String.init).joined(separator: ","), Double(own) / 1e6, s.draftProducts.rawValue, train.count,
                            train.reduce(0) { $0 + $1.answer.count }, held.count))

        let (step, log, final, start) = distillLoop(
            columns: "loss,kl,feature_loss,grad_norm,learning_rate,tokens_per_second", examples: trainExamples.count,
            totalSteps: totalSteps, budget: budget, schedule: schedule, reschedule: trainer.optimizer.reschedule,
            step: { indices in
                let s = trainer.step(indices.map { trainExamples[$0] })
                return DistillStepFigures(
                    logColumns: String(format: "%.5f,%.5f,%.5f,%.4f,%.6f,%.1f", s.loss, s.kl, s.featureLoss, s.gradNorm,
                                       s.learningRate, s.tokensPerSecond),
                    progress: String(format: "loss %.3f (kl %.3f feature %.3f)", s.loss, s.kl, s.featureLoss),
                    tokensPerSecond: s.tokensPerSecond)
            },
            evaluate: {
                let e = trainer.evaluate(heldExamples)
                return DistillEvaluation(loss: e.loss, expectedAcceptance: e.expectedAcceptance)
            })
        let trainingSeconds = Date().timeIntervalSince(start)
        try log.write(to: s.out.appendingPathComponent("training_log.csv"), atomically: true, encoding: .utf8)
        try trainer.save(to: s.out)
        if s.vocabSubset > 0 {
            try JSONEncoder().encode(vocabulary).write(to: s.out.appendingPathComponent(DraftVocabulary.fileName))
        }

        // Measured acceptance of real speculative decoding on the held-out prompts (greedy).
        let draftModel = FeatureDraftModel(weights: draft, outputVocabulary: s.vocabSubset > 0 ? vocabulary : nil)
        let report = try measureGreedy(held: held) { FeatureDraftProposer(model: draftModel) }
        return DistillationSummary(
            steps: step, trainingSeconds: trainingSeconds, heldoutLoss: final.loss,
            heldoutExpectedAcceptance: final.expectedAcceptance, measuredAcceptanceRate: report.overall.acceptanceRate,
            measuredMeanAcceptanceLength: report.overall.meanAcceptanceLength,
            perPositionAcceptance: report.overall.perPositionAcceptance, draftLayers: chosen.count,
            outputVocabulary: s.vocabSubset > 0 ? vocabulary.count : targetWeights.config.vocabSize,
            draftKind: DistillationSettings.DraftKind.eagle.rawValue, targetPrecision: target.precision)
    }

    /// The answer positions count; the prompt's only give context.
    private func featureExample(_ e: DistillExample, id: Int? = nil) -> FeatureExample {
        let tokens = e.prompt + e.answer
        var mask = [Bool](repeating: false, count: tokens.count)
        for j in e.answer.indices { mask[e.prompt.count - 1 + j] = true }
        return FeatureExample(tokens: tokens, features: e.features, lossMask: mask, id: id)
    }
}

private func rms(_ values: [Float]) -> Float {
    let sq = values.reduce(0.0) { $0 + Double($1 * $1) }
    return Float((sq / Double(max(values.count, 1))).squareRoot())
}

import Foundation
import RollspecKernels
import RollspecModel
import RollspecTesting
import RollspecTraining
import Testing

/// What the speculator trainer needs of a `FeatureDraftTrainer` online: the draft's q of each
/// next token as inference computes it, and moving to a new policy without restarting Adam.
@Suite struct FeatureDraftOnlineTests {
    /// Position i of an example is scored by the draft entry `(tokens[i], f_{i−1})`, exactly as
    /// `FeatureDraftModel` drafts the token after position i from the target's features.
    @Test func nextTokenProbabilitiesAreThoseOfInference() throws {
        let example = try #require(try FeatureDraftTrainerTests.examples(count: 1, length: 12, seed: 5).first)
        let draft = TinyModels.randomFeatureDraft(target: FeatureDraftTrainerTests.target, seed: 8)
        let trainer = FeatureDraftTrainer(draft: draft, optimizer: AdamWConfig(schedule: .constant(0)))
        let probabilities = trainer.nextTokenProbabilities([example])
        // Counted positions 2 ... T − 2 (the mask leaves out 0 and 1), in order.
        #expect(probabilities.map(\.position) == Array(2...(example.tokens.count - 2)))
        let model = FeatureDraftModel(weights: draft)
        for p in probabilities {
            let cache = model.makeCache()
            let logits = example.features.withUnsafeBufferPointer {
                model.forward(tokens: Array(example.tokens[1...p.position]), features: $0.baseAddress!, cache: cache)
            }
            let row = logits.rowArray(0)
            let q = row.withUnsafeBufferPointer {
                expf(logSoftmax($0.baseAddress!, vocabSize: row.count, at: example.tokens[p.position + 1]))
            }
            #expect(abs(q - p.probability) < 1e-4, "position \(p.position): inference \(q), training \(p.probability)")
        }
    }

    /// Rebinding to the next policy shares the draft's own tensors, takes the new embedding and
    /// head, and keeps Adam's moments and step.
    @Test func reboundKeepsTheDraftAndItsOptimiserState() throws {
        let batch = try FeatureDraftTrainerTests.examples(count: 3, length: 9, seed: 1)
        let draft = TinyModels.randomFeatureDraft(target: FeatureDraftTrainerTests.target, seed: 8)
        let trainer = FeatureDraftTrainer(draft: draft, optimizer: AdamWConfig(schedule: .constant(1e-3)))
        for _ in 0..<3 { _ = trainer.step(batch) }
        let next = TinyModels.randomWeights(config: FeatureDraftTrainerTests.config, seed: 99)
        let moved = try trainer.rebound(to: next)
        #expect(moved.draft.fc === trainer.draft.fc)
        #expect(moved.draft.body.embedding === next.embedding)
        #expect(moved.optimizer.step == 3)
        #expect(moved.optimizer.m["fc.weight"]?.array == trainer.optimizer.m["fc.weight"]?.array)
        #expect(moved.optimizer.v["model.norm.weight"]?.array == trainer.optimizer.v["model.norm.weight"]?.array)
        #expect(moved.featureRMS == trainer.featureRMS)
        // A policy of another width cannot take it.
        let wide = TinyModels.randomWeights(config: TinyModels.llamaConfig(vocab: 32, hidden: 24, layers: 2, heads: 4, kvHeads: 2, ffn: 32))
        #expect(throws: DraftMismatch.hiddenWidth(draft: 16, policy: 24)) { _ = try trainer.rebound(to: wide) }
    }
}

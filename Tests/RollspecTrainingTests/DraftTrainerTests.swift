import Foundation
import RollspecKernels
import RollspecModel
import RollspecTesting
import RollspecTraining
import Testing

@Suite struct DraftTrainerTests {
    static let config = TinyModels.llamaConfig(vocab: 32, hidden: 32, layers: 2, heads: 4, kvHeads: 2, ffn: 64)

    static func batch(seed: UInt64 = 3) -> [TrainingExample] {
        var rng = RandomSource(seed: seed)
        return [12, 9, 14, 7].map { len in
            let tokens = (0..<len).map { _ in Int(rng.next() % 32) }
            var mask = [Bool](repeating: true, count: len)
            mask[0] = false  // a "prompt" position that does not count
            return TrainingExample(tokens: tokens, lossMask: mask)
        }
    }

    /// A tiny model memorises a small batch: cross-entropy from ≈ log 32 = 3.47 to below 0.05.
    @Test func overfitsSmallBatch() {
        let weights = DraftFactory.scratch(config: Self.config, seed: 1, std: 0.1)
        let trainer = DraftTrainer(
            weights: weights,
            optimizer: AdamWConfig(schedule: LearningRateSchedule(peak: 1e-2, warmupSteps: 10), weightDecay: 0))
        let batch = Self.batch()
        let first = trainer.step(batch)
        var last = first
        for _ in 0..<250 { last = trainer.step(batch) }
        #expect(first.ce > 3)
        #expect(last.ce < 0.05, "cross-entropy after 251 steps: \(last.ce)")
        #expect(trainer.evaluate(batch).expectedAcceptance > 0.95)
        #expect(last.tokens == batch.reduce(0) { $0 + $1.tokens.count - 2 })
    }

    @Test func frozenTensorsStayUnchanged() {
        let target = TinyModels.randomWeights(config: TinyModels.llamaConfig(vocab: 32, hidden: 32, layers: 3, heads: 4, kvHeads: 2, ffn: 64, tied: false), seed: 2)
        let draft = DraftFactory.fromTarget(target, layers: [0, 2])
        #expect(draft.config.numHiddenLayers == 2)
        #expect(draft.layers[1].wq.array == target.layers[2].wq.array)
        #expect(draft.lmHead.array == target.lmHead.array && draft.lmHead !== target.lmHead)
        let frozen = DraftFactory.sharedTensorNames(draft.config)
        let before = Dictionary(draft.namedTensors.map { ($0.name, $0.buffer.array) }, uniquingKeysWith: { a, _ in a })
        let trainer = DraftTrainer(weights: draft, optimizer: AdamWConfig(schedule: .constant(1e-2)), frozen: frozen)
        for _ in 0..<3 { _ = trainer.step(Self.batch()) }
        for (name, buffer) in draft.namedTensors {
            if frozen.contains(name) {
                #expect(buffer.array == before[name]!, "\(name) changed although frozen")
            } else {
                #expect(buffer.array != before[name]!, "\(name) did not train")
            }
        }
        #expect(target.layers[0].wq.array == before["model.layers.0.self_attn.q_proj.weight"]!)
    }

    @Test func distillationStepsReduceKL() {
        let weights = DraftFactory.scratch(config: Self.config, seed: 4, std: 0.1)
        let trainer = DraftTrainer(weights: weights, optimizer: AdamWConfig(schedule: .constant(1e-2), weightDecay: 0))
        var batch = Self.batch()
        for i in batch.indices {
            batch[i].targetTopK = batch[i].tokens.map { t -> [TopKProbability] in
                let a = Int32((t * 7) % 32), b = Int32((t * 3 + 1) % 32)
                return [(token: a, prob: Float(0.7)), (token: b, prob: Float(0.2))]
            }
            batch[i].ceWeight = 0
            batch[i].klWeight = 1
        }
        let before = trainer.evaluate(batch)
        for _ in 0..<40 { _ = trainer.step(batch) }
        let after = trainer.evaluate(batch)
        #expect(after.kl < before.kl / 2, "KL \(before.kl) → \(after.kl)")
        #expect(after.expectedAcceptance > before.expectedAcceptance + 0.3)
    }

    /// Save after 3 steps, then 2 more steps from memory and 2 from the saved files: the same weights.
    @Test func saveRestoreContinuesIdentically() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-train-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = AdamWConfig(schedule: LearningRateSchedule(peak: 1e-2, warmupSteps: 2, totalSteps: 10))
        let frozen: Set<String> = ["model.norm.weight"]
        let a = DraftTrainer(weights: DraftFactory.scratch(config: Self.config, seed: 5), optimizer: config, frozen: frozen)
        for _ in 0..<3 { _ = a.step(Self.batch()) }
        try a.save(to: dir)
        let b = try DraftTrainer.resume(from: dir, optimizer: config, frozen: frozen)
        #expect(b.optimizer.step == 3)
        for s in 0..<2 {
            let sa = a.step(Self.batch(seed: UInt64(10 + s))), sb = b.step(Self.batch(seed: UInt64(10 + s)))
            #expect(sa.loss == sb.loss && sa.learningRate == sb.learningRate)
        }
        for ((name, x), (_, y)) in zip(a.weights.namedTensors, b.weights.namedTensors) {
            #expect(x.array == y.array, "\(name) differs after resuming")
        }
    }
}

import RollspecBenchmarks
import Foundation
import RollspecKernels
import RollspecModel
import RollspecTesting
import RollspecTraining
import Testing

@Suite struct TrainingBenchmarkTests {
    /// A smoke run on a tiny config (always), and the full benchmark of
    /// Experiments/training-throughput when ROLLSPEC_TRAINING_BENCH=1.
    @Test func throughput() {
        let small = TrainingBenchmark.throughput(config: TinyModels.llamaConfig(), batch: 2, sequenceLength: 16, steps: 1, warmup: 0)
        #expect(small.tokensPerSecond > 0 && small.sgemmGFLOPs > 0)
        guard ProcessInfo.processInfo.environment["ROLLSPEC_TRAINING_BENCH"] == "1" else { return }
        for threads in [1, 2] {
            setKernelThreads(threads)
            print("training-throughput:", TrainingBenchmark.throughput(steps: 5))
        }
        setKernelThreads(0)
    }

    /// `rollspec bench training --model`: both precisions timed on one pass, their logits apart
    /// by bf16's rounding, their gradients pointing the same way.
    @Test func policyPassTimesBothPrecisions() {
        let weights = TinyModels.randomWeights(config: TinyModels.llamaConfig(), seed: 4)
        let r = TrainingBenchmark.policyPass(weights: weights, groups: 2, groupSize: 3, promptTokens: 5, responseTokens: 7, repeats: 1)
        #expect(r.rows == 2 * (5 + 3 * 7) && r.responseTokens == 2 * 3 * 7)
        #expect(r.times.map(\.products) == [.float32, .bfloat16] && r.times.allSatisfy { $0.forwardSeconds > 0 && $0.backwardSeconds > 0 })
        #expect(r.logitDifference > 1e-5 && r.logitDifference < 0.1, "\(r)")
        #expect(r.gradientCosine > 0.99 && r.gradientCosine < 1, "\(r)")
    }

    /// `rollspec bench training --model … --eagle-draft`: both precisions timed on one step,
    /// their gradients pointing the same way but not identical.
    @Test func eagleDraftStepTimesBothPrecisions() {
        let weights = TinyModels.randomWeights(config: TinyModels.llamaConfig(), seed: 5)
        let r = TrainingBenchmark.eagleDraftStep(target: weights, sequences: 2, tokens: 9, headRows: 20, repeats: 1)
        #expect(r.rows == 2 * 6 && r.headRows == 20, "\(r)")
        #expect(r.products == [.float32, .bfloat16] && r.seconds.allSatisfy { $0 > 0 })
        #expect(r.gradientCosine > 0.99 && r.gradientCosine < 1, "\(r)")
    }

    @Test func overfitBound() {
        let weights = DraftFactory.scratch(config: DraftTrainerTests.config, seed: 1, std: 0.1)
        let trainer = DraftTrainer(
            weights: weights,
            optimizer: AdamWConfig(schedule: LearningRateSchedule(peak: 1e-2, warmupSteps: 10), weightDecay: 0))
        var ce: [Float] = []
        for _ in 0..<251 { ce.append(trainer.step(DraftTrainerTests.batch()).ce) }
        print("overfit: ce step 1 \(ce[0]), step 50 \(ce[49]), step 100 \(ce[99]), step 251 \(ce[250])")
        // A draft must be able to memorise one fixed batch: seen here, 3.66 → 1.7e-3 → 5.1e-4 → 1.5e-5.
        // A trainer whose gradient or update is broken stalls far above these bounds.
        #expect(ce[0] > 1, "a random draft should not start out knowing the batch: \(ce[0])")
        #expect(ce[49] < 0.05 * ce[0] && ce[99] < ce[49] && ce[250] < ce[99], "\(ce[0]) \(ce[49]) \(ce[99]) \(ce[250])")
        #expect(ce[250] < 1e-3, "not memorised after 251 steps: \(ce[250])")
    }
}

import Foundation
import RollspecKernels
import RollspecModel
import RollspecTesting
@testable import RollspecTraining
import Testing

/// The training forward keeps one set of saved activations for passes of varying size: a GRPO
/// update's passes differ by a few rows and logit rows from one to the next, and a fresh set for
/// each (gigabytes for a 135M model) cost the kernel's page zeroing on one thread.
@Suite struct ActivationReuseTests {
    static let config = TinyModels.llamaConfig(vocab: 40, hidden: 16, layers: 2, heads: 4, kvHeads: 2, ffn: 24)

    /// `count` sequences of `length` tokens, and every row but each sequence's first as a logit row.
    static func pass(_ count: Int, _ length: Int, seed: Int) -> (sequences: [[Int]], rows: [Int]) {
        let sequences = (0..<count).map { s in (0..<length).map { ($0 * 7 + s * 3 + seed) % 40 } }
        let rows = (0..<count).flatMap { s in (1..<length).map { s * length + $0 } }
        return (sequences, rows)
    }

    @Test func passesOfGrowingSizeReuseOneSetAndGiveWhatAFreshModelGives() {
        let weights = TinyModels.randomWeights(config: Self.config, seed: 3)
        let model = TrainingModel(weights: weights)
        let step = TrainingModel.activationRowStep
        // Rows 100, 300 (more logit rows too), 500, 130: all within one step of rows.
        for (i, (count, length)) in [(10, 10), (30, 10), (50, 10), (13, 10)].enumerated() {
            let p = Self.pass(count, length, seed: i)
            let got = model.forward(p.sequences, logitRows: p.rows).array
            let fresh = TrainingModel(weights: weights).forward(p.sequences, logitRows: p.rows).array
            #expect(got == fresh, "pass \(i)")
            #expect(model.activationAllocations == 1, "pass \(i) of \(count * length) rows regrew the activations")
        }
        // Past the step, once more.
        let big = Self.pass(step / 10 + 1, 10, seed: 9)
        _ = model.forward(big.sequences, logitRows: big.rows)
        #expect(model.activationAllocations == 2)
    }
}

import Foundation
import RollspecModel
import RollspecSpeculation
import RollspecTraining

/// One training step as the distillation loop logs and shows it.
struct DistillStepFigures {
    /// The step's six CSV columns after seconds, step and epoch (loss, two loss terms,
    /// grad norm, learning rate, tokens/s).
    var logColumns: String
    /// The loss part of the progress line.
    var progress: String
    var tokensPerSecond: Double
}

/// Held-out figures of the draft being trained.
struct DistillEvaluation {
    var loss: Float
    var expectedAcceptance: Float
}

extension Distillation {
    /// The epoch loop both draft kinds share: shuffled batches of example indices, a step each,
    /// a held-out evaluation every `evalEvery` steps, a CSV log and a progress line with the
    /// time left, until the epochs or `budget` seconds run out. When the budget will end the run
    /// first, the learning rate's decay is fitted to end with it (`scheduleWithinBudget`).
    /// - Parameters:
    ///   - columns: the names of the six columns `step` fills.
    ///   - schedule: the planned schedule over `totalSteps`; `reschedule` installs a fitted one.
    /// - Returns: the steps taken, the log (header included), the final evaluation and the
    ///   time the loop started.
    func distillLoop(columns: String, examples: Int, totalSteps: Int, budget: Double,
                     schedule: LearningRateSchedule, reschedule: (LearningRateSchedule) -> Void,
                     step: ([Int]) -> DistillStepFigures,
                     evaluate: () -> DistillEvaluation) -> (steps: Int, log: String, final: DistillEvaluation, start: Date) {
        let s = settings
        var log = "seconds,step,epoch,\(columns),heldout_loss,heldout_expected_acceptance\n"
        var lastEval = evaluate()
        log += String(format: "0,0,0,,,,,,,%.5f,%.5f\n", lastEval.loss, lastEval.expectedAcceptance)
        console.line(String(format: "before training: held-out loss %.4f, expected acceptance %.4f", lastEval.loss, lastEval.expectedAcceptance))
        let start = Date()
        var rng = RandomSource(seed: 7)
        var steps = 0
        training: for epoch in 0..<s.epochs {
            var order = Array(0..<examples)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            for b in stride(from: 0, to: order.count, by: s.batchSize) {
                let figures = step(Array(order[b..<min(order.count, b + s.batchSize)]))
                steps += 1
                let elapsed = Date().timeIntervalSince(start)
                var evalColumns = ","
                if steps % s.evalEvery == 0 || steps == totalSteps {
                    lastEval = evaluate()
                    evalColumns = String(format: "%.5f,%.5f", lastEval.loss, lastEval.expectedAcceptance)
                }
                log += String(format: "%.1f,%d,%d,", elapsed, steps, epoch) + figures.logColumns + "," + evalColumns + "\n"
                reschedule(s.scheduleWithinBudget(schedule, budget: budget, stepsDone: steps, elapsed: elapsed))
                let left = min(budget - elapsed, elapsed / Double(steps) * Double(totalSteps - steps))
                console.progress(String(
                    format: "\rstep %d/%d epoch %d  %@  held-out acceptance %.3f  %.0f tok/s  %.0f s left   ",
                    steps, totalSteps, epoch + 1, figures.progress, lastEval.expectedAcceptance, figures.tokensPerSecond, max(0, left)))
                if elapsed >= budget { break training }
            }
        }
        console.line("")
        let final = evaluate()
        log += String(format: "%.1f,%d,,,,,,,,%.5f,%.5f\n", Date().timeIntervalSince(start), steps, final.loss, final.expectedAcceptance)
        return (steps, log, final, start)
    }

    /// Speculative decoding of the held-out prompts, greedy, with a fresh `proposer` per
    /// sequence: the measured acceptance `summary.json` reports (empty when `measure` is off).
    func measureGreedy(held: [DistillExample], proposer: @escaping () -> Proposer) throws -> SpeculationReport {
        let generator = SpeculativeGenerator(model: target, controller: SpeculationController(maxLookahead: 5)) { [proposer()] }
        var report = SpeculationReport()
        for ex in held where settings.measure {
            _ = try generator.generate(GenerationRequest(prompt: ex.prompt, maxTokens: settings.maxTokens, sampling: .greedy,
                                                         stopTokens: tokenizer.stopTokenIds))
            report = report + generator.lastReport
        }
        return report
    }
}

import Foundation
import RollspecModel
import RollspecSpeculation

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

extension DistillCommand {
    /// The epoch loop both draft kinds share: shuffled batches of example indices, a step each,
    /// a held-out evaluation every `--eval-every` steps, a CSV log and a progress line with the
    /// time left, until the epochs or `--minutes` run out.
    /// - Parameter columns: the names of the six columns `step` fills.
    /// - Returns: the steps taken, the log (header included), the final evaluation and the
    ///   time the loop started.
    func distillLoop(columns: String, examples: Int, totalSteps: Int,
                     step: ([Int]) -> DistillStepFigures,
                     evaluate: () -> DistillEvaluation) -> (steps: Int, log: String, final: DistillEvaluation, start: Date) {
        var log = "seconds,step,epoch,\(columns),heldout_loss,heldout_expected_acceptance\n"
        var lastEval = evaluate()
        log += String(format: "0,0,0,,,,,,,%.5f,%.5f\n", lastEval.loss, lastEval.expectedAcceptance)
        printError(String(format: "before training: held-out loss %.4f, expected acceptance %.4f", lastEval.loss, lastEval.expectedAcceptance))
        let start = Date()
        var rng = RandomSource(seed: 7)
        var steps = 0
        training: for epoch in 0..<epochs {
            var order = Array(0..<examples)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            for b in stride(from: 0, to: order.count, by: batchSize) {
                let s = step(Array(order[b..<min(order.count, b + batchSize)]))
                steps += 1
                let elapsed = Date().timeIntervalSince(start)
                var evalColumns = ","
                if steps % evalEvery == 0 || steps == totalSteps {
                    lastEval = evaluate()
                    evalColumns = String(format: "%.5f,%.5f", lastEval.loss, lastEval.expectedAcceptance)
                }
                log += String(format: "%.1f,%d,%d,", elapsed, steps, epoch) + s.logColumns + "," + evalColumns + "\n"
                let budget = minutes * 60
                let left = min(budget - elapsed, elapsed / Double(steps) * Double(totalSteps - steps))
                FileHandle.standardError.write(Data(String(
                    format: "\rstep %d/%d epoch %d  %@  held-out acceptance %.3f  %.0f tok/s  %.0f s left   ",
                    steps, totalSteps, epoch + 1, s.progress, lastEval.expectedAcceptance, s.tokensPerSecond, max(0, left)).utf8))
                if elapsed >= budget { break training }
            }
        }
        printError("")
        let final = evaluate()
        log += String(format: "%.1f,%d,,,,,,,,%.5f,%.5f\n", Date().timeIntervalSince(start), steps, final.loss, final.expectedAcceptance)
        return (steps, log, final, start)
    }

    /// Speculative decoding of the held-out prompts, greedy, with a fresh `proposer` per
    /// sequence: the measured acceptance `summary.json` reports (empty with `--no-measure`).
    func measureGreedy(loaded: LoadedModel, held: [DistillExample], proposer: @escaping () -> Proposer) throws -> SpeculationReport {
        let generator = SpeculativeGenerator(model: loaded.model, controller: SpeculationController(maxLookahead: 5)) { [proposer()] }
        var report = SpeculationReport()
        for ex in held where measure {
            _ = try generator.generate(GenerationRequest(prompt: ex.prompt, maxTokens: maxTokens, sampling: .greedy,
                                                         stopTokens: loaded.tokenizer.stopTokenIds))
            report = report + generator.lastReport
        }
        return report
    }
}

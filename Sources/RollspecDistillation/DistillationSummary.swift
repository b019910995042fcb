import Foundation
import RollspecKernels
import RollspecModel

/// What a distillation writes to `out/summary.json`: the training's extent, the draft's
/// held-out figures and the machine it ran on.
public struct DistillationSummary: Codable, Sendable, Equatable {
    /// Training steps taken (fewer than planned when the time budget ran out).
    public var steps: Int
    public var trainingSeconds: Double
    /// Held-out loss after training.
    public var heldoutLoss: Float
    /// E[sum_x min(p(x), q(x))] of the draft's first guess on the held-out answers, in 0...1.
    public var heldoutExpectedAcceptance: Float
    /// Accepted / drafted tokens of real speculative decoding (T=0) on the held-out prompts;
    /// 0 when not measured (no drafts).
    public var measuredAcceptanceRate: Double
    /// 1 + accepted / drafts (counts the bonus token); 1 when not measured (no drafts).
    public var measuredMeanAcceptanceLength: Double
    /// Drafts whose first i + 1 tokens were all accepted / drafts; empty when not measured.
    public var perPositionAcceptance: [Double]
    /// Decoder layers of the draft.
    public var draftLayers: Int
    /// Tokens the draft's head can propose.
    public var outputVocabulary: Int
    /// `layers` or `eagle`.
    public var draftKind = "layers"
    /// The target's precision while it wrote the training answers (absent in older summaries).
    public var targetPrecision: WeightPrecision?
    /// The target's answers the draft trained on: fewer than the prompts times
    /// `answersPerPrompt` when `answerShare` of `totalMinutes` ran out (absent in older summaries).
    public var trainingAnswers: Int?
    public var machine = MachineRecord.current()

    /// Writes `summary.json` to `outDirectory` (pretty-printed, keys sorted).
    public func write(to outDirectory: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(self).write(to: outDirectory.appendingPathComponent("summary.json"))
    }

    /// The result lines `rollspec distill` prints when it is done.
    public func resultLines(outDirectory: URL) -> [String] {
        // Unmeasured, the mean length is 1 (no drafts), so the per-position list is what tells.
        let figures = !perPositionAcceptance.isEmpty
            ? String(format: "held-out: expected acceptance %.3f; speculative decoding (T=0): acceptance rate %.3f, mean acceptance length %.2f",
                     heldoutExpectedAcceptance, measuredAcceptanceRate, measuredMeanAcceptanceLength)
            : String(format: "held-out: expected acceptance %.3f (speculative decoding not measured: --no-measure)", heldoutExpectedAcceptance)
        return [figures, "draft written to \(outDirectory.path)"]
    }
}

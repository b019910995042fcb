import Foundation
import RollspecModel
import RollspecTraining

/// Everything a distillation is told besides its target: the options of `rollspec distill`
/// (named after them in the messages), with the same defaults.
public struct DistillationSettings: Sendable {
    /// Which kind of draft is trained.
    public enum DraftKind: String, CaseIterable, Sendable {
        /// A small Llama over tokens.
        case layers
        /// A feature-level draft that reads the target's hidden states (EAGLE).
        case eagle
    }

    /// Training prompts file (one per line, text or `{"prompt": ...}`).
    public var prompts: String
    /// Held-out prompts file; nil: the last 10% of `prompts` (at least one).
    public var heldout: String?
    /// Output directory: the draft, its vocabulary, the log, the summary and the answer caches.
    public var out: URL
    /// `layers` only: start from this draft checkpoint instead of target layers.
    public var draft: String?
    /// `layers` only: train a fresh draft with this HF config.json (its vocab must be the target's).
    public var draftConfig: String?
    public var draftKind: DraftKind = .layers
    /// Target layers copied into the draft; nil: 0,1,2,29 (`layers`), the last layer (`eagle`).
    public var layers: [Int]?
    /// Wrap prompts as user turns of the tokenizer's chat template (ChatML).
    public var chat = true
    /// At the end, measure real speculative decoding (T=0) on the held-out prompts.
    public var measure = true
    /// Answer length in tokens.
    public var maxTokens = 128
    /// Temperature of the target's answers.
    public var temperature: Float = 0
    /// Top-k probabilities recorded per answer token.
    public var topK = 16
    /// Examples per training step.
    public var batchSize = 8
    /// Prompts the target answers side by side when it writes the training data.
    public var answerBatch = 16
    /// Answers the target writes to each training prompt, each sampled with its own seed
    /// (T > 0 only: greedy answers would repeat). More contexts of the kind RL samples from
    /// the same prompts.
    public var answersPerPrompt = 1
    /// Passes over the training answers (the time budget may stop earlier).
    public var epochs = 8
    /// Time budget for training, in minutes.
    public var minutes: Double = 30
    /// Time budget for the whole run (the target's answers and training), in minutes:
    /// training gets what the answers leave of it, or `minutes` if that is less. The final
    /// measurement of real speculative decoding comes after it.
    public var totalMinutes: Double?
    /// With `totalMinutes`: the share of it the target's training answers may take (nil:
    /// `defaultAnswerShare`). Once it has passed, no new batch of answers starts and training
    /// takes the answers written, so a machine slower than the one a recipe was made on trains
    /// on fewer answers instead of on none. The held-out answers come first, whole.
    public var answerShare: Double?
    /// The 30-minute recipes' answers took 15–45% of it on the machines they were made on
    /// (`Experiments/distill-smollm2`).
    public static let defaultAnswerShare = 0.5
    /// Peak learning rate.
    public var learningRate: Float = 3e-4
    /// Weight of the KL term (cross-entropy has weight 1).
    public var klWeight: Float = 1
    /// Size of the draft's output vocabulary (0: the whole vocabulary).
    public var vocabSubset = 8192
    /// Evaluate every N steps.
    public var evalEvery = 25
    /// `eagle`: weight of the feature regression (the KL has weight `klWeight`).
    public var featureWeight: Float = 0.005
    /// `eagle`: half-width of the uniform noise on input features, in units of their RMS.
    public var featureNoise: Float = 0.2
    /// `eagle`: weight of a cross-entropy on the answer's next token.
    public var ceWeight: Float = 0
    /// `eagle`: also train each step on the draft's own guessed features (twice the cost per step).
    public var trainOnGuesses = false
    /// `eagle`: share of answer entries that read the draft's guess of their feature kept from
    /// the last epoch instead of the target's (training the second drafted token; no extra cost).
    public var keptGuessShare: Float = 0
    /// `eagle`: how the draft's training step multiplies (`FeatureDraftTrainer.products`):
    /// bfloat16 runs its products on AMX tiles or VDPBF16PS, several times as fast.
    public var draftProducts: WeightPrecision = .float32

    /// The defaults, reading `prompts` and writing to `out`.
    public init(prompts: String, out: URL) {
        self.prompts = prompts
        self.out = out
    }

    /// - Throws: `DistillationError` when the settings contradict each other or a count or
    ///   budget is not positive.
    public func validate() throws {
        if draftKind == .eagle && (draft != nil || draftConfig != nil) {
            throw DistillationError("--draft-kind eagle starts from target layers; --draft and --draft-config are for --draft-kind layers")
        }
        if batchSize < 1 || answerBatch < 1 || epochs < 1 || minutes <= 0 || evalEvery < 1 {
            throw DistillationError("--batch-size, --answer-batch, --epochs, --minutes and --eval-every must be positive")
        }
        if answersPerPrompt < 1 {
            throw DistillationError("--answers-per-prompt must be at least 1 (got \(answersPerPrompt))")
        }
        if answersPerPrompt > 1 && temperature == 0 {
            throw DistillationError("--answers-per-prompt \(answersPerPrompt) needs --temperature above 0: greedy answers to one prompt are all the same")
        }
        if !(keptGuessShare >= 0 && keptGuessShare <= 1) {
            throw DistillationError("--kept-guess-share is a share of entries, in 0...1 (got \(keptGuessShare))")
        }
        if keptGuessShare > 0 && draftKind != .eagle {
            throw DistillationError("--kept-guess-share is for --draft-kind eagle: a layer draft reads no features")
        }
        if draftProducts == .bfloat16 && draftKind != .eagle {
            throw DistillationError("--draft-products bfloat16 is for --draft-kind eagle")
        }
        if let totalMinutes, !(totalMinutes > 0) {
            throw DistillationError("--total-minutes must be positive (got \(totalMinutes))")
        }
        if let answerShare {
            guard totalMinutes != nil else { throw DistillationError("--answer-share is a share of --total-minutes, which is not set") }
            guard answerShare > 0 && answerShare <= 1 else {
                throw DistillationError("--answer-share is a share of --total-minutes, in (0, 1] (got \(answerShare))")
            }
        }
    }

    /// Steps in the whole run (at least one) and the learning-rate schedule over them: warm-up
    /// for a tenth (at most 50 steps), then down to a tenth of the peak.
    func schedule(examples: Int) -> (totalSteps: Int, schedule: LearningRateSchedule) {
        let stepsPerEpoch = (examples + batchSize - 1) / batchSize
        let totalSteps = max(1, stepsPerEpoch * epochs)
        return (totalSteps, LearningRateSchedule(peak: learningRate, warmupSteps: min(50, totalSteps / 10),
                                                 totalSteps: totalSteps, minimum: learningRate / 10))
    }

    /// When the training answers stop starting new batches: `answerShare` of `totalMinutes`
    /// after `start`, or never without a total budget.
    func answerDeadline(from start: Date) -> Date? {
        guard let totalMinutes else { return nil }
        return start.addingTimeInterval(totalMinutes * 60 * (answerShare ?? Self.defaultAnswerShare))
    }

    /// Seconds of training: `minutes`, or what `totalMinutes` leaves after `answering` seconds
    /// of the target's answers if that is less (at least one step's worth: never below zero).
    func trainingSeconds(afterAnswering answering: Double) -> Double {
        guard let totalMinutes else { return minutes * 60 }
        return max(0, min(minutes * 60, totalMinutes * 60 - answering))
    }

    /// `planned` fitted to a time budget of `budget` seconds: after `stepsDone` steps in
    /// `elapsed` seconds, the rest holds as many more steps as the mean pace so far gives
    /// (evaluations included); when that ends the run before `planned` would, the decay ends
    /// there instead, so the rate reaches its minimum as the budget runs out. A pace needs 10 steps.
    func scheduleWithinBudget(_ planned: LearningRateSchedule, budget: Double, stepsDone: Int, elapsed: Double) -> LearningRateSchedule {
        guard stepsDone >= 10, elapsed > 0 else { return planned }
        let more = (budget - elapsed) / (elapsed / Double(stepsDone))
        return planned.ending(by: stepsDone + Int(max(1, min(more, Double(planned.totalSteps)))))
    }
}

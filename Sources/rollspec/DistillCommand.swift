import ArgumentParser
import Foundation
import RollspecDistillation
import RollspecModel

extension DistillationSettings.DraftKind: ExpressibleByArgument {}

/// `rollspec distill`: the options of a `Distillation`, which does the work (RollspecDistillation).
struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Distil a draft model from a target on the target's own answers.",
        discussion: """
            1. The target answers every prompt (batched, greedy by default), recording its top-k \
            distribution at each answer token; answers are cached in OUT/data-*.json.
            2. The draft — chosen layers of the target (--layers), a fresh model (--draft-config \
            FILE, an HF config.json) or an existing draft (--draft) — trains on them with \
            cross-entropy on the answer tokens plus KL to the recorded top-k, with AdamW; the \
            embedding (tied head) stays frozen.
            3. Held-out prompts measure the expected acceptance E[sum_x min(p(x), q(x))] during \
            training and, at the end, the acceptance of real speculative decoding.
            OUT receives the draft as HF safetensors + config.json (loadable with --draft), \
            draft_vocabulary.json (the S most frequent tokens: the draft's head is restricted to \
            them at inference), training_log.csv and summary.json.
            """)

    @Option(name: .long, help: "Target model (HF directory or .gguf).")
    var target: String

    @Option(name: .long, help: "Start from this draft checkpoint instead of target layers.")
    var draft: String?

    @Option(name: .long, help: "Train a fresh draft with this HF config.json (its vocab must be the target's).")
    var draftConfig: String?

    @Option(name: .long, help: "layers: a small Llama over tokens; eagle: a feature-level draft that reads the target's hidden states (EAGLE).")
    var draftKind: DistillationSettings.DraftKind = .layers

    @Option(name: .long, help: "Target layers copied into the draft, e.g. 0,1,29 (default: 0,1,2,29; eagle: 29).")
    var layers: String?

    @Option(name: .long, help: "Training prompts (one per line, text or {\"prompt\": ...}).")
    var prompts: String

    @Option(name: .long, help: "Held-out prompts; default: the last 10% of --prompts.")
    var heldout: String?

    @Option(name: .long, help: "Output directory.")
    var out: String

    @Flag(name: .long, inversion: .prefixedNo, help: "Wrap prompts as ChatML user turns.")
    var chat = true

    @Flag(name: .long, inversion: .prefixedNo, help: "At the end, measure real speculative decoding (T=0) on the held-out prompts.")
    var measure = true

    @Option(name: .long, help: "Answer length in tokens.")
    var maxTokens: Int = 128

    @Option(name: .long, help: "Temperature of the target's answers.")
    var temperature: Float = 0

    @Option(name: .long, help: "Top-k probabilities recorded per answer token.")
    var topK: Int = 16

    @Option(name: .long, help: "Examples per training step.")
    var batchSize: Int = 8

    @Option(name: .long, help: "Prompts the target answers side by side when it writes the training data.")
    var answerBatch: Int = 16

    @Option(name: .long, help: "Answers the target writes to each training prompt, each with its own seed (needs --temperature above 0).")
    var answersPerPrompt = 1

    @Option(name: .long, help: "Passes over the training answers (the time budget may stop earlier).")
    var epochs: Int = 8

    @Option(name: .long, help: "Time budget for training, in minutes. When it will end training before --epochs do, the learning rate's decay is fitted to end with it.")
    var minutes: Double = 30

    @Option(name: .long, help: "Time budget for the whole run, answers included, in minutes: training gets what the answers leave, or --minutes if less. The final measurement comes after it.")
    var totalMinutes: Double?

    @Option(name: .long, help: "With --total-minutes: the share of it the target's training answers may take (default \(DistillationSettings.defaultAnswerShare)). Once it has passed no new batch of answers starts, and training takes the answers written.")
    var answerShare: Double?

    @Option(name: .long, help: "Peak learning rate.")
    var learningRate: Float = 3e-4

    @Option(name: .long, help: "Weight of the KL term (cross-entropy has weight 1).")
    var klWeight: Float = 1

    @Option(name: .long, help: "Size of the draft's output vocabulary (0: the whole vocabulary).")
    var vocabSubset: Int = 8192

    @Option(name: .long, help: "Evaluate every N steps.")
    var evalEvery: Int = 25

    @Option(name: .long, help: "eagle: weight of the feature regression (the KL has weight --kl-weight).")
    var featureWeight: Float = 0.005

    @Option(name: .long, help: "eagle: half-width of the uniform noise on input features, in units of their RMS.")
    var featureNoise: Float = 0.2

    @Option(name: .long, help: "eagle: weight of a cross-entropy on the answer's next token (the target's greedy pick when --temperature 0).")
    var ceWeight: Float = 0

    @Flag(name: .long, help: "eagle: also train each step on the draft's own guessed features (a second pass; twice the cost per step).")
    var trainOnGuesses = false

    @Option(name: .long, help: "eagle: share of answer entries (0...1) that read the draft's own guess of their feature, kept from the previous epoch, instead of the target's: trains the second drafted token at no extra cost per step.")
    var keptGuessShare: Float = 0

    @Option(name: .long, help: "eagle: the draft's training products, float32 or bfloat16 (on AMX tiles or VDPBF16PS, several times as fast; gradients and the optimiser stay float32).")
    var draftProducts: WeightPrecision = .float32

    @Option(name: .long, help: "Kernel threads (default: all CPUs).")
    var threads: Int?

    @Option(name: .long, help: "The target's precision while it writes the training answers and their features: float32 or bfloat16 (as RL rollout workers run it; the answers come ~1.3x faster on 2 cores).")
    var precision: WeightPrecision = .float32

    func validate() throws {
        do { try settings.validate() } catch let error as DistillationError { throw ValidationError(error.description) }
    }

    func run() throws {
        var options = try ModelOptions.parse(["--model", target] + (threads.map { ["--threads", "\($0)"] } ?? []))
        options.precision = precision
        let loaded = try LoadedModel.load(options)
        try Distillation(target: loaded.model, tokenizer: loaded.tokenizer, settings: try settings).run()
    }

    /// The options as the library takes them; `--layers` parsed.
    private var settings: DistillationSettings {
        get throws {
            var s = DistillationSettings(prompts: prompts, out: URL(fileURLWithPath: out))
            s.heldout = heldout
            s.draft = draft
            s.draftConfig = draftConfig
            s.draftKind = draftKind
            s.layers = try layers.map(parseTokenList)
            s.chat = chat
            s.measure = measure
            s.maxTokens = maxTokens
            s.temperature = temperature
            s.topK = topK
            s.batchSize = batchSize
            s.answerBatch = answerBatch
            s.answersPerPrompt = answersPerPrompt
            s.epochs = epochs
            s.minutes = minutes
            s.totalMinutes = totalMinutes
            s.answerShare = answerShare
            s.learningRate = learningRate
            s.klWeight = klWeight
            s.vocabSubset = vocabSubset
            s.evalEvery = evalEvery
            s.featureWeight = featureWeight
            s.featureNoise = featureNoise
            s.ceWeight = ceWeight
            s.trainOnGuesses = trainOnGuesses
            s.keptGuessShare = keptGuessShare
            s.draftProducts = draftProducts
            return s
        }
    }
}

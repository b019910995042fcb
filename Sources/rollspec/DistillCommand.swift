import ArgumentParser
import Foundation
import RollspecKernels
import RollspecModel
import RollspecSpeculation
import RollspecTraining

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
    var draftKind: DraftKind = .layers

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

    @Option(name: .long, help: "Passes over the training answers (the time budget may stop earlier).")
    var epochs: Int = 8

    @Option(name: .long, help: "Time budget for training, in minutes.")
    var minutes: Double = 30

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

    @Option(name: .long, help: "Kernel threads (default: all CPUs).")
    var threads: Int?

    enum DraftKind: String, ExpressibleByArgument, CaseIterable { case layers, eagle }

    func validate() throws {
        if draftKind == .eagle && (draft != nil || draftConfig != nil) {
            throw ValidationError("--draft-kind eagle starts from target layers; --draft and --draft-config are for --draft-kind layers")
        }
        if batchSize < 1 || answerBatch < 1 || epochs < 1 || minutes <= 0 || evalEvery < 1 { throw ValidationError("--batch-size, --answer-batch, --epochs, --minutes and --eval-every must be positive") }
    }

    func run() throws {
        let outDir = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        let loaded = try LoadedModel.load(try ModelOptions.parse(["--model", target] + (threads.map { ["--threads", "\($0)"] } ?? [])))
        var trainPrompts = try readPromptFile(prompts)
        var heldPrompts: [String]
        if let heldout { heldPrompts = try readPromptFile(heldout) } else {
            let cut = trainPrompts.count - max(1, trainPrompts.count / 10)
            heldPrompts = Array(trainPrompts[cut...])
            trainPrompts = Array(trainPrompts[..<cut])
        }
        func data(_ p: [String], _ name: String) throws -> [DistillExample] {
            try generateDistillData(
                loaded: loaded, prompts: p, chat: chat, maxTokens: maxTokens, temperature: temperature, topK: topK,
                features: draftKind == .eagle, batchSize: answerBatch, seed: 0,
                cache: outDir.appendingPathComponent("data-\(name)-T\(temperature)-n\(maxTokens)-k\(topK).json"), label: name)
        }
        let train = try data(trainPrompts, "train"), held = try data(heldPrompts, "heldout")
        if draftKind == .eagle {
            try distillFeatureDraft(loaded: loaded, train: train, held: held, outDir: outDir)
            return
        }

        // The draft.
        let targetWeights = loaded.model.weights
        var weights: LlamaWeights
        if let draft {
            weights = try ModelLoader.loadWeights(path: draft)
        } else if let draftConfig {
            let config = try JSONDecoder().decode(LlamaConfig.self, from: Data(contentsOf: URL(fileURLWithPath: draftConfig)))
            weights = DraftFactory.scratch(config: config, seed: 1)
        } else {
            let chosen = try parseTokenList(layers ?? "0,1,2,29")
            guard chosen.allSatisfy({ $0 >= 0 && $0 < targetWeights.config.numHiddenLayers }) else {
                throw CLIError("--layers must be in 0..<\(targetWeights.config.numHiddenLayers)")
            }
            weights = DraftFactory.fromTarget(targetWeights, layers: chosen)
        }
        guard weights.config.vocabSize == targetWeights.config.vocabSize else {
            throw CLIError("the draft's vocabulary (\(weights.config.vocabSize)) differs from the target's (\(targetWeights.config.vocabSize))")
        }
        // A fresh draft learns its own embedding; a layer copy keeps the target's, frozen.
        let frozen: Set<String> = draftConfig == nil ? ["model.embed_tokens.weight"] : []

        let stepsPerEpoch = (train.count + batchSize - 1) / batchSize
        let totalSteps = max(1, stepsPerEpoch * epochs)
        let schedule = LearningRateSchedule(peak: learningRate, warmupSteps: min(50, totalSteps / 10),
                                            totalSteps: totalSteps, minimum: learningRate / 10)
        let trainer = DraftTrainer(weights: weights, optimizer: AdamWConfig(schedule: schedule, weightDecay: 0.01, maxGradNorm: 1),
                                   frozen: frozen)
        // The draft's head covers only the most frequent tokens, in training as at inference.
        let vocabulary = frequentTokens(train, limit: vocabSubset, always: loaded.tokenizer.stopTokenIds)
        if vocabSubset > 0 { trainer.outputVocabulary = vocabulary }
        let trainExamples = train.map(makeExample), heldExamples = held.map(makeExample)
        printError(String(format: "draft: %d layers, %.1fM parameters (%.1fM trained); %d training answers (%d tokens), %d held out",
                          weights.config.numHiddenLayers, Double(weights.config.parameterCount) / 1e6,
                          Double(weights.config.parameterCount - (frozen.isEmpty ? 0 : weights.embedding.count)) / 1e6,
                          train.count, train.reduce(0) { $0 + $1.answer.count }, held.count))

        let (step, log, final, start) = distillLoop(
            columns: "loss,ce,kl,grad_norm,learning_rate,tokens_per_second", examples: trainExamples.count, totalSteps: totalSteps,
            step: { indices in
                let s = trainer.step(indices.map { trainExamples[$0] })
                return DistillStepFigures(
                    logColumns: String(format: "%.5f,%.5f,%.5f,%.4f,%.6f,%.1f", s.loss, s.ce, s.kl, s.gradNorm, s.learningRate, s.tokensPerSecond),
                    progress: String(format: "loss %.3f (ce %.3f kl %.3f)", s.loss, s.ce, s.kl), tokensPerSecond: s.tokensPerSecond)
            },
            evaluate: {
                let e = trainer.evaluate(heldExamples)
                return DistillEvaluation(loss: e.loss, expectedAcceptance: e.expectedAcceptance)
            })
        let trainingSeconds = Date().timeIntervalSince(start)
        try log.write(to: outDir.appendingPathComponent("training_log.csv"), atomically: true, encoding: .utf8)

        // Write the draft (HF format) and its output vocabulary.
        try trainer.weights.save(to: outDir)
        if vocabSubset > 0 {
            try JSONEncoder().encode(vocabulary).write(to: outDir.appendingPathComponent(draftVocabularyFile))
        }

        // Measured acceptance of real speculative decoding on the held-out prompts (greedy).
        let draftModel = LlamaModel(weights: trainer.weights, outputVocabulary: vocabSubset > 0 ? vocabulary : nil)
        let report = try measureGreedy(loaded: loaded, held: held) { DraftModelProposer(model: draftModel) }
        let summary = DistillSummary(
            steps: step, trainingSeconds: trainingSeconds, heldoutLoss: final.loss,
            heldoutExpectedAcceptance: final.expectedAcceptance, measuredAcceptanceRate: report.overall.acceptanceRate,
            measuredMeanAcceptanceLength: report.overall.meanAcceptanceLength,
            perPositionAcceptance: report.overall.perPositionAcceptance,
            draftLayers: trainer.weights.config.numHiddenLayers, outputVocabulary: vocabSubset > 0 ? vocabulary.count : weights.config.vocabSize)
        try summary.write(to: outDir)
    }

    private func makeExample(_ e: DistillExample) -> TrainingExample {
        let tokens = e.prompt + e.answer
        // Position i predicts tokens[i + 1]: the answer is predicted from prompt.count − 1 on.
        var mask = [Bool](repeating: false, count: tokens.count)
        var topK = [[TopKProbability]](repeating: [], count: tokens.count)
        for (j, top) in e.topK.enumerated() {
            let position = e.prompt.count - 1 + j
            mask[position] = true
            topK[position] = zip(top.tokens, top.probabilities).map { (token: $0, prob: $1) }
        }
        return TrainingExample(tokens: tokens, lossMask: mask, targetTopK: topK, ceWeight: 1, klWeight: klWeight)
    }
}

/// What `rollspec distill` writes to OUT/summary.json.
struct DistillSummary: Encodable {
    var steps: Int; var trainingSeconds: Double; var heldoutLoss: Float
    var heldoutExpectedAcceptance: Float; var measuredAcceptanceRate: Double
    var measuredMeanAcceptanceLength: Double; var perPositionAcceptance: [Double]
    var draftLayers: Int; var outputVocabulary: Int
    var draftKind = "layers"
    var machine = MachineRecord.current()

    /// Writes summary.json and prints the result lines.
    func write(to outDir: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(self).write(to: outDir.appendingPathComponent("summary.json"))
        if measuredMeanAcceptanceLength > 0 {
            print(String(format: "held-out: expected acceptance %.3f; speculative decoding (T=0): acceptance rate %.3f, mean acceptance length %.2f",
                         heldoutExpectedAcceptance, measuredAcceptanceRate, measuredMeanAcceptanceLength))
        } else {
            print(String(format: "held-out: expected acceptance %.3f (speculative decoding not measured: --no-measure)", heldoutExpectedAcceptance))
        }
        print("draft written to \(outDir.path)")
    }
}

/// The file in a draft directory naming the tokens its head is restricted to.
let draftVocabularyFile = "draft_vocabulary.json"

/// The `limit` most frequent tokens of the target's answers and recorded top-k, plus `always`.
func frequentTokens(_ data: [DistillExample], limit: Int, always: Set<Int>) -> [Int] {
    var counts: [Int: Int] = [:]
    for e in data {
        for t in e.answer { counts[t, default: 0] += 4 }
        for top in e.topK { for t in top.tokens { counts[Int(t), default: 0] += 1 } }
        for t in e.prompt { counts[t, default: 0] += 1 }
    }
    let ranked = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map(\.key)
    return Array(Set(ranked.prefix(max(0, limit - always.count))).union(always)).sorted()
}

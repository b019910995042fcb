import Foundation
import RollspecModel

/// Distils a draft model from a target on the target's own answers: what `rollspec distill` runs.
///
/// 1. The target answers every prompt (batched, greedy by default), recording its top-k
///    distribution at each answer token (and its features, for an EAGLE draft); the answers are
///    cached in `out/data-*.json`, so a rerun with the same settings skips this.
/// 2. The draft — chosen layers of the target, a fresh model, an existing draft, or a
///    feature-level draft over target layers — trains on them, for `epochs` passes or
///    `minutes` (or what `totalMinutes` leaves), whichever ends first, with the learning
///    rate's decay fitted to end with the run (`distillLoop`, shared by both kinds).
/// 3. Held-out answers give the expected acceptance during training and, at the end, the
///    acceptance of real speculative decoding (`measureGreedy`).
///
/// `out` receives the draft (HF safetensors + config.json), `draft_vocabulary.json`,
/// `training_log.csv` and `summary.json`.
public struct Distillation {
    public var target: LlamaModel
    public var tokenizer: any Tokenizer
    public var settings: DistillationSettings
    public var console: DistillationConsole

    /// - Parameters:
    ///   - target: the model whose answers the draft learns; the draft shares its vocabulary.
    ///   - tokenizer: the target's tokenizer: prompts, stop tokens and the chat template.
    public init(target: LlamaModel, tokenizer: any Tokenizer, settings: DistillationSettings,
                console: DistillationConsole = .standard) {
        self.target = target
        self.tokenizer = tokenizer
        self.settings = settings
        self.console = console
    }

    /// Runs the whole pipeline and writes its outputs to `settings.out`.
    /// - Returns: what was written to `summary.json`.
    /// - Throws: `DistillationError` for bad settings, prompt files, layers or draft vocabulary;
    ///   the loaders' and the file system's errors as they are.
    @discardableResult
    public func run() throws -> DistillationSummary {
        try settings.validate()
        let outDir = settings.out
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        let start = Date()
        var trainPrompts = try readPromptFile(settings.prompts)
        var heldPrompts: [String]
        if let heldout = settings.heldout { heldPrompts = try readPromptFile(heldout) } else {
            let cut = trainPrompts.count - max(1, trainPrompts.count / 10)
            heldPrompts = Array(trainPrompts[cut...])
            trainPrompts = Array(trainPrompts[..<cut])
        }
        // Each copy of the list is answered with other seeds (`answers` seeds by index).
        trainPrompts = Array(repeatElement(trainPrompts, count: settings.answersPerPrompt).joined())
        let fingerprint = targetFingerprint
        // The held-out answers first: a deadline may cut the training answers short, never them.
        let held = try answers(to: heldPrompts, label: "heldout", target: fingerprint)
        let train = try answers(to: trainPrompts, label: "train", target: fingerprint,
                                deadline: settings.answerDeadline(from: start))
        let budget = settings.trainingSeconds(afterAnswering: Date().timeIntervalSince(start))
        if settings.totalMinutes != nil {
            console.line(String(format: "answers took %.0f s; %.0f s left for training", Date().timeIntervalSince(start), budget))
        }
        var summary = settings.draftKind == .eagle
            ? try distillFeatureDraft(train: train, held: held, budget: budget)
            : try distillLayerDraft(train: train, held: held, budget: budget)
        summary.trainingAnswers = train.count
        try summary.write(to: outDir)
        for line in summary.resultLines(outDirectory: outDir) { console.result(line) }
        return summary
    }
}

/// Where a distillation reports: progress on one stream, the result lines on another.
public struct DistillationConsole: Sendable {
    /// Progress text, as given: whole lines end in "\n"; a running line starts with "\r" and is
    /// rewritten in place.
    public var progress: @Sendable (String) -> Void
    /// The result lines at the end, one call per line, without its newline.
    public var result: @Sendable (String) -> Void

    public init(progress: @escaping @Sendable (String) -> Void, result: @escaping @Sendable (String) -> Void) {
        self.progress = progress
        self.result = result
    }

    /// Progress on standard error, results on standard output: what `rollspec distill` shows.
    public static let standard = DistillationConsole(
        progress: { FileHandle.standardError.write(Data($0.utf8)) }, result: { print($0) })

    /// Shows nothing.
    public static let silent = DistillationConsole(progress: { _ in }, result: { _ in })

    /// One whole progress line.
    func line(_ text: String) { progress(text + "\n") }
}

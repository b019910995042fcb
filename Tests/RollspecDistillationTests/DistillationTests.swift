import Foundation
@testable import RollspecDistillation
import RollspecKernels
import RollspecModel
import RollspecSpeculation
import RollspecTesting
import Testing

/// The whole `rollspec distill` pipeline in process, on a tiny random target with a byte-level
/// tokenizer (well under a second in all): what it writes, that training lowers the loss, that
/// the draft it writes is the trained one and speculates, that a rerun reuses the target's
/// answers, and that bad input stops it with a message naming the fault.
@Suite struct DistillationTests {
    typealias DraftKind = DistillationSettings.DraftKind

    static let tokenizer = ByteTokenizer()
    /// A fresh target at each use: a model keeps scratch buffers, so tests that run side by side
    /// must not share one. Seeded, so every copy is the same model.
    static var target: LlamaModel {
        TinyModels.randomModel(config: TinyModels.llamaConfig(vocab: tokenizer.vocabSize, hidden: 32, layers: 2), seed: 3)
    }
    static let trainPrompts = ["the cat sat", "{\"prompt\": \"on the mat\"}", "a b c d", "hello there",
                               "{\"prompt\": \"one two three\"}", "zzz"]
    static let heldPrompts = ["the mat sat", "hello cat"]
    static let maxTokens = 12

    /// A scratch directory with the prompt files; removed by `body`'s caller.
    static func withScratch<T>(_ body: (URL) throws -> T) throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try (trainPrompts.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("train.jsonl"), atomically: true, encoding: .utf8)
        try heldPrompts.joined(separator: "\n").write(to: dir.appendingPathComponent("held.txt"), atomically: true, encoding: .utf8)
        return try body(dir)
    }

    /// A few steps over six prompts: 3 steps an epoch, 2 epochs, evaluated every 2 steps.
    static func settings(_ kind: DraftKind, in dir: URL) -> DistillationSettings {
        var s = DistillationSettings(prompts: dir.appendingPathComponent("train.jsonl").path, out: dir.appendingPathComponent("out"))
        s.heldout = dir.appendingPathComponent("held.txt").path
        s.draftKind = kind
        s.layers = kind == .layers ? [0] : nil
        s.chat = false
        s.maxTokens = maxTokens
        s.topK = 4
        s.batchSize = 2
        s.answerBatch = 4
        s.epochs = 2
        s.evalEvery = 2
        s.vocabSubset = 64
        return s
    }

    /// `settings` cut to one epoch with no measurement at the end: for the tests of the answer cache.
    static func oneEpochUnmeasured(_ kind: DraftKind, in dir: URL) -> DistillationSettings {
        var s = settings(kind, in: dir)
        s.measure = false
        s.epochs = 1
        return s
    }

    @discardableResult
    static func distill(_ settings: DistillationSettings, target: LlamaModel = DistillationTests.target,
                        transcript: Transcript = Transcript()) throws -> DistillationSummary {
        try Distillation(target: target, tokenizer: tokenizer, settings: settings, console: transcript.console).run()
    }

    static func cacheFiles(_ kind: DraftKind) -> [String] {
        let data = ["train", "heldout"].map { "data-\($0)-T0.0-n\(maxTokens)-k4.json" }
        return kind == .eagle ? data + data.map { $0 + ".features.f32" } : data
    }

    @Test(arguments: DraftKind.allCases)
    func writesTheDraftTheLogAndTheSummary(kind: DraftKind) throws {
        try Self.withScratch { dir in
            let settings = Self.settings(kind, in: dir)
            let transcript = Transcript()
            let summary = try Self.distill(settings, transcript: transcript)
            let out = settings.out

            let files = Set(try FileManager.default.contentsOfDirectory(atPath: out.path))
            let expected = ["model.safetensors", "config.json", DraftVocabulary.fileName, "training_log.csv", "summary.json"] + Self.cacheFiles(kind)
            #expect(Set(expected).isSubset(of: files), "\(files)")

            // summary.json holds what run() returned, machine record included, with figures in range.
            let written = try JSONDecoder().decode(DistillationSummary.self, from: Data(contentsOf: out.appendingPathComponent("summary.json")))
            #expect(written == summary)
            #expect(summary.draftKind == kind.rawValue)
            #expect(summary.steps == 6)
            #expect(summary.trainingSeconds >= 0)
            #expect(summary.heldoutLoss.isFinite && summary.heldoutLoss > 0)
            #expect((0...1).contains(summary.heldoutExpectedAcceptance))
            #expect((0...1).contains(summary.measuredAcceptanceRate))
            #expect((1...6).contains(summary.measuredMeanAcceptanceLength))
            #expect(!summary.perPositionAcceptance.isEmpty && summary.perPositionAcceptance.count <= 5)
            #expect(summary.perPositionAcceptance.allSatisfy { (0...1).contains($0) })
            #expect(zip(summary.perPositionAcceptance, summary.perPositionAcceptance.dropFirst()).allSatisfy { $0 >= $1 })
            #expect(summary.draftLayers == 1)

            // The vocabulary: at most 64 ids of the target's, ascending, with its stop token.
            let vocabulary = try JSONDecoder().decode([Int].self, from: Data(contentsOf: out.appendingPathComponent(DraftVocabulary.fileName)))
            #expect(vocabulary.count == summary.outputVocabulary && vocabulary.count <= 64)
            #expect(vocabulary == vocabulary.sorted() && Set(vocabulary).count == vocabulary.count)
            #expect(vocabulary.allSatisfy { (0..<Self.tokenizer.vocabSize).contains($0) })
            #expect(Self.tokenizer.stopTokenIds.isSubset(of: Set(vocabulary)))

            // The log: header, the row before training, one per step, the final evaluation.
            let log = try String(contentsOf: out.appendingPathComponent("training_log.csv"), encoding: .utf8)
            let rows = log.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
            #expect(rows.count == 1 + 1 + 6 + 1)
            #expect(rows.allSatisfy { $0.count == 11 })
            #expect(rows[0].prefix(4) == ["seconds", "step", "epoch", "loss"])
            #expect(rows[0].suffix(2) == ["heldout_loss", "heldout_expected_acceptance"])
            #expect(Float(rows.last![9]) == Float(String(format: "%.5f", summary.heldoutLoss)))

            // Progress and result lines, as `rollspec distill` shows them.
            #expect(transcript.progress.contains("train: 6/6 answers"))
            #expect(transcript.progress.contains("heldout: 2/2 answers"))
            #expect(transcript.progress.contains("before training: held-out loss"))
            #expect(transcript.progress.contains("step 6/6 epoch 2"))
            #expect(transcript.results.count == 2)
            #expect(transcript.results.first?.hasPrefix("held-out: expected acceptance") == true)
            #expect(transcript.results.last == "draft written to \(out.path)")
        }
    }

    @Test(arguments: DraftKind.allCases)
    func theWrittenDraftIsTheTrainedOneAndSpeculates(kind: DraftKind) throws {
        // Loaded from OUT with the loaders `--draft DIR` uses. The measured acceptance in the
        // summary is not compared: the speculation controller chooses its lookahead by timing
        // the draft against the target, so it varies with the machine's load.
        try Self.withScratch { dir in
            let settings = Self.settings(kind, in: dir), target = Self.target
            try Self.distill(settings, target: target)
            let out = settings.out
            let vocabulary = try JSONDecoder().decode([Int].self, from: Data(contentsOf: out.appendingPathComponent(DraftVocabulary.fileName)))
            #expect(FeatureDraftWeights.isFeatureDraft(path: out.path) == (kind == .eagle))
            let body: LlamaWeights, proposer: () -> Proposer
            switch kind {
            case .layers:
                body = try ModelLoader.loadWeights(path: out.path)
                let draft = LlamaModel(weights: body, outputVocabulary: vocabulary)
                proposer = { DraftModelProposer(model: draft) }
            case .eagle:
                let weights = try FeatureDraftWeights.load(directory: out, target: target.weights)
                body = weights.body
                let draft = FeatureDraftModel(weights: weights, outputVocabulary: vocabulary)
                proposer = { FeatureDraftProposer(model: draft) }
            }
            #expect(body.config.vocabSize == Self.tokenizer.vocabSize && body.config.numHiddenLayers == 1)

            // The draft's layer began as a copy of a target layer (0 as asked, or an EAGLE
            // draft's default, the last); what was written has moved away from it.
            let origin = kind == .layers ? 0 : target.config.numHiddenLayers - 1
            let targetTensors = Dictionary(target.weights.namedTensors.map { ($0.name, $0.buffer.array) }, uniquingKeysWith: { a, _ in a })
            let layer = body.namedTensors.filter { $0.name.hasPrefix("model.layers.0.") }
            let started = layer.map { targetTensors[$0.name.replacingOccurrences(of: "model.layers.0.", with: "model.layers.\(origin).")] }
            #expect(!layer.isEmpty && started.allSatisfy { $0 != nil })
            #expect(zip(layer, started).contains { $0.buffer.array != $1 }, "the written layer is the untrained copy")

            // Speculative decoding with it at a fixed lookahead drafts, accepts some drafts and
            // answers exactly as the target alone does.
            var controller = SpeculationController(maxLookahead: 5)
            controller.isFixed = true
            let speculative = SpeculativeGenerator(model: target, controller: controller) { [proposer()] }
            let plain = SpeculativeGenerator(model: target) { [] }
            var report = SpeculationReport()
            for text in Self.heldPrompts {
                let request = GenerationRequest(prompt: Self.tokenizer.encode(text), maxTokens: Self.maxTokens,
                                                sampling: .greedy, stopTokens: Self.tokenizer.stopTokenIds)
                #expect(try speculative.generate(request).tokens == plain.generate(request).tokens)
                report = report + speculative.lastReport
            }
            #expect(report.overall.drafts > 0 && report.overall.acceptanceRate > 0, "\(report.overall)")
        }
    }

    @Test(arguments: DraftKind.allCases)
    func aRerunReusesTheCachedAnswers(kind: DraftKind) throws {
        try Self.withScratch { dir in
            var settings = Self.settings(kind, in: dir)
            try Self.distill(settings)
            let caches = Self.cacheFiles(kind).map { settings.out.appendingPathComponent($0).path }
            func modified() throws -> [Date] {
                try caches.map { try FileManager.default.attributesOfItem(atPath: $0)[.modificationDate] as! Date }
            }
            let before = try modified()

            // The cache key is temperature, answer length and top-k: skipping the measurement
            // and training for one epoch still reuses the answers.
            settings.measure = false
            settings.epochs = 1
            let transcript = Transcript()
            let summary = try Self.distill(settings, transcript: transcript)
            #expect(try modified() == before)
            #expect(transcript.progress.contains("train: 6 cached target answers from \(caches[0])"))
            #expect(transcript.progress.contains("heldout: 2 cached target answers from \(caches[1])"))
            #expect(!transcript.progress.contains("answers, "), "a rerun generated answers: \(transcript.progress)")
            #expect(summary.steps == 3)
            // Nothing measured: no drafts.
            #expect(summary.measuredAcceptanceRate == 0 && summary.perPositionAcceptance.isEmpty)
            // ... and the result says so, instead of printing zeros as a measurement.
            #expect(transcript.results.first?.hasSuffix("(speculative decoding not measured: --no-measure)") == true,
                    "\(transcript.results)")
        }
    }

    /// The cache is for the same prompts: a prompt file with as many other prompts is answered
    /// afresh, not given the old answers.
    /// A total budget whose answer share is gone before the first batch ends: the training
    /// answers stop after that batch (4 of 6), uncached, and the draft trains on them; the
    /// held-out answers, written first, are whole and cached.
    @Test(arguments: DraftKind.allCases)
    func aTotalBudgetStopsTheTrainingAnswersAtItsShare(kind: DraftKind) throws {
        try Self.withScratch { dir in
            var s = Self.oneEpochUnmeasured(kind, in: dir)
            s.totalMinutes = 1e-6
            s.answerShare = 0.5
            let transcript = Transcript()
            let summary = try Self.distill(s, transcript: transcript)
            #expect(summary.trainingAnswers == s.answerBatch)
            #expect(summary.steps >= 1)
            #expect(transcript.progress.contains("train: 4 of 6 answers in"))
            let written = try FileManager.default.contentsOfDirectory(atPath: s.out.path)
            let held = Self.cacheFiles(kind).filter { $0.contains("heldout") }, train = Self.cacheFiles(kind).filter { $0.contains("train") }
            #expect(held.allSatisfy(written.contains))
            #expect(!train.contains(where: written.contains))
            // Without the total budget the same run answers every prompt and caches them.
            var whole = s
            whole.totalMinutes = nil
            whole.answerShare = nil
            #expect(try Self.distill(whole).trainingAnswers == Self.trainPrompts.count)
            #expect(Self.cacheFiles(kind).allSatisfy(try FileManager.default.contentsOfDirectory(atPath: s.out.path).contains))
        }
    }

    @Test func aRerunWithOtherPromptsOfTheSameCountAnswersThemAfresh() throws {
        try Self.withScratch { dir in
            let settings = Self.oneEpochUnmeasured(.layers, in: dir)
            try Self.distill(settings)
            let other = Self.trainPrompts.indices.map { "another prompt \($0)" }
            try (other.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("train.jsonl"), atomically: true, encoding: .utf8)
            let transcript = Transcript()
            try Self.distill(settings, transcript: transcript)
            #expect(!transcript.progress.contains("train: 6 cached target answers"), "\(transcript.progress)")
            #expect(transcript.progress.contains("heldout: 2 cached target answers"), "\(transcript.progress)")
            let url = settings.out.appendingPathComponent(Self.cacheFiles(.layers)[0])
            let cached = try JSONDecoder().decode([DistillExample].self, from: Data(contentsOf: url))
            #expect(cached.map(\.prompt) == other.map { Self.tokenizer.encode($0) })
        }
    }

    /// The cache is for the same target: another checkpoint of the same shape (an earlier RL
    /// step's policy, say) has its own answers written, not the cached ones; the first
    /// target's answers are then again not taken for the second's, and a cache that recorded
    /// no target (written by an older rollspec) is reused with a warning.
    @Test func aRerunWithAnotherTargetOfTheSameShapeAnswersAfresh() throws {
        try Self.withScratch { dir in
            let settings = Self.oneEpochUnmeasured(.eagle, in: dir)
            try Self.distill(settings)
            let other = TinyModels.randomModel(config: Self.target.config, seed: 4)
            let transcript = Transcript()
            try Self.distill(settings, target: other, transcript: transcript)
            #expect(transcript.progress.contains("were written by another target"), "\(transcript.progress)")
            #expect(!transcript.progress.contains("cached target answers"), "\(transcript.progress)")
            // The answers on disk are now the other target's: greedy answers of another model.
            let url = settings.out.appendingPathComponent(Self.cacheFiles(.eagle)[0])
            let mine = try JSONDecoder().decode([DistillExample].self, from: Data(contentsOf: url))
            let again = Transcript()
            try Self.distill(settings, target: other, transcript: again)
            #expect(again.progress.contains("train: 6 cached target answers from \(url.path)"), "\(again.progress)")
            #expect(!again.progress.contains("not checked"))
            let firstTarget = Transcript()
            try Self.distill(settings, transcript: firstTarget)
            #expect(firstTarget.progress.contains("were written by another target"), "\(firstTarget.progress)")
            let theirs = try JSONDecoder().decode([DistillExample].self, from: Data(contentsOf: url))
            #expect(mine.map(\.answer) != theirs.map(\.answer), "two different targets gave the same greedy answers")

            for label in ["train", "heldout"] {
                try FileManager.default.removeItem(at: settings.out.appendingPathComponent("data-\(label)-T0.0-n\(Self.maxTokens)-k4.json.target"))
            }
            let unrecorded = Transcript()
            try Self.distill(settings, target: other, transcript: unrecorded)
            #expect(unrecorded.progress.contains("train: 6 cached target answers from \(url.path) (written before caches recorded their target: not checked against this one)"),
                    "\(unrecorded.progress)")
        }
    }

    /// `--answers-per-prompt 2` at T = 1: each training prompt answered twice, the copies with
    /// their own seeds, so the answers differ; the held-out prompts once. A bfloat16 target's
    /// answers are cached under their own name and the summary says which precision wrote them.
    @Test func severalAnswersPerPromptAreSampledWithTheirOwnSeeds() throws {
        try Self.withScratch { dir in
            var settings = Self.oneEpochUnmeasured(.layers, in: dir)
            settings.temperature = 1
            settings.answersPerPrompt = 2
            let target = Self.target
            let summary = try Self.distill(settings, target: LlamaModel(weights: target.weights, precision: .bfloat16))
            #expect(summary.targetPrecision == .bfloat16)
            func cached(_ label: String) throws -> [DistillExample] {
                let url = settings.out.appendingPathComponent("data-\(label)-T1.0-n\(Self.maxTokens)-k4-bf16.json")
                return try JSONDecoder().decode([DistillExample].self, from: Data(contentsOf: url))
            }
            let train = try cached("train"), held = try cached("heldout")
            let n = Self.trainPrompts.count
            #expect(train.count == 2 * n && held.count == Self.heldPrompts.count)
            #expect((0..<n).allSatisfy { train[$0].prompt == train[n + $0].prompt })
            // The tiny random target is peaked (it repeats one byte), so some pairs coincide; with
            // one seed for both copies every pair would.
            let differ = (0..<n).filter { train[$0].answer != train[n + $0].answer }.count
            #expect(differ >= 2, "only \(differ) of \(n) prompts got two different answers")
            #expect(summary.steps == (2 * n + settings.batchSize - 1) / settings.batchSize)
        }
    }

    @Test func aMalformedPromptFileIsRefusedNamingItsLine() throws {
        try Self.withScratch { dir in
            let path = dir.appendingPathComponent("bad.jsonl").path
            // Line 3 as an editor counts it: the empty line is skipped but counted.
            try "a fine prompt\n\n{\"text\": \"not a prompt\"}\n".write(toFile: path, atomically: true, encoding: .utf8)
            var settings = Self.settings(.layers, in: dir)
            settings.prompts = path
            #expect(throws: DistillationError("\(path):3: expected {\"prompt\": \"...\"}")) { try Self.distill(settings) }
            // Refused before the target answered anything.
            let written = (try? FileManager.default.contentsOfDirectory(atPath: settings.out.path)) ?? []
            #expect(written.isEmpty, "\(written)")
        }
    }

    @Test func promptFilesThatHoldNoPromptsAreRefused() throws {
        try Self.withScratch { dir in
            let empty = dir.appendingPathComponent("empty.txt").path, missing = dir.appendingPathComponent("missing.txt").path
            try "\n\n".write(toFile: empty, atomically: true, encoding: .utf8)
            #expect(throws: DistillationError("\(empty) holds no prompts")) { try readPromptFile(empty) }
            #expect(throws: DistillationError("cannot read prompts file \(missing)")) { try readPromptFile(missing) }
            #expect(try readPromptFile(dir.appendingPathComponent("train.jsonl").path)
                    == ["the cat sat", "on the mat", "a b c d", "hello there", "one two three", "zzz"])
        }
    }

    @Test func chatNeedsATokenizerWithChatML() throws {
        try Self.withScratch { dir in
            var settings = Self.settings(.layers, in: dir)
            settings.chat = true
            #expect(throws: DistillationError("--chat: this model's tokenizer has no ChatML tokens (<|im_start|>, <|im_end|>)")) {
                try Self.distill(settings)
            }
        }
    }

    @Test func settingsThatContradictEachOtherAreRefused() throws {
        var settings = DistillationSettings(prompts: "p", out: URL(fileURLWithPath: "/nonexistent"))
        settings.draftKind = .eagle
        settings.draft = "some/draft"
        #expect(throws: DistillationError("--draft-kind eagle starts from target layers; --draft and --draft-config are for --draft-kind layers")) {
            try settings.validate()
        }
        settings = DistillationSettings(prompts: "p", out: URL(fileURLWithPath: "/nonexistent"))
        settings.answersPerPrompt = 3
        #expect(throws: DistillationError("--answers-per-prompt 3 needs --temperature above 0: greedy answers to one prompt are all the same")) {
            try settings.validate()
        }
        settings.answersPerPrompt = 0
        settings.temperature = 1
        #expect(throws: DistillationError("--answers-per-prompt must be at least 1 (got 0)")) { try settings.validate() }
        settings = DistillationSettings(prompts: "p", out: URL(fileURLWithPath: "/nonexistent"))
        settings.draftKind = .eagle
        settings.keptGuessShare = 1.5
        #expect(throws: DistillationError("--kept-guess-share is a share of entries, in 0...1 (got 1.5)")) { try settings.validate() }
        settings.keptGuessShare = .nan
        #expect(throws: DistillationError("--kept-guess-share is a share of entries, in 0...1 (got nan)")) { try settings.validate() }
        settings.keptGuessShare = 0.4
        settings.draftKind = .layers
        #expect(throws: DistillationError("--kept-guess-share is for --draft-kind eagle: a layer draft reads no features")) {
            try settings.validate()
        }
        settings = DistillationSettings(prompts: "p", out: URL(fileURLWithPath: "/nonexistent"))
        settings.draftProducts = .bfloat16
        #expect(throws: DistillationError("--draft-products bfloat16 is for --draft-kind eagle")) { try settings.validate() }
        settings.draftKind = .eagle
        try settings.validate()
        settings = DistillationSettings(prompts: "p", out: URL(fileURLWithPath: "/nonexistent"))
        settings.answerBatch = 0
        #expect(throws: DistillationError("--batch-size, --answer-batch, --epochs, --minutes and --eval-every must be positive")) {
            try settings.validate()
        }
    }

    /// The target has layers 0 and 1; an EAGLE draft needs at least one of them.
    @Test(arguments: [(DraftKind.layers, [0, 2]), (.layers, [-1]), (.eagle, [2]), (.eagle, [])])
    func layersOutsideTheTargetAreRefused(kind: DraftKind, layers: [Int]) throws {
        try Self.withScratch { dir in
            var settings = Self.settings(kind, in: dir)
            settings.layers = layers
            #expect(throws: DistillationError("--layers must be in 0..<2")) { try Self.distill(settings) }
            #expect(!FileManager.default.fileExists(atPath: settings.out.appendingPathComponent("summary.json").path))
        }
    }

    @Test(arguments: DraftKind.allCases)
    func trainingLowersTheLossOnTheAnswersItLearns(kind: DraftKind) throws {
        // Held out = trained on, so the held-out figures say how well the draft learnt the
        // target's answers: from its state before training (the log's first row) to its last.
        try Self.withScratch { dir in
            var settings = Self.settings(kind, in: dir)
            settings.heldout = settings.prompts
            settings.epochs = 10
            settings.learningRate = 3e-3
            settings.measure = false
            let summary = try Self.distill(settings)
            let log = try String(contentsOf: settings.out.appendingPathComponent("training_log.csv"), encoding: .utf8)
            let before = log.split(separator: "\n")[1].split(separator: ",", omittingEmptySubsequences: false)
            let (lossBefore, acceptanceBefore) = (try #require(Float(before[9])), try #require(Float(before[10])))
            #expect(summary.steps == 30)
            #expect(summary.heldoutLoss < 0.5 * lossBefore, "held-out loss \(lossBefore) -> \(summary.heldoutLoss)")
            // The log rounds to 5 decimals; the margin is well below the gain (≥ 0.026 here).
            #expect(summary.heldoutExpectedAcceptance > acceptanceBefore + 0.01,
                    "expected acceptance \(acceptanceBefore) -> \(summary.heldoutExpectedAcceptance)")
        }
    }
}

/// What a distillation showed, kept for the test to read.
final class Transcript: @unchecked Sendable {
    private let lock = NSLock()
    private var progressText = "", resultLines: [String] = []

    var progress: String { lock.withLock { progressText } }
    var results: [String] { lock.withLock { resultLines } }

    var console: DistillationConsole {
        DistillationConsole(progress: { text in self.lock.withLock { self.progressText += text } },
                            result: { line in self.lock.withLock { self.resultLines.append(line) } })
    }
}

/// The learning rate's decay fitted to the time budget.
@Suite struct DistillationBudgetTests {
    @Test func theDecayEndsWhenTheBudgetRunsOut() throws {
        var s = DistillationSettings(prompts: "p", out: URL(fileURLWithPath: "/tmp/o"))
        s.learningRate = 1e-3
        s.minutes = 10
        s.epochs = 12
        s.batchSize = 8
        let (total, planned) = s.schedule(examples: 1900)
        #expect(total == 12 * 238)
        // 100 steps in the first 60 s: the remaining 540 s hold 900 more at that pace.
        let fitted = s.scheduleWithinBudget(planned, budget: s.trainingSeconds(afterAnswering: 0), stepsDone: 100, elapsed: 60)
        #expect(fitted.totalSteps == 1000)
        #expect(abs(fitted.rate(at: 1000) - 1e-4) < 1e-9)
        // A pace that finishes the epochs within the budget keeps the plan.
        #expect(s.scheduleWithinBudget(planned, budget: s.trainingSeconds(afterAnswering: 0), stepsDone: 100, elapsed: 1) == planned)
        // Too few steps to know a pace: the plan.
        #expect(s.scheduleWithinBudget(planned, budget: s.trainingSeconds(afterAnswering: 0), stepsDone: 5, elapsed: 60) == planned)
        // Over budget: the decay ends at the next step.
        #expect(s.scheduleWithinBudget(planned, budget: s.trainingSeconds(afterAnswering: 0), stepsDone: 700, elapsed: 601).totalSteps == 701)
    }

    @Test func aTotalBudgetLeavesTrainingWhatTheAnswersDidNotUse() throws {
        var s = DistillationSettings(prompts: "p", out: URL(fileURLWithPath: "/tmp/o"))
        s.minutes = 13
        #expect(s.trainingSeconds(afterAnswering: 1000) == 780)
        s.totalMinutes = 30
        #expect(s.trainingSeconds(afterAnswering: 1000) == 780)   // --minutes is less
        #expect(s.trainingSeconds(afterAnswering: 1100) == 700)
        #expect(s.trainingSeconds(afterAnswering: 2000) == 0)
        s.totalMinutes = -1
        #expect(throws: DistillationError("--total-minutes must be positive (got -1.0)")) { try s.validate() }
    }

    @Test func theTrainingAnswersStopAtTheirShareOfATotalBudget() throws {
        var s = DistillationSettings(prompts: "p", out: URL(fileURLWithPath: "/tmp/o"))
        let start = Date(timeIntervalSince1970: 1_000)
        #expect(s.answerDeadline(from: start) == nil)  // no total budget: every answer
        s.totalMinutes = 30
        #expect(s.answerDeadline(from: start) == start.addingTimeInterval(900))  // half by default
        s.answerShare = 0.25
        #expect(s.answerDeadline(from: start) == start.addingTimeInterval(450))
        try s.validate()
        for bad in [0, -0.5, 1.5, .nan] {
            s.answerShare = bad
            #expect(throws: DistillationError("--answer-share is a share of --total-minutes, in (0, 1] (got \(bad))")) { try s.validate() }
        }
        s.answerShare = 0.5
        s.totalMinutes = nil
        #expect(throws: DistillationError("--answer-share is a share of --total-minutes, which is not set")) { try s.validate() }
    }
}

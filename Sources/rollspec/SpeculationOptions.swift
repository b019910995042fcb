import ArgumentParser
import Foundation
import RollspecDistillation
import RollspecModel
import RollspecSpeculation

extension SpeculationMode: ExpressibleByArgument {}
extension WeightPrecision: ExpressibleByArgument {}

/// How to speculate: which proposers, which draft, how far.
struct SpeculationOptions: ParsableArguments {
    @Option(name: .long, help: "Proposer: none, draft, suffix or auto (the controller picks per step).")
    var speculate: SpeculationMode = .none

    @Option(name: .long, help: "Draft model (HF directory or .gguf) sharing the target's vocabulary.")
    var draft: String?

    @Option(name: .long, help: "Longest draft per step.")
    var draftMax: Int = 5

    @Flag(name: .long, help: "Ignore a draft's draft_vocabulary.json and let it propose any token.")
    var fullDraftVocabulary = false

    @Option(name: .long, help: "Stop drafting when the draft's probability of its pick falls below this.")
    var draftConfidence: Float = 0

    @Option(name: .long, help: "Further candidates verified beside the draft's tokens, per drafted position (e.g. 3,2: three in place of the first token, two of the second): the draft's runner-ups when greedy, draws without replacement from it at T > 0 (lossless by recursive rejection sampling).")
    var draftAlternatives: String = ""

    @Option(name: .long, help: "A token tree of this many verified rows shaped by the draft's probabilities, at any temperature (the chain grows while it is likely accepted, the rest go to the candidates likeliest to be needed); replaces --draft-alternatives. 0: off.")
    var draftTreeRows: Int = 0

    @Option(name: .long, help: "With --draft-tree-rows: extend the chain while the draft's probability that all of it is accepted is at least this.")
    var draftTreeExtend: Float = 0.35

    @Flag(name: .long, help: "Always draft --draft-max tokens with the first proposer (no cost model, no guardrail).")
    var fixedLookahead = false

    @Option(name: .long, help: "How the draft reads its matrices: bfloat16 (rounded copies, half the memory traffic; the target still checks every token, so outputs do not change) or float32.")
    var draftPrecision: WeightPrecision = .bfloat16

    func validate() throws {
        if (speculate == .draft) && draft == nil { throw ValidationError("--speculate draft needs --draft PATH") }
        if draftMax < 1 || draftMax > 32 { throw ValidationError("--draft-max must be in 1...32") }
        if draftTreeRows != 0 && !(2...32).contains(draftTreeRows) { throw ValidationError("--draft-tree-rows must be 0 (off) or in 2...32") }
        if !(0...1).contains(draftTreeExtend) { throw ValidationError("--draft-tree-extend must be a probability in 0...1") }
        guard let counts = try? alternativeCounts, counts.allSatisfy({ (0...8).contains($0) }) else {
            throw ValidationError("--draft-alternatives must be a comma-separated list of counts in 0...8")
        }
    }

    /// The token tree the options ask for.
    var treeShape: DraftTreeShape {
        if draftTreeRows > 0 { return .shaped(rows: draftTreeRows, extendThreshold: draftTreeExtend) }
        let counts = (try? alternativeCounts) ?? []
        return counts.isEmpty ? .chain : .fixed(counts)
    }

    /// `--draft-alternatives` as counts per drafted position.
    var alternativeCounts: [Int] {
        get throws { draftAlternatives.isEmpty ? [] : try parseTokenList(draftAlternatives) }
    }

    /// The draft model, checked against the target's vocabulary: a token-level Llama, or a
    /// feature-level (EAGLE) draft when its config says so, loaded onto the target's embedding
    /// and head.
    func loadDraft(threads: Int?, target: LlamaModel) throws -> LoadedDraft? {
        guard let draft, speculate == .draft || speculate == .auto else { return nil }
        let vocabulary = try draftVocabulary(draft)
        if FeatureDraftWeights.isFeatureDraft(path: draft) {
            let weights = try FeatureDraftWeights.load(directory: URL(fileURLWithPath: draft), target: target.weights)
            return .features(FeatureDraftModel(weights: weights, outputVocabulary: vocabulary, precision: draftPrecision))
        }
        let weights = try ModelLoader.loadWeights(path: draft)
        guard weights.config.vocabSize == target.config.vocabSize else {
            throw ValidationError("draft \(draft) has a vocabulary of \(weights.config.vocabSize) tokens, the target \(target.config.vocabSize): they must share one")
        }
        return .tokens(LlamaModel(weights: weights, outputVocabulary: vocabulary, precision: draftPrecision))
    }

    /// A distilled draft may come with the frequent tokens its head is restricted to.
    private func draftVocabulary(_ draft: String) throws -> [Int]? {
        let vocabularyFile = URL(fileURLWithPath: draft).appendingPathComponent(DraftVocabulary.fileName)
        var vocabulary: [Int]?
        if fullDraftVocabulary == false, let data = try? Data(contentsOf: vocabularyFile) {
            guard let ids = try? JSONDecoder().decode([Int].self, from: data) else {
                throw ValidationError("\(vocabularyFile.path) is not a JSON list of token ids")
            }
            vocabulary = ids
        }
        return vocabulary
    }

    /// A speculative generator for `target`; `suffixIndex` is shared across its sequences.
    func makeGenerator(target: LlamaModel, draft: LoadedDraft?, suffixIndex: SuffixIndex) -> SpeculativeGenerator {
        let mode = speculate, confidence = draftConfidence, tree = treeShape
        var controller = SpeculationController(maxLookahead: draftMax)
        controller.isFixed = fixedLookahead
        return SpeculativeGenerator(model: target, controller: controller) {
            var proposers: [Proposer] = []
            if mode == .draft || mode == .auto {
                switch draft {
                case .tokens(let model): proposers.append(DraftModelProposer(model: model, confidenceThreshold: confidence, tree: tree))
                case .features(let model): proposers.append(FeatureDraftProposer(model: model, tree: tree))
                case nil: break
                }
            }
            if mode == .suffix || mode == .auto { proposers.append(SuffixProposer(global: suffixIndex)) }
            return proposers
        }
    }
}

/// A draft loaded for speculation.
enum LoadedDraft {
    /// A small Llama over tokens.
    case tokens(LlamaModel)
    /// A feature-level draft reading the target's hidden states.
    case features(FeatureDraftModel)
}

/// One line per proposer: drafts, acceptance rate, mean acceptance length, per position.
func acceptanceSummary(_ report: SpeculationReport) -> String {
    var lines: [String] = []
    func line(_ name: String, _ s: SpecDecodeStats) -> String {
        let positions = s.perPositionAcceptance.prefix(8).map { String(format: "%.2f", $0) }.joined(separator: " ")
        var text = String(format: "%@: %d drafts, %d drafted, %d accepted, acceptance rate %.3f, mean acceptance length %.2f, per position [%@]",
                          name, s.drafts, s.draftTokens, s.acceptedTokens, s.acceptanceRate, s.meanAcceptanceLength, positions)
        if !s.alternativeAcceptedAtPosition.isEmpty {
            let beside = s.perPositionAlternativeAcceptance.prefix(8).map { String(format: "%.2f", $0) }.joined(separator: " ")
            text += ", of them beside the chain [\(beside)]"
        }
        return text
    }
    lines.append(line("speculation", report.overall))
    for (kind, s) in report.byProposer.sorted(by: { $0.key < $1.key }) where kind != .plain {
        lines.append("  " + line(kind.rawValue, s))
    }
    return lines.joined(separator: "\n")
}

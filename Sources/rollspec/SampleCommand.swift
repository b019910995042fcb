import ArgumentParser
import Foundation
import RollspecModel
import RollspecSpeculation

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Draw N independent samples of one prompt (a GRPO group).",
        discussion: """
            Sample i uses seed S + i. The samples run as one batch and share the prompt's \
            prefill. With --json, prints one JSON object per line: \
            {"index", "tokens", "logprobs", "finish_reason"}; logprobs are of the distribution \
            each token was drawn from (after temperature, top-k, top-p).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var speculation: SpeculationOptions

    @Option(name: .long, help: "Prompt as comma-separated token ids.")
    var promptTokens: String?

    @Option(name: .long, help: "Prompt text (tokenized with the model's tokenizer).")
    var prompt: String?

    @Option(name: .customLong("n"), help: "Number of samples.")
    var count: Int = 4

    @Option(name: .long, help: "The most tokens per sample.")
    var maxTokens: Int = 64

    @Flag(name: .long, help: "One JSON object per sample and line.")
    var json = false

    func validate() throws {
        if (prompt == nil) == (promptTokens == nil) { throw ValidationError("give exactly one of --prompt or --prompt-tokens") }
        if count < 1 { throw ValidationError("--n must be at least 1") }
    }

    func run() throws {
        let loaded = try LoadedModel.load(modelOptions)
        let ids = try promptTokens.map(parseTokenList) ?? loaded.tokenizer.encode(prompt!)
        let draft = try speculation.loadDraft(threads: modelOptions.threads, target: loaded.model)
        let generator = speculation.makeGenerator(target: loaded.model, draft: draft, suffixIndex: SuffixIndex())
        let requests = (0..<count).map { i -> GenerationRequest in
            var p = sampling.parameters
            p.seed = sampling.seed &+ UInt64(i)
            return GenerationRequest(prompt: ids, maxTokens: maxTokens, sampling: p,
                                     stopTokens: loaded.tokenizer.stopTokenIds)
        }
        let outputs = try generator.generateBatch(requests)
        struct Line: Encodable {
            var index: Int; var tokens: [Int]; var logprobs: [Float]; var finish_reason: String
        }
        let encoder = JSONEncoder()
        for (i, out) in outputs.enumerated() {
            if json {
                let line = Line(index: i, tokens: out.result.tokens, logprobs: out.result.logprobs,
                                finish_reason: out.result.finishReason.rawValue)
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
            } else {
                print("[\(i)] \(loaded.tokenizer.decode(out.result.tokens).debugDescription)")
            }
        }
        if speculation.speculate != .none { printError(acceptanceSummary(generator.lastReport)) }
    }
}

import ArgumentParser
import Foundation
import RollspecModel
import RollspecSpeculation

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt, streaming it as it is sampled.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var speculation: SpeculationOptions

    @Option(name: .long, help: "The prompt text.")
    var prompt: String

    @Flag(name: .long, help: "Wrap the prompt as a user turn of the model's chat template (ChatML).")
    var chat = false

    @Option(name: .long, help: "The most tokens to generate.")
    var maxTokens: Int = 128

    func run() throws {
        let loaded = try LoadedModel.load(modelOptions)
        let text = try loaded.promptText(prompt, chat: chat)
        let promptTokens = loaded.tokenizer.encode(text)
        var request = GenerationRequest(prompt: promptTokens, maxTokens: maxTokens, sampling: sampling.parameters)
        request.stopTokens = loaded.tokenizer.stopTokenIds
        var stream = StreamingDecoder(tokenizer: loaded.tokenizer)
        let out = FileHandle.standardOutput
        let onToken = { (sampled: SampledToken) in
            guard !request.stopTokens.contains(sampled.token) else { return }
            let piece = stream.append(sampled.token)
            if !piece.isEmpty { out.write(Data(piece.utf8)) }
        }
        var speculative: SpeculativeGenerator?
        let result: GenerationResult
        if speculation.speculate == .none {
            result = try Generator(model: loaded.model).generate(request, onToken: onToken)
        } else {
            let draft = try speculation.loadDraft(threads: modelOptions.threads, target: loaded.model)
            speculative = speculation.makeGenerator(target: loaded.model, draft: draft, suffixIndex: SuffixIndex())
            result = try speculative!.generate(request, onToken: onToken)
        }
        out.write(Data((stream.finish() + "\n").utf8))
        let generated = result.tokens.count
        let decodeRate = generated > 1 ? Double(generated - 1) / result.decodeSeconds : 0
        printError(String(
            format: "prompt: %d tokens in %.3f s (%.1f tokens/s); generated: %d tokens, %.2f tokens/s; finish: %@",
            promptTokens.count, result.prefillSeconds, Double(promptTokens.count) / result.prefillSeconds,
            generated, decodeRate, result.finishReason.rawValue))
        if let speculative { printError(acceptanceSummary(speculative.lastReport)) }
    }
}

import Foundation
import RollspecDistillation
import RollspecKernels
import RollspecModel

/// A model and its tokenizer, loaded from a path the user gave.
struct LoadedModel {
    var model: LlamaModel
    var tokenizer: any Tokenizer

    /// Loads weights and tokenizer; applies `--threads` first so loading uses them too.
    static func load(_ options: ModelOptions) throws -> LoadedModel {
        setKernelThreads(options.threads ?? 0)
        let loaded = try ModelLoader.load(path: options.model)
        let tokenizer = try loadTokenizer(modelPath: options.model, ggufMetadata: loaded.ggufMetadata)
        return LoadedModel(model: LlamaModel(weights: loaded.weights, precision: options.precision), tokenizer: tokenizer)
    }

    /// The prompt as the model should see it: a ChatML user turn when `chat` is set, as
    /// `distill` showed its target the prompts a draft learnt from.
    func promptText(_ text: String, chat: Bool) throws -> String {
        chat ? try chatPrompt(text, tokenizer: tokenizer) : text
    }
}


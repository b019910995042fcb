import ArgumentParser
import Foundation
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
        return LoadedModel(model: LlamaModel(weights: loaded.weights), tokenizer: tokenizer)
    }

    /// The prompt as the model should see it: a ChatML user turn when `chat` is set.
    func promptText(_ text: String, chat: Bool) throws -> String {
        guard chat else { return text }
        guard let template = tokenizer.chatTemplate ?? (tokenizer.hasChatMLTokens ? ChatMLTemplate.smolLM2 : nil) else {
            throw ValidationError("--chat: this model's tokenizer has no ChatML tokens (<|im_start|>, <|im_end|>)")
        }
        return template.render([ChatMessage(role: "user", content: text)])
    }
}


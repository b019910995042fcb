import Foundation
import RollspecModel

/// Reads a prompts file: one prompt per line, plain text or `{"prompt": "..."}`; empty lines
/// are skipped.
/// - Throws: `DistillationError` when the file cannot be read, a `{`-line is not
///   `{"prompt": "..."}` (naming the file and the line, counted as an editor counts them, empty
///   lines included), or the file holds no prompts.
public func readPromptFile(_ path: String) throws -> [String] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw DistillationError("cannot read prompts file \(path)")
    }
    var out: [String] = []
    for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
        if line.hasPrefix("{") {
            struct P: Decodable { var prompt: String }
            guard let p = try? JSONDecoder().decode(P.self, from: Data(line.utf8)) else {
                throw DistillationError("\(path):\(n + 1): expected {\"prompt\": \"...\"}")
            }
            out.append(p.prompt)
        } else {
            out.append(String(line))
        }
    }
    guard !out.isEmpty else { throw DistillationError("\(path) holds no prompts") }
    return out
}

/// `text` as a user turn of the tokenizer's chat template, or of ChatML as SmolLM2 writes it
/// when the tokenizer has the ChatML tokens but no template: how `--chat` prompts are shown to
/// a model, by `distill` and the commands that measure its draft alike.
/// - Throws: `DistillationError` when the tokenizer has no ChatML tokens.
public func chatPrompt(_ text: String, tokenizer: any Tokenizer) throws -> String {
    guard let template = tokenizer.chatTemplate ?? (tokenizer.hasChatMLTokens ? ChatMLTemplate.smolLM2 : nil) else {
        throw DistillationError("--chat: this model's tokenizer has no ChatML tokens (<|im_start|>, <|im_end|>)")
    }
    return template.render([ChatMessage(role: "user", content: text)])
}

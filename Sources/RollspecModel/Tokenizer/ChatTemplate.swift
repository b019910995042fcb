import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable, Codable {
    /// `system`, `user` or `assistant`.
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// The ChatML prompt format (`<|im_start|>role\ncontent<|im_end|>\n` per message), as SmolLM2
/// and Qwen2 use it.
///
/// Renders what the models' Jinja `chat_template` renders, without a Jinja engine: when the
/// first message is not a system message, the template's default system prompt (if it has one)
/// goes first; with `addGenerationPrompt` the string ends in `<|im_start|>assistant\n`.
public struct ChatMLTemplate: Sendable, Equatable {
    public static let imStart = "<|im_start|>"
    public static let imEnd = "<|im_end|>"

    /// SmolLM2-Instruct's template.
    public static let smolLM2 = ChatMLTemplate(
        defaultSystemPrompt: "You are a helpful AI assistant named SmolLM, trained by Hugging Face")

    /// System prompt inserted when the conversation does not start with one; nil for none.
    public var defaultSystemPrompt: String?

    public init(defaultSystemPrompt: String?) {
        self.defaultSystemPrompt = defaultSystemPrompt
    }

    /// Reads a Jinja chat template: nil unless it is ChatML. The default system prompt is the
    /// first plain literal in `'<|im_start|>system\n…<|im_end|>'`, if the template has one.
    public init?(jinjaSource: String) {
        guard jinjaSource.contains(Self.imStart) else { return nil }
        var prompt: String?
        // Templates write the newline either as itself or as a Jinja `\n` escape.
        search: for marker in [Self.imStart + "system\n", Self.imStart + "system\\n"] {
            var from = jinjaSource.startIndex
            while let start = jinjaSource.range(of: marker, range: from..<jinjaSource.endIndex),
                  let end = jinjaSource.range(of: Self.imEnd, range: start.upperBound..<jinjaSource.endIndex) {
                let literal = jinjaSource[start.upperBound..<end.lowerBound]
                // A quote or a Jinja expression means the text is computed (the user's system message).
                if !literal.contains("'") && !literal.contains("\"") && !literal.contains("{") {
                    prompt = String(literal).replacingOccurrences(of: "\\n", with: "\n")
                    break search
                }
                from = start.upperBound
            }
        }
        self.init(defaultSystemPrompt: prompt)
    }

    /// The prompt for `messages`.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        var out = ""
        if let defaultSystemPrompt, let first = messages.first, first.role != "system" {
            out += Self.imStart + "system\n" + defaultSystemPrompt + Self.imEnd + "\n"
        }
        for m in messages {
            out += Self.imStart + m.role + "\n" + m.content + Self.imEnd + "\n"
        }
        if addGenerationPrompt { out += Self.imStart + "assistant\n" }
        return out
    }

    /// The prompt for `(role, content)` pairs.
    public func render(_ messages: [(role: String, content: String)], addGenerationPrompt: Bool = true) -> String {
        render(messages.map { ChatMessage(role: $0.role, content: $0.content) }, addGenerationPrompt: addGenerationPrompt)
    }
}

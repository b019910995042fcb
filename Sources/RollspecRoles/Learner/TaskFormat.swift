import Foundation
import RollspecClient
import RollspecModel

/// How the learner writes a task's problems for its policy and reads the answers back.
///
/// A built-in byte-level policy reads the terse prompt, one byte per token, and its answer ends
/// at a newline. A checkpoint reads the question in words, encoded with its own tokenizer (the
/// HF `tokenizer.json` or the GGUF's vocabulary), as a user turn of its chat template when it has
/// one (`learner.chat`); its answer ends at the tokenizer's end-of-turn or end-of-sequence
/// tokens and is decoded with the same tokenizer before it is scored.
public struct TaskFormat: Sendable {
    public let task: any VerifiableTask
    public let tokenizer: any Tokenizer
    /// False for the byte-level policies.
    public let isText: Bool
    public let template: ChatMLTemplate?
    /// Token ids that end a response.
    public let stopTokens: [Int]

    /// The byte-level format of the built-in policies.
    public init(byteLevel task: any VerifiableTask) {
        self.task = task
        tokenizer = ByteTokenizer()
        isText = false
        template = nil
        stopTokens = task.stopTokens
    }

    /// The text format of a policy with a tokenizer.
    /// - Throws: `JobConfigError` when `chat` is true without a template, or the tokenizer names
    ///   no token that ends a response.
    public init(text task: any VerifiableTask, tokenizer: any Tokenizer, chat: ChatSetting) throws {
        self.task = task
        self.tokenizer = tokenizer
        isText = true
        switch chat {
        case .false: template = nil
        case .auto: template = tokenizer.chatTemplate
        case .true:
            guard let t = tokenizer.chatTemplate else {
                throw JobConfigError.invalid(key: "learner.chat", reason: "is true, but the policy's tokenizer has no chat template (ChatML)")
            }
            template = t
        }
        stopTokens = tokenizer.stopTokenIds.sorted()
        guard !stopTokens.isEmpty else {
            throw JobConfigError.invalid(key: "models.policy", reason: "the policy's tokenizer names no end-of-sequence or end-of-turn token, so no answer would end")
        }
    }

    /// The format for `task` on `policy`.
    /// - Parameter ggufMetadata: the policy's GGUF metadata when it is a GGUF file already read.
    /// - Throws: `JobConfigError` naming `models.policy` when a checkpoint has no tokenizer.
    public static func forPolicy(_ policy: PolicySource, task: any VerifiableTask, chat: ChatSetting,
                                 ggufMetadata: [String: GGUFValue]? = nil) throws -> TaskFormat {
        guard case .checkpoint(let path) = policy else { return TaskFormat(byteLevel: task) }
        let tokenizer: any Tokenizer
        do {
            tokenizer = try loadTokenizer(modelPath: path, ggufMetadata: ggufMetadata)
        } catch {
            throw JobConfigError.invalid(
                key: "models.policy",
                reason: "the learner writes its task's questions with the policy's own tokenizer, and \(path) has none usable: \(error)")
        }
        return try TaskFormat(text: task, tokenizer: tokenizer, chat: chat)
    }

    /// The prompt's token ids for `problem`.
    public func promptTokens(_ problem: TaskProblem) -> [Int] {
        guard isText else { return tokenizer.encode(problem.prompt) }
        let text = template?.render([ChatMessage(role: "user", content: problem.question)]) ?? problem.question
        return tokenizer.encode(text, addingBos: tokenizer.addsBosToken)
    }

    /// The text of a response (special tokens left out in text form).
    public func responseText(_ tokens: [Int]) -> String {
        isText ? tokenizer.decode(tokens, skipSpecialTokens: true) : tokenizer.decode(tokens)
    }

    /// The reward of a response's tokens for `problem`.
    public func reward(_ tokens: [Int], for problem: TaskProblem) -> Double {
        let text = responseText(tokens)
        return isText ? task.textReward(response: text, for: problem) : task.reward(response: text, for: problem)
    }

    /// The rollout budget: a byte-level answer needs only a few tokens more than a right one,
    /// so `configured` is capped there; text answers (working shown) get all of `configured`.
    public func maxTokens(configured: Int) -> Int {
        isText ? configured : min(configured, task.maxAnswerTokens + 4)
    }

    /// A supervised warm-up example: the prompt's tokens and a right completion's, stop included.
    public func demonstration(_ problem: TaskProblem) -> (prompt: [Int], completion: [Int]) {
        let prompt = promptTokens(problem)
        guard isText else { return (prompt, tokenizer.encode(task.demonstration(for: problem))) }
        return (prompt, tokenizer.encode(task.textDemonstration(for: problem)) + [endOfAnswer])
    }

    /// The token a right text answer ends with: the template's end of turn, else end of sequence.
    var endOfAnswer: Int {
        (template != nil ? tokenizer.tokenId(ChatMLTemplate.imEnd) : nil) ?? tokenizer.eosTokenId ?? stopTokens[0]
    }
}

extension JobConfig {
    /// Checks what the reference learner will need before any role starts: its task (a
    /// dataset is read and every line checked), and for a checkpoint policy a tokenizer to
    /// write the questions with (and a chat template when `learner.chat` is true).
    /// - Throws: `JobConfigError` naming the key, the file and the line at fault.
    public func checkLearnerInputs() throws {
        guard learner.kind == .grpo else { return }
        let task = try TaskRegistry.task(for: learner)
        _ = try TaskFormat.forPolicy(models.policy, task: task, chat: learner.chat)
    }
}

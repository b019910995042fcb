import Foundation

// The closed sets of values the learner section of a job config chooses from. The learner's
// tasks and reward rules behind them live in RollspecRoles (Learner/).

/// The tasks the reference learner knows (`learner.task`).
public enum TaskKind: String, Codable, Sendable, CaseIterable {
    /// `a + b`, a short numeric answer.
    case arithmetic
    /// A few digits in ascending order.
    case sorting
    /// The numbers from A to B: long, predictable answers.
    case counting
    /// A sum of 2 or 3 one-digit terms worked out step by step: long answers whose length varies widely.
    case multistep
    /// Prompts and answers from a JSON-lines file (`learner.dataset`), scored by `learner.reward`.
    case dataset
}

/// How a text response is scored against a task's reference answer: rule-based rewards, as
/// verl's and TRL's reward functions write them. Responses are read leniently (`AnswerText`):
/// what follows the last "Answer:" when there is one, else the whole response.
public enum RewardKind: String, Codable, Sendable, CaseIterable {
    /// The answer equals the reference, ignoring surrounding space, runs of inner space,
    /// surrounding quotes or `**` and a final period.
    case exact
    /// The last number of the answer equals the reference number (within 1e-6 relative);
    /// thousands separators and a sign are read (`-1,234.5`).
    case numeric
    /// The response contains the reference, case-insensitively.
    case contains
    /// The reference is a regular expression (ICU syntax) that must match somewhere in the
    /// response.
    case regex
}

/// Whether the learner wraps questions in the policy's chat template (`learner.chat`).
public enum ChatSetting: String, Codable, Sendable, CaseIterable {
    /// When the policy's tokenizer has a chat template.
    case auto
    case `true`
    case `false`

    /// Reads `auto`, a YAML/JSON boolean, or `"true"` / `"false"`.
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let flag = try? c.decode(Bool.self) {
            self = flag ? .true : .false
            return
        }
        let text = try c.decode(String.self)
        guard let value = ChatSetting(rawValue: text) else {
            throw JobConfigError.invalid(key: "learner.chat", reason: "must be auto, true or false, got \"\(text)\"")
        }
        self = value
    }
}


/// The built-in policies `models.policy` may name instead of a checkpoint path: tiny seeded
/// random Llamas over the byte vocabulary, so that a job runs with nothing to download
/// (RollspecRoles' `BuiltinModels` makes them).
public enum BuiltinPolicy: String, Codable, Sendable, CaseIterable {
    /// 2 layers, width 32.
    case tiny = "builtin"
    /// 4 layers, width 256, ~3.3M parameters: a decode step costs more than the bus around it.
    case small = "builtin-small"
}

/// Where the job's policy comes from (`models.policy`): a built-in model by name, or a
/// checkpoint path (an HF folder with `config.json` + `*.safetensors`, or a `.gguf` file).
/// Written in the config as one string.
public enum PolicySource: Sendable, Equatable, Codable, CustomStringConvertible {
    case builtin(BuiltinPolicy)
    case checkpoint(path: String)

    /// The source a config string names: a built-in name, else a path.
    public init(_ text: String) {
        self = BuiltinPolicy(rawValue: text).map(PolicySource.builtin) ?? .checkpoint(path: text)
    }

    public var description: String {
        switch self {
        case .builtin(let b): b.rawValue
        case .checkpoint(let path): path
        }
    }

    public init(from decoder: Decoder) throws { self.init(try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Where the first draft comes from (`models.draft`). Written in the config as one string:
/// `builtin`, `none` or a checkpoint path.
public enum DraftSource: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The policy's first `trainer.draftLayers` layers.
    case builtin
    /// No draft until the speculator trainer (if any) makes one.
    case none
    /// A token-level draft: an HF folder or a `.gguf` file.
    case checkpoint(path: String)

    public init(_ text: String) {
        switch text {
        case "builtin": self = .builtin
        case "none": self = .none
        default: self = .checkpoint(path: text)
        }
    }

    public var description: String {
        switch self {
        case .builtin: "builtin"
        case .none: "none"
        case .checkpoint(let path): path
        }
    }

    public init(from decoder: Decoder) throws { self.init(try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

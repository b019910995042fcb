import Foundation
import RollspecClient
import RollspecModel

/// One problem of a task: what the policy is asked and what counts as right.
public struct TaskProblem: Sendable, Equatable {
    /// The terse prompt a byte-level policy reads (`"3+4="`, one byte per token).
    public var prompt: String
    /// The question in words, for a policy with a tokenizer of its own (`"What is 3 + 4? …"`).
    public var question: String
    /// The reference answer (without a stop newline).
    public var answer: String

    /// - Parameter question: nil: the same as `prompt`.
    public init(prompt: String, answer: String, question: String? = nil) {
        self.prompt = prompt
        self.answer = answer
        self.question = question ?? prompt
    }
}

/// A task whose answers a program can check: RL with verifiable rewards.
///
/// A task speaks two ways. A byte-level policy (the built-in ones) reads `TaskProblem.prompt`
/// one byte per token and answers `answer` + `stopText` (a newline), scored by `reward`
/// exactly. A policy with a tokenizer of its own reads `question`, in its chat template when it
/// has one, and its answer, which stops at the template's end of turn, is scored leniently by
/// `textReward` (the last number, or what follows "Answer:"). Problems come from a seeded random
/// stream, so a run is reproducible from its seed.
public protocol VerifiableTask: Sendable {
    var kind: TaskKind { get }
    /// Ends every byte-level answer; generation stops at it.
    var stopText: String { get }
    /// Response tokens a right byte-level answer needs, stop included: a byte-level rollout
    /// budget need not exceed it by much.
    var maxAnswerTokens: Int { get }
    /// A fresh problem drawn from `rng`.
    func problem(_ rng: inout RandomSource) -> TaskProblem
    /// The reward of a byte-level `response` (the generated text, stop newline included), in [0, 1].
    func reward(response: String, for problem: TaskProblem) -> Double
    /// The reward of a text `response` (end-of-turn token excluded), in [0, 1].
    func textReward(response: String, for problem: TaskProblem) -> Double
    /// The byte-level completion a supervised warm-up trains on: a right response.
    func demonstration(for problem: TaskProblem) -> String
}

extension VerifiableTask {
    /// The name the config selects the task by.
    public var name: String { kind.rawValue }

    public var stopText: String { "\n" }

    public func demonstration(for problem: TaskProblem) -> String { problem.answer + stopText }

    /// The text completion a supervised warm-up of a text policy trains on.
    public func textDemonstration(for problem: TaskProblem) -> String { "Answer: \(problem.answer)" }

    /// Exact match: 1 when `response` is the reference answer followed by the stop text, else 0
    /// (wrong, padded, unfinished or empty responses all get 0).
    public func exactMatchReward(response: String, for problem: TaskProblem) -> Double {
        response == problem.answer + stopText ? 1 : 0
    }

    public func reward(response: String, for problem: TaskProblem) -> Double {
        exactMatchReward(response: response, for: problem)
    }

    /// The stop text's token ids under the byte tokenizer (a newline is token 10).
    public var stopTokens: [Int] { ByteTokenizer().encode(stopText) }
}

/// The built-in tasks, by kind.
public enum TaskRegistry {
    /// The task of `kind` with its default parameters; nil for `dataset`, which needs a file
    /// (`DatasetTask.load`).
    public static func task(_ kind: TaskKind) -> (any VerifiableTask)? {
        switch kind {
        case .arithmetic: ArithmeticTask()
        case .sorting: SortingTask()
        case .counting: CountingTask()
        case .multistep: MultiStepTask()
        case .dataset: nil
        }
    }

    /// The task a learner config names, loading its dataset when it has one.
    /// - Throws: `JobConfigError` naming the dataset file and line at fault.
    public static func task(for learner: JobConfig.Learner) throws -> any VerifiableTask {
        if let task = task(learner.task) { return task }
        return try DatasetTask.load(path: learner.dataset, reward: learner.reward ?? .exact)
    }
}

import Foundation
import RollspecModel

/// One problem of a task: what the policy is asked and what counts as right.
public struct TaskProblem: Sendable, Equatable {
    /// The prompt text (short; one byte per token with `ByteTokenizer`).
    public var prompt: String
    /// The reference answer, without the stop newline.
    public var answer: String

    public init(prompt: String, answer: String) {
        self.prompt = prompt
        self.answer = answer
    }
}

/// A task whose answers a program can check exactly: RL with verifiable rewards.
///
/// Answers end with `stopText` (a newline), which is also the generation's stop token, so a
/// response is the answer text followed by one newline. Problems are generated from a seeded
/// random stream, so a run is reproducible from its seed.
public protocol VerifiableTask: Sendable {
    /// The name the config selects the task by (`learner.task`).
    var name: String { get }
    /// Ends every answer; generation stops at it.
    var stopText: String { get }
    /// Response tokens a right answer needs, stop included: the rollout budget need not exceed it
    /// by much.
    var maxAnswerTokens: Int { get }
    /// A fresh problem drawn from `rng`.
    func problem(_ rng: inout RandomSource) -> TaskProblem
    /// The reward of `response` (the generated text, stop newline included) for `problem`, in [0, 1].
    func reward(response: String, for problem: TaskProblem) -> Double
    /// The completion a supervised warm-up trains on: a right response.
    func demonstration(for problem: TaskProblem) -> String
}

extension VerifiableTask {
    public var stopText: String { "\n" }

    public func demonstration(for problem: TaskProblem) -> String { problem.answer + stopText }

    /// Exact match: 1 when `response` is the reference answer followed by the stop text, else 0
    /// (wrong, padded, unfinished or empty responses all get 0).
    public func exactMatchReward(response: String, for problem: TaskProblem) -> Double {
        response == problem.answer + stopText ? 1 : 0
    }

    /// The stop text's token ids under the byte tokenizer (a newline is token 10).
    public var stopTokens: [Int] { ByteTokenizer().encode(stopText) }
}

/// The built-in tasks by name.
public enum TaskRegistry {
    public static let names = ["arithmetic", "sorting", "counting"]

    /// The task `name` names, or nil.
    public static func task(named name: String) -> (any VerifiableTask)? {
        switch name {
        case "arithmetic": ArithmeticTask()
        case "sorting": SortingTask()
        case "counting": CountingTask()
        default: nil
        }
    }
}

import Foundation
import RollspecModel

/// `s:DIGITS=` → the digits in ascending order, e.g. prompt `"s:312="`, answer `"123"`.
///
/// `length` digits drawn uniformly from `"0"..."\(maxDigit)"` (repeats allowed); the reward is
/// exact match.
public struct SortingTask: VerifiableTask {
    public var name: String { "sorting" }
    public var length: Int
    public var maxDigit: Int

    public init(length: Int = 3, maxDigit: Int = 5) {
        precondition(length >= 1 && (0...9).contains(maxDigit))
        self.length = length
        self.maxDigit = maxDigit
    }

    public var maxAnswerTokens: Int { length + 1 }

    public func problem(_ rng: inout RandomSource) -> TaskProblem {
        let digits = (0..<length).map { _ in Int(rng.next() % UInt64(maxDigit + 1)) }
        return TaskProblem(prompt: "s:" + digits.map(String.init).joined() + "=",
                           answer: digits.sorted().map(String.init).joined())
    }

    public func reward(response: String, for problem: TaskProblem) -> Double {
        exactMatchReward(response: response, for: problem)
    }
}

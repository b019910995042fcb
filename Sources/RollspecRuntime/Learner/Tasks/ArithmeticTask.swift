import Foundation
import RollspecModel

/// `a+b=` → the decimal sum, e.g. prompt `"3+4="`, answer `"7"`.
///
/// Operands are drawn uniformly from `0...maxOperand`; the reward is exact match.
public struct ArithmeticTask: VerifiableTask {
    public var name: String { "arithmetic" }
    public var maxOperand: Int

    public init(maxOperand: Int = 4) {
        precondition(maxOperand >= 1)
        self.maxOperand = maxOperand
    }

    public var maxAnswerTokens: Int { String(2 * maxOperand).count + 1 }

    public func problem(_ rng: inout RandomSource) -> TaskProblem {
        let a = Int(rng.next() % UInt64(maxOperand + 1)), b = Int(rng.next() % UInt64(maxOperand + 1))
        return TaskProblem(prompt: "\(a)+\(b)=", answer: "\(a + b)")
    }

    public func reward(response: String, for problem: TaskProblem) -> Double {
        exactMatchReward(response: response, for: problem)
    }
}

import Foundation
import RollspecClient
import RollspecModel

/// `a+b=` → the decimal sum, e.g. prompt `"3+4="`, answer `"7"`; in words, "What is 3 + 4? …",
/// scored by the last number of the answer.
///
/// Operands are drawn uniformly from `0...maxOperand`; the byte-level reward is exact match.
public struct ArithmeticTask: VerifiableTask {
    public var kind: TaskKind { .arithmetic }
    public var maxOperand: Int

    public init(maxOperand: Int = 4) {
        precondition(maxOperand >= 1)
        self.maxOperand = maxOperand
    }

    public var maxAnswerTokens: Int { String(2 * maxOperand).count + 1 }

    public func problem(_ rng: inout RandomSource) -> TaskProblem {
        let a = Int(rng.next() % UInt64(maxOperand + 1)), b = Int(rng.next() % UInt64(maxOperand + 1))
        return TaskProblem(prompt: "\(a)+\(b)=", answer: "\(a + b)",
                           question: "What is \(a) + \(b)? Reply with \"Answer:\" followed by the number.")
    }

    public func textReward(response: String, for problem: TaskProblem) -> Double {
        RewardKind.numeric.score(response: response, reference: problem.answer)
    }
}

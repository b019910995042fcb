import Foundation
import RollspecClient
import RollspecModel

/// A sum of 2 to `maxTerms` terms (`7+5-8=` → `"4"`), asked in words with the working
/// shown: "Compute 7 + 5 - 8. Work it out one step at a time, …".
///
/// This is the long-tail task: the policy writes its working before the answer, and how much it
/// writes varies widely with the number of terms and from sample to sample, as reasoning
/// rollouts do (a few long answers hold up every RL step; TLT, DAS). That tail is where
/// speculation pays. Operands are in `1...maxOperand`; after the first, each is added or
/// subtracted with equal chance. The text reward is the last number of the answer.
public struct MultiStepTask: VerifiableTask {
    public var kind: TaskKind { .multistep }
    public var maxTerms: Int
    public var maxOperand: Int

    public init(maxTerms: Int = 3, maxOperand: Int = 9) {
        precondition(maxTerms >= 2 && maxOperand >= 1)
        self.maxTerms = maxTerms
        self.maxOperand = maxOperand
    }

    /// A byte-level policy answers with the result only.
    public var maxAnswerTokens: Int { String(maxTerms * maxOperand).count + 2 }

    public func problem(_ rng: inout RandomSource) -> TaskProblem {
        let terms = 2 + Int(rng.next() % UInt64(maxTerms - 1))
        var total = 0, terse = "", words = ""
        for i in 0..<terms {
            let x = 1 + Int(rng.next() % UInt64(maxOperand))
            let minus = i > 0 && rng.next() % 2 == 1
            total += minus ? -x : x
            terse += (i == 0 ? "" : minus ? "-" : "+") + String(x)
            words += (i == 0 ? "" : minus ? " - " : " + ") + String(x)
        }
        return TaskProblem(
            prompt: terse + "=", answer: String(total),
            question: "Compute \(words). Work it out one step at a time, then write \"Answer:\" followed by the result.")
    }

    public func textReward(response: String, for problem: TaskProblem) -> Double {
        RewardKind.numeric.score(response: response, reference: problem.answer)
    }
}

import Foundation
import RollspecClient
import RollspecModel

/// `c:A-B=` → the numbers from A to B separated by spaces, e.g. prompt `"c:7-12="`, answer
/// `"7 8 9 10 11 12"`; in words, "Count from 7 to 12. …", scored by the numbers of the answer in
/// order.
///
/// Answers are long and predictable — the shape of output where speculative decoding pays
/// (a draft or the suffix index guesses several tokens right in a row). A starts in
/// `0...maxStart`, the count is in `minCount...maxCount`; the byte-level reward is exact match.
public struct CountingTask: VerifiableTask {
    public var kind: TaskKind { .counting }
    public var maxStart: Int
    public var minCount: Int
    public var maxCount: Int

    public init(maxStart: Int = 20, minCount: Int = 4, maxCount: Int = 10) {
        precondition(maxStart >= 0 && minCount >= 1 && maxCount >= minCount)
        self.maxStart = maxStart
        self.minCount = minCount
        self.maxCount = maxCount
    }

    public var maxAnswerTokens: Int {
        (maxStart..<(maxStart + maxCount)).map { String($0).count + 1 }.reduce(0, +)
    }

    public func problem(_ rng: inout RandomSource) -> TaskProblem {
        let a = Int(rng.next() % UInt64(maxStart + 1))
        let count = minCount + Int(rng.next() % UInt64(maxCount - minCount + 1))
        let b = a + count - 1
        return TaskProblem(prompt: "c:\(a)-\(b)=", answer: (a...b).map(String.init).joined(separator: " "),
                           question: "Count from \(a) to \(b). Reply with \"Answer:\" followed by the numbers, separated by spaces.")
    }

    /// 1 when the numbers of the answer, in order, are the count.
    public func textReward(response: String, for problem: TaskProblem) -> Double {
        AnswerText.numbers(in: AnswerText.answer(in: response)) == AnswerText.numbers(in: problem.answer) ? 1 : 0
    }
}

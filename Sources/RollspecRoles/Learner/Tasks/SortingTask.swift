import Foundation
import RollspecClient
import RollspecModel

/// `s:DIGITS=` → the digits in ascending order, e.g. prompt `"s:312="`, answer `"123"`; in
/// words, "Sort these digits from smallest to largest: 3, 1, 2. …", scored by the digits of the
/// answer in order.
///
/// `length` digits drawn uniformly from `"0"..."\(maxDigit)"` (repeats allowed); the byte-level
/// reward is exact match.
public struct SortingTask: VerifiableTask {
    public var kind: TaskKind { .sorting }
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
        return TaskProblem(
            prompt: "s:" + digits.map(String.init).joined() + "=", answer: digits.sorted().map(String.init).joined(),
            question: "Sort these digits from smallest to largest: \(digits.map(String.init).joined(separator: ", ")). "
                + "Reply with \"Answer:\" followed by the sorted digits.")
    }

    /// 1 when the digits of the answer, in order, are the sorted digits (any separators).
    public func textReward(response: String, for problem: TaskProblem) -> Double {
        AnswerText.answer(in: response).filter(\.isASCIIDigit) == problem.answer ? 1 : 0
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

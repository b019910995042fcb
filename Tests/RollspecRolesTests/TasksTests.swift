import Foundation
import RollspecClient
import RollspecModel
import RollspecRoles
import Testing

/// The tasks' rewards on hand-checked responses, and their problems.
@Suite struct TasksTests {
    static let sum = TaskProblem(prompt: "3+4=", answer: "7")
    static let sort = TaskProblem(prompt: "s:312=", answer: "123")

    @Test(arguments: [
        ("7\n", 1.0),      // right, with the stop newline
        ("8\n", 0),        // wrong
        ("7", 0),          // never finished (no newline: the budget ran out)
        ("", 0),           // empty
        ("\n", 0),         // only the stop
        (" 7\n", 0),       // extra text before
        ("7 \n", 0),       // extra text after
        ("07\n", 0),       // not the exact decimal
        ("7\n7", 0),       // text after the stop
    ])
    func arithmeticReward(response: String, expected: Double) {
        #expect(ArithmeticTask().reward(response: response, for: Self.sum) == expected)
    }

    @Test(arguments: [
        ("123\n", 1.0),
        ("321\n", 0),      // not sorted
        ("12\n", 0),       // a digit lost
        ("1123\n", 0),     // a digit added
        ("123", 0),
        ("", 0),
        ("1 2 3\n", 0),
    ])
    func sortingReward(response: String, expected: Double) {
        #expect(SortingTask().reward(response: response, for: Self.sort) == expected)
    }

    @Test func problemsAreSeededAndTheirDemonstrationsEarnFullReward() {
        for task in TaskKind.allCases.compactMap(TaskRegistry.task) {
            var a = RandomSource(seed: 42), b = RandomSource(seed: 42)
            let first = (0..<50).map { _ in task.problem(&a) }
            #expect(first == (0..<50).map { _ in task.problem(&b) }, "\(task.name) is not reproducible from its seed")
            #expect(Set(first.map(\.prompt)).count > 5, "\(task.name) repeats itself")
            for p in first {
                let demo = task.demonstration(for: p)
                #expect(task.reward(response: demo, for: p) == 1)
                // Short prompts and answers (one token per byte), ending at the stop token.
                #expect(p.prompt.utf8.count <= (task.kind == .multistep ? 24 : 8) && ByteTokenizer().encode(demo).count <= task.maxAnswerTokens)
                #expect(ByteTokenizer().encode(demo).last == task.stopTokens.last)
            }
        }
    }

    @Test func arithmeticAndSortingAnswersAreRight() {
        var rng = RandomSource(seed: 9)
        for _ in 0..<100 {
            let p = ArithmeticTask(maxOperand: 9).problem(&rng)
            let operands = p.prompt.dropLast().split(separator: "+").map { Int($0)! }
            #expect(operands.allSatisfy { (0...9).contains($0) } && Int(p.answer) == operands.reduce(0, +))
            let s = SortingTask(length: 4).problem(&rng)
            #expect(s.answer == String(s.prompt.dropFirst(2).dropLast().sorted()))
        }
        #expect(TaskRegistry.task(.dataset) == nil)
    }

    @Test func countingAnswersCountAndOnlyTheExactOneScores() {
        var rng = RandomSource(seed: 5)
        let task = CountingTask()
        for _ in 0..<50 {
            let p = task.problem(&rng)
            let bounds = p.prompt.dropFirst(2).dropLast().split(separator: "-").compactMap { Int($0) }
            let numbers = p.answer.split(separator: " ").compactMap { Int($0) }
            #expect(numbers == Array(bounds[0]...bounds[1]) && (4...10).contains(numbers.count), "\(p)")
            #expect(task.reward(response: p.answer + "\n", for: p) == 1)
            #expect(ByteTokenizer().encode(p.answer + "\n").count <= task.maxAnswerTokens)
        }
        let p = TaskProblem(prompt: "c:7-10=", answer: "7 8 9 10")
        for wrong in ["7 8 9 10", "7 8 9 10 \n", "7 8 9\n", "7 8 9 11\n", "\n", ""] {
            #expect(task.reward(response: wrong, for: p) == 0, "\(wrong)")
        }
        #expect(TaskRegistry.task(.counting)?.name == "counting")
    }
}

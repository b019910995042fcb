import Foundation
import RollspecClient
import RollspecModel
import RollspecRoles
import Testing

/// Tasks as a policy with a tokenizer of its own sees them: rule-based rewards on hand-written
/// responses, dataset files (and every way a line can be wrong), prompts in SmolLM2's real
/// tokenizer and chat template, and the learner's config keys.
@Suite struct TextTasksTests {
    struct Scoring: Sendable, CustomTestStringConvertible {
        var kind: RewardKind, response: String, reference: String, want: Double
        var testDescription: String { "\(kind) \(response.debugDescription) vs \(reference.debugDescription) → \(want)" }
    }

    @Test(arguments: [
        Scoring(kind: .numeric, response: "Answer: 43", reference: "43", want: 1),
        Scoring(kind: .numeric, response: "37 + 7 = 44, 44 - 1 = 43.\nAnswer: 43.", reference: "43", want: 1),
        Scoring(kind: .numeric, response: "First 37 + 7 = 44, then 44 - 1 = 43", reference: "43", want: 1),  // the last number
        Scoring(kind: .numeric, response: "Answer: 43 apples (not 44)", reference: "43", want: 0),           // the last number after "Answer:"
        Scoring(kind: .numeric, response: "answer: 1,234", reference: "1234", want: 1),
        Scoring(kind: .numeric, response: "Answer: -5", reference: "-5", want: 1),
        Scoring(kind: .numeric, response: "Answer: 5", reference: "-5", want: 0),
        Scoring(kind: .numeric, response: "Answer: 2.50", reference: "2.5", want: 1),
        Scoring(kind: .numeric, response: "I do not know", reference: "7", want: 0),
        Scoring(kind: .numeric, response: "Answer: 7\nAnswer: 8", reference: "7", want: 0),             // the last "Answer:" counts
        Scoring(kind: .exact, response: "Answer:  Paris. ", reference: "Paris", want: 1),
        Scoring(kind: .exact, response: "Answer: **Paris**", reference: "Paris", want: 1),
        Scoring(kind: .exact, response: "Paris", reference: "Paris", want: 1),
        Scoring(kind: .exact, response: "Answer: paris", reference: "Paris", want: 0),
        Scoring(kind: .exact, response: "Answer: Paris, France", reference: "Paris", want: 0),
        Scoring(kind: .contains, response: "I think it is PARIS.", reference: "Paris", want: 1),
        Scoring(kind: .contains, response: "Lyon", reference: "Paris", want: 0),
        Scoring(kind: .regex, response: "The result is x = 12", reference: #"x\s*=\s*12\b"#, want: 1),
        Scoring(kind: .regex, response: "The result is x = 123", reference: #"x\s*=\s*12\b"#, want: 0),
    ])
    func rewardRules(_ c: Scoring) {
        #expect(c.kind.score(response: c.response, reference: c.reference) == c.want)
    }

    @Test func builtInTasksScoreTheirTextAnswersLeniently() {
        var rng = RandomSource(seed: 3)
        for task in TaskKind.allCases.compactMap(TaskRegistry.task) {
            for _ in 0..<20 {
                let p = task.problem(&rng)
                #expect(p.question != p.prompt && p.question.contains("Answer:"), "\(task.name): \(p.question)")
                #expect(task.textReward(response: task.textDemonstration(for: p), for: p) == 1, "\(task.name) \(p)")
                #expect(task.textReward(response: "Answer: none", for: p) == 0)
            }
        }
        let sort = TaskProblem(prompt: "s:312=", answer: "123")
        #expect(SortingTask().textReward(response: "Sorted: 1, 2, 3\nAnswer: 1, 2, 3", for: sort) == 1)
        #expect(SortingTask().textReward(response: "Answer: 3, 2, 1", for: sort) == 0)
        let count = TaskProblem(prompt: "c:7-10=", answer: "7 8 9 10")
        #expect(CountingTask().textReward(response: "Answer: 7, 8, 9, 10", for: count) == 1)
        #expect(CountingTask().textReward(response: "Answer: 7, 8, 10", for: count) == 0)
    }

    @Test func multiStepAnswersAreTheirSums() {
        var rng = RandomSource(seed: 11)
        var terms = Set<Int>()
        for _ in 0..<200 {
            let p = MultiStepTask().problem(&rng)
            // The terse prompt evaluates to the answer; the question states the same sum.
            var total = 0, sign = 1, number = 0
            for ch in p.prompt.dropLast() {
                if let d = ch.wholeNumberValue { number = number * 10 + d; continue }
                total += sign * number
                number = 0
                sign = ch == "-" ? -1 : 1
            }
            total += sign * number
            #expect(String(total) == p.answer, "\(p)")
            #expect(p.question.contains(p.prompt.dropLast().replacingOccurrences(of: "+", with: " + ").replacingOccurrences(of: "-", with: " - ")))
            terms.insert(p.prompt.filter { "+-".contains($0) }.count + 1)
        }
        #expect(terms == Set(2...3))
    }

    // MARK: Datasets

    func file(_ lines: [String]) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ds-\(UUID().uuidString).jsonl")
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    @Test func aDatasetIsReadAndScoredByItsRule() throws {
        let path = try file([#"{"prompt": "2+2?", "answer": "4", "source": "x"}"#, "", #"{"prompt": "10-3?", "answer": 7}"#])
        let task = try DatasetTask.load(path: path, reward: .numeric)
        #expect(task.entries == [.init(prompt: "2+2?", answer: "4"), .init(prompt: "10-3?", answer: "7")])
        var rng = RandomSource(seed: 1)
        let drawn = Set((0..<40).map { _ in task.problem(&rng).prompt })
        #expect(drawn == ["2+2?", "10-3?"])
        let p = TaskProblem(prompt: "10-3?", answer: "7")
        #expect(task.textReward(response: "10 - 3 = 7", for: p) == 1)
        #expect(task.textReward(response: "Answer: 6", for: p) == 0)
    }

    @Test(arguments: [
        ([#"{"prompt": "a", "answer": "1"}"#, "not json"], 2, "not a JSON object"),
        ([#"{"prompt": "a"}"#], 1, #"needs "answer""#),
        ([#"{"answer": "1"}"#], 1, #"needs "prompt""#),
        ([#"{"prompt": "a", "answer": true}"#], 1, "must be a string or a number"),
        ([#"{"prompt": 5, "answer": "1"}"#], 1, #""prompt" must be a string"#),
        ([#"{"prompt": "", "answer": "1"}"#], 1, "is empty"),
        ([#"{"prompt": "a", "answer": "one"}"#], 1, "has no number"),
        (["[1, 2]"], 1, "not a JSON object"),
    ])
    func malformedLinesAreRefusedWithFileAndLine(lines: [String], line: Int, reason: String) throws {
        let path = try file(lines)
        do {
            _ = try DatasetTask.load(path: path, reward: .numeric)
            Issue.record("accepted \(lines)")
        } catch let e as JobConfigError {
            #expect(e.key == "learner.dataset")
            #expect("\(e)".contains("\(path) line \(line): "), "\(e)")
            #expect("\(e)".contains(reason), "\(e)")
        }
    }

    @Test func aBadRegexAndAMissingOrEmptyFileAreRefused() throws {
        let regex = try file([#"{"prompt": "a", "answer": "(unclosed"}"#])
        #expect(throws: JobConfigError.self) { try DatasetTask.load(path: regex, reward: .regex) }
        #expect(throws: JobConfigError.self) { try DatasetTask.load(path: "/nonexistent/x.jsonl", reward: .exact) }
        let empty = try file(["", "  "])
        #expect(throws: JobConfigError.self) { try DatasetTask.load(path: empty, reward: .exact) }
    }

    // MARK: Prompts in the policy's tokenizer

    static var smolLM2Tokenizer: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("RollspecModelTests/Resources/tokenizer/smollm2_tokenizer.json").path
    }

    @Test func questionsGoToATextPolicyInItsChatTemplate() throws {
        let tokenizer = try loadTokenizer(modelPath: Self.smolLM2Tokenizer, ggufMetadata: nil)
        let problem = TaskProblem(prompt: "3+4=", answer: "7", question: "What is 3 + 4?")
        let chat = try TaskFormat(text: ArithmeticTask(), tokenizer: tokenizer, chat: .auto)
        let ids = chat.promptTokens(problem)
        let text = tokenizer.decode(ids)
        #expect(text.hasPrefix("<|im_start|>") && text.hasSuffix("<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n<|im_start|>assistant\n"), "\(text)")
        // Special tokens are single ids, not their spelling in pieces.
        #expect(ids.filter { $0 == tokenizer.tokenId("<|im_start|>") }.count >= 2)
        let imEnd = try #require(tokenizer.tokenId("<|im_end|>"))
        #expect(chat.stopTokens.contains(imEnd))
        // The answer is read back with the same tokenizer, the end of turn left out.
        #expect(chat.reward(tokenizer.encode("It is 7. Answer: 7") + [imEnd], for: problem) == 1)
        #expect(chat.reward(tokenizer.encode("Answer: 8") + [imEnd], for: problem) == 0)
        // A warm-up demonstration ends at the end of turn.
        #expect(chat.demonstration(problem).completion.last == imEnd)
        // Without the template: the question alone.
        let plain = try TaskFormat(text: ArithmeticTask(), tokenizer: tokenizer, chat: .false)
        #expect(tokenizer.decode(plain.promptTokens(problem)) == "What is 3 + 4?")
        #expect(plain.maxTokens(configured: 256) == 256)
        // Byte-level policies keep the terse prompt and the short budget.
        let bytes = TaskFormat(byteLevel: ArithmeticTask())
        #expect(bytes.promptTokens(problem) == Array("3+4=".utf8).map(Int.init))
        #expect(bytes.maxTokens(configured: 256) == ArithmeticTask().maxAnswerTokens + 4)
    }

    @Test func aCheckpointWithoutATokenizerIsRefusedBeforeTheJobStarts() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        var config = JobConfig()
        config.models.policy = .checkpoint(path: root.appendingPathComponent("RollspecModelTests/Resources/checkpoints/tiny-f32").path)
        do {
            try config.checkLearnerInputs()
            Issue.record("a policy without a tokenizer was accepted")
        } catch let e as JobConfigError {
            #expect(e.key == "models.policy" && "\(e)".contains("tokenizer"), "\(e)")
        }
        config.learner.kind = .external  // an outside loop writes its own prompts
        try config.checkLearnerInputs()
    }

    // MARK: Config keys

    @Test(arguments: [
        ("learner: {task: dataset}", "learner.dataset", "must name"),
        ("learner: {task: arithmetic, dataset: x.jsonl}", "learner.dataset", "task: dataset"),
        ("learner: {task: arithmetic, reward: numeric}", "learner.reward", "dataset only"),
        ("learner: {task: dataset, dataset: x.jsonl, reward: fuzzy}", "learner.reward", "exact, numeric, contains, regex"),
        ("learner: {task: countdown}", "learner.task", "arithmetic, sorting, counting, multistep, dataset"),
        ("learner: {chat: maybe}", "learner.chat", "auto, true or false"),
    ])
    func learnerKeysAreValidated(yaml: String, key: String, says: String) {
        do {
            _ = try JobConfig.decode(Data(yaml.utf8), yaml: true)
            Issue.record("accepted \(yaml)")
        } catch let e as JobConfigError {
            #expect(e.key == key, "\(e)")
            #expect("\(e)".contains(says), "\(e)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func chatTakesBooleansAndAuto() throws {
        for (yaml, want) in [("true", ChatSetting.true), ("false", .false), ("auto", .auto), ("\"true\"", .true)] {
            #expect(try JobConfig.decode(Data("learner: {chat: \(yaml)}".utf8), yaml: true).learner.chat == want)
        }
    }
}

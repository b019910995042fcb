import Foundation
import RollspecClient
import RollspecModel

/// Prompts and reference answers from a JSON-lines file, one `{"prompt": "...", "answer": "..."}`
/// per line, scored by a rule (`RewardKind`): the dataset convention of verl and TRL. Other keys
/// on a line are ignored; an answer may be a JSON number. Each problem is drawn uniformly from
/// the file with the learner's seeded random stream.
public struct DatasetTask: VerifiableTask {
    public struct Entry: Sendable, Equatable {
        public var prompt: String
        public var answer: String

        public init(prompt: String, answer: String) {
            self.prompt = prompt
            self.answer = answer
        }
    }

    public var kind: TaskKind { .dataset }
    public let path: String
    public let entries: [Entry]
    public let rewardKind: RewardKind
    /// Each entry's answer compiled, for `regex`.
    private let patterns: [String: NSRegularExpression]

    /// - Throws: `JobConfigError.invalid(key: "learner.dataset")` naming the file and the line at fault.
    public static func load(path: String, reward: RewardKind) throws -> DatasetTask {
        func fail(_ reason: String) -> JobConfigError { .invalid(key: "learner.dataset", reason: reason) }
        guard !path.isEmpty else { throw fail("must name a JSON-lines file for learner.task: dataset") }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail("cannot read \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw fail("\(path) is not UTF-8 text") }
        var entries: [Entry] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let place = "\(path) line \(i + 1)"
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            let decoded: Line
            do { decoded = try JSONDecoder().decode(Line.self, from: Data(line.utf8)) } catch {
                throw fail("\(place): \(Line.explain(error))")
            }
            let (prompt, answer) = (decoded.prompt, decoded.answer)
            guard !prompt.isEmpty else { throw fail("\(place): \"prompt\" is empty") }
            if let problem = reward.problem(withReference: answer) { throw fail("\(place): \(problem)") }
            entries.append(Entry(prompt: prompt, answer: answer))
        }
        guard !entries.isEmpty else { throw fail("\(path) holds no lines") }
        return DatasetTask(path: path, entries: entries, rewardKind: reward)
    }

    /// One line of the file.
    private struct Line: Decodable {
        var prompt: String
        var answer: String

        enum CodingKeys: String, CodingKey { case prompt, answer }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            prompt = try c.decode(String.self, forKey: .prompt)
            guard c.contains(.answer) else {
                throw DecodingError.keyNotFound(CodingKeys.answer, .init(codingPath: [], debugDescription: ""))
            }
            if let s = try? c.decode(String.self, forKey: .answer) {
                answer = s
            } else if let n = try? c.decode(Int.self, forKey: .answer) {
                answer = String(n)
            } else if let x = try? c.decode(Double.self, forKey: .answer) {
                answer = String(x)
            } else {
                throw DecodingError.typeMismatch(String.self, .init(codingPath: [CodingKeys.answer], debugDescription: ""))
            }
        }

        static func explain(_ error: Error) -> String {
            switch error {
            case DecodingError.keyNotFound(let key, _): "needs \"\(key.stringValue)\""
            case DecodingError.typeMismatch(_, let ctx) where ctx.codingPath.last?.stringValue == "answer":
                "\"answer\" must be a string or a number"
            case DecodingError.typeMismatch(_, let ctx) where ctx.codingPath.isEmpty:
                "not a JSON object with \"prompt\" and \"answer\""
            case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
                "\"\(ctx.codingPath.last?.stringValue ?? "")\" must be a string"
            default: "not a JSON object with \"prompt\" and \"answer\""
            }
        }
    }

    init(path: String, entries: [Entry], rewardKind: RewardKind) {
        self.path = path
        self.entries = entries
        self.rewardKind = rewardKind
        var patterns: [String: NSRegularExpression] = [:]
        if rewardKind == .regex {
            for e in entries { patterns[e.answer] = try? NSRegularExpression(pattern: e.answer) }
        }
        self.patterns = patterns
    }

    /// A byte-level policy gets the longest answer plus room.
    public var maxAnswerTokens: Int { (entries.map(\.answer.utf8.count).max() ?? 1) + 4 }

    public func problem(_ rng: inout RandomSource) -> TaskProblem {
        let e = entries[Int(rng.next() % UInt64(entries.count))]
        return TaskProblem(prompt: e.prompt, answer: e.answer)
    }

    public func textReward(response: String, for problem: TaskProblem) -> Double {
        rewardKind.score(response: response, reference: problem.answer, pattern: patterns[problem.answer])
    }
}

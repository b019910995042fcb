import Foundation
import RollspecClient

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
    /// Mean |learner logprob − worker logprob| over the step's tokens at the first update: ~2e-5
    /// on SmolLM2 when both run float32 (summation order), ~1e-2 when workers run
    /// `models.precision: bfloat16` (see docs/architecture.md, "Policy precision").
    public var meanLogprobError: Double
    public var loss: Double
    /// Mean response length in tokens.
    public var meanResponseTokens: Double
    /// The shortest, median, 90th-percentile and longest response of the step, in tokens: the
    /// spread that makes a few long answers hold up the step.
    public var responseTokens: LengthSpread
    /// The step split: rollouts (`rolloutSeconds`), the policy-gradient updates, and
    /// publishing the next policy.
    public var updateSeconds: Double
    public var publishSeconds: Double
    /// Response tokens in the first update (those of informative groups).
    public var updateTokens: Int
    /// The learner's peak resident memory so far, MiB (getrusage).
    public var peakResidentMiB: Double
    /// When the step began, on this host's monotonic clock (`now()`), as the workers' batch
    /// records and policy logs give theirs: a rollout phase can be split into waiting for the
    /// policy, generating, and collecting.
    public var startedAt: Double = 0
}

/// The spread of a set of lengths.
public struct LengthSpread: Codable, Sendable, Equatable {
    public var min: Int
    public var median: Int
    public var p90: Int
    public var max: Int

    public init(_ lengths: [Int]) {
        let s = lengths.sorted()
        func at(_ q: Double) -> Int { s.isEmpty ? 0 : s[Swift.min(s.count - 1, Int(q * Double(s.count)))] }
        self.min = s.first ?? 0
        median = at(0.5)
        p90 = at(0.9)
        self.max = s.last ?? 0
    }

    /// Longest over shortest (shortest counted as at least 1 token).
    public var ratio: Double { Double(max) / Double(Swift.max(min, 1)) }
}

extension LearnerStepRecord {
    /// The record of step `step` (policy `version`) from what it scored and how long its parts took.
    init(step: Int, version: UInt64, scored: GRPOLearner.Scored, update: GRPOUpdateStats?, rolloutSeconds: Double,
         updateSeconds: Double, publishSeconds: Double, stepSeconds: Double, startedAt: Double) {
        let all = GroupAdvantages(rewards: scored.rewards)  // the whole step as one group: its mean and std
        let tokens = scored.responseLengths.reduce(0, +)
        self.init(
            step: step, policyVersion: version, rewardMean: all.mean, rewardStd: all.std,
            acceptanceRate: scored.acceptance.acceptanceRate, meanAcceptanceLength: scored.acceptance.meanAcceptanceLength,
            draftVersions: scored.draftVersions, rolloutTokens: tokens, rolloutSeconds: rolloutSeconds,
            rolloutTokensPerSecond: rolloutSeconds > 0 ? Double(tokens) / rolloutSeconds : 0,
            stepSeconds: stepSeconds, informativeGroups: scored.informativeGroups,
            firstUpdateRatio: Double(update?.meanRatio ?? 1), maxLogprobError: Double(update?.maxLogprobError ?? 0),
            meanLogprobError: Double(update?.meanLogprobError ?? 0), loss: Double(update?.loss ?? 0),
            meanResponseTokens: Double(tokens) / Double(max(scored.responseLengths.count, 1)),
            responseTokens: LengthSpread(scored.responseLengths), updateSeconds: updateSeconds,
            publishSeconds: publishSeconds, updateTokens: update?.tokens ?? 0, peakResidentMiB: processPeakResidentMiB(),
            startedAt: startedAt)
    }
}

/// This process's peak resident set size, MiB.
func processPeakResidentMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024  // KiB on Linux
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

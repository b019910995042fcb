import Foundation

/// One line of `<runDirectory>/learner.jsonl` as the launcher reads it: a step record
/// (`event: step`) or the final summary (`event: summary`). Fields a learner leaves out are nil,
/// so an outside learner may write fewer.
public struct LearnerRecord: Codable, Sendable, Equatable {
    public var event: String
    public var step: Int?
    /// The policy version that generated the step's trajectories.
    public var policyVersion: UInt64?
    public var rewardMean: Double?
    public var rewardStd: Double?
    public var acceptanceRate: Double?
    public var meanAcceptanceLength: Double?
    /// Trajectories per draft version (keys are versions as text).
    public var draftVersions: [String: Int]?
    public var rolloutTokens: Int?
    public var rolloutSeconds: Double?
    public var rolloutTokensPerSecond: Double?
    public var stepSeconds: Double?

    /// The records in `text` (JSON lines); lines that do not parse (a half-written last line)
    /// are skipped.
    public static func parse(lines text: String) -> [LearnerRecord] {
        let decoder = JSONDecoder()
        return text.split(separator: "\n").compactMap { try? decoder.decode(LearnerRecord.self, from: Data($0.utf8)) }
    }

    /// The newest draft version among the step's trajectories.
    public var newestDraftVersion: Int? { draftVersions?.keys.compactMap(Int.init).max() }
}

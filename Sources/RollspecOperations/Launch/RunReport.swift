import Foundation
import RollspecClient
import RollspecRoles

/// What a launched job leaves behind: `report.json` (every learner step, figures per policy
/// version, restarts, outcome) and `report.png` (reward and acceptance rate per policy version).
public struct RunReport: Codable, Sendable {
    /// Figures of the trajectories one policy version generated.
    public struct PolicyVersionRow: Codable, Sendable, Equatable {
        public var policyVersion: UInt64
        public var steps: Int
        public var rewardMean: Double?
        /// Token-weighted over the version's steps when tokens are known.
        public var acceptanceRate: Double?
        public var meanAcceptanceLength: Double?
        public var rolloutTokensPerSecond: Double?
        public var newestDraftVersion: Int?
    }

    public var name: String
    public var outcome: String
    public var exitStatus: Int32
    public var wallSeconds: Double?
    public var restarts: [String: Int]
    public var steps: [LearnerRecord]
    public var byPolicyVersion: [PolicyVersionRow]
    public var summary: LearnerRecord?

    public init(config: JobConfig, outcome: Supervisor.Outcome, records: [LearnerRecord], restarts: [String: Int],
                wallSeconds: Double? = nil) {
        name = config.name
        switch outcome {
        case .finished: self.outcome = "finished"
        case .failed(let why): self.outcome = "failed: \(why)"
        case .interrupted(let s): self.outcome = "interrupted by signal \(s)"
        }
        exitStatus = outcome.exitStatus
        self.wallSeconds = wallSeconds
        self.restarts = restarts
        steps = records.filter { $0.event == "step" }
        summary = records.last { $0.event == "summary" }
        byPolicyVersion = Self.rows(steps)
    }

    static func rows(_ steps: [LearnerRecord]) -> [PolicyVersionRow] {
        let groups = Dictionary(grouping: steps.filter { $0.policyVersion != nil }, by: { $0.policyVersion! })
        return groups.keys.sorted().map { v in
            let g = groups[v]!
            func mean(_ xs: [Double]) -> Double? { xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count) }
            func weighted(_ key: KeyPath<LearnerRecord, Double?>) -> Double? {
                let pairs = g.compactMap { r in r[keyPath: key].map { ($0, Double(r.rolloutTokens ?? 1)) } }
                let w = pairs.map(\.1).reduce(0, +)
                return pairs.isEmpty || w == 0 ? nil : pairs.map { $0.0 * $0.1 }.reduce(0, +) / w
            }
            return PolicyVersionRow(
                policyVersion: v, steps: g.count, rewardMean: mean(g.compactMap(\.rewardMean)),
                acceptanceRate: weighted(\.acceptanceRate), meanAcceptanceLength: weighted(\.meanAcceptanceLength),
                rolloutTokensPerSecond: mean(g.compactMap(\.rolloutTokensPerSecond)),
                newestDraftVersion: g.compactMap(\.newestDraftVersion).max())
        }
    }

    /// Writes `report.json` (and `report.png` when there are steps to plot) into `directory`.
    public func write(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: directory.appendingPathComponent("report.json"), options: .atomic)
        if !byPolicyVersion.isEmpty { try chart().write(to: directory.appendingPathComponent("report.png")) }
    }

    /// The end-of-job text: outcome, the table by policy version, where the report is.
    public func summaryText(runDirectory: URL) -> String {
        var lines = ["\(name): \(outcome)"]
        if !byPolicyVersion.isEmpty {
            // String(format:) does not pad %@ on Linux: pad by hand.
            func row(_ cells: [String]) -> String {
                zip(cells, [7, 7, 8, 12, 17, 15, 7]).map { String(repeating: " ", count: max(0, $1 - $0.count)) + $0 }.joined()
            }
            func f(_ x: Double?, _ format: String) -> String { x.map { String(format: format, $0) } ?? "-" }
            lines.append(row(["policy", "steps", "reward", "acceptance", "mean-accept-len", "rollout-tok/s", "draft"]))
            for r in byPolicyVersion {
                lines.append(row(["v\(r.policyVersion)", "\(r.steps)", f(r.rewardMean, "%.3f"), f(r.acceptanceRate, "%.3f"),
                                  f(r.meanAcceptanceLength, "%.2f"), f(r.rolloutTokensPerSecond, "%.0f"),
                                  r.newestDraftVersion.map { "v\($0)" } ?? "-"]))
            }
        }
        let restarted = restarts.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        if !restarted.isEmpty { lines.append("restarts: " + restarted.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) }
        lines.append("report: \(runDirectory.appendingPathComponent("report.json").path)"
                     + (byPolicyVersion.isEmpty ? "" : ", \(runDirectory.appendingPathComponent("report.png").path)"))
        return lines.joined(separator: "\n")
    }
}

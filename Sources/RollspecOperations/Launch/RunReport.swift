import Foundation
import RollspecClient
import RollspecRoles

/// What a launched job leaves behind: `report.json` (every learner step, figures per policy
/// version, restarts, outcome) and `report.html`, a page that needs nothing but a browser: the
/// outcome, the table by policy version and a chart of reward and acceptance rate.
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

    /// Writes `report.json` and `report.html` into `directory`.
    public func write(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: directory.appendingPathComponent("report.json"), options: .atomic)
        try Data(html().utf8).write(to: directory.appendingPathComponent("report.html"), options: .atomic)
    }

    /// Column titles of the table by policy version, at the end of a launch and in the page.
    static let columns = ["policy", "steps", "reward", "acceptance", "mean-accept-len", "rollout-tok/s", "draft"]

    /// One row of that table as text, `-` where a figure is unknown.
    static func cells(_ r: PolicyVersionRow) -> [String] {
        func f(_ x: Double?, _ format: String) -> String { x.map { String(format: format, $0) } ?? "-" }
        return ["v\(r.policyVersion)", "\(r.steps)", f(r.rewardMean, "%.3f"), f(r.acceptanceRate, "%.3f"),
                f(r.meanAcceptanceLength, "%.2f"), f(r.rolloutTokensPerSecond, "%.0f"),
                r.newestDraftVersion.map { "v\($0)" } ?? "-"]
    }

    /// Roles restarted at least once, as `worker-0 1, worker-1 2`; nil when none were.
    var restartsText: String? {
        let restarted = restarts.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        return restarted.isEmpty ? nil : restarted.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// The end-of-job text: outcome, the table by policy version, where the report is.
    public func summaryText(runDirectory: URL) -> String {
        var lines = ["\(name): \(outcome)"]
        if !byPolicyVersion.isEmpty {
            // String(format:) does not pad %@ on Linux: pad by hand.
            func row(_ cells: [String]) -> String {
                zip(cells, [7, 7, 8, 12, 17, 15, 7]).map { String(repeating: " ", count: max(0, $1 - $0.count)) + $0 }.joined()
            }
            lines.append(row(Self.columns))
            lines += byPolicyVersion.map { row(Self.cells($0)) }
        }
        if let restartsText { lines.append("restarts: " + restartsText) }
        lines.append("report: \(runDirectory.appendingPathComponent("report.json").path), "
                     + runDirectory.appendingPathComponent("report.html").path)
        return lines.joined(separator: "\n")
    }
}

import Foundation

/// Writes acceptance rows as a text table or as JSON — the output of `rollspec metrics`.
///
/// Acceptance rate and mean acceptance length follow ARCHITECTURE.md's vocabulary (mean
/// acceptance length counts the bonus token); `pN` is the share of drafts whose first N
/// tokens were all accepted. Figures that do not exist (no drafts, or no generation counters
/// for a proposer) print as `-` and are left out of the JSON.
public enum AcceptanceTable {
    public static func text(_ rows: [AcceptanceRow], total: AcceptanceRow?, by grouping: MetricsQuery.Grouping) -> String {
        let all = rows + (total.map { [$0] } ?? [])
        let positions = all.map(\.stats.acceptedAtPosition.count).max() ?? 0
        let header = [grouping.rawValue, "drafts", "drafted", "accepted", "acc_rate", "mean_len"]
            + (0..<positions).map { "p\($0 + 1)" } + ["generated", "tokens/s"]
        var lines = [header]
        for r in all {
            let s = r.stats
            let hasDrafts = s.drafts > 0
            var cells = [r.key, String(s.drafts), String(s.draftTokens), String(s.acceptedTokens),
                         hasDrafts ? fixed(s.acceptanceRate, 3) : "-", hasDrafts ? fixed(s.meanAcceptanceLength, 2) : "-"]
            let perPosition = s.perPositionAcceptance
            cells += (0..<positions).map { i in hasDrafts && i < perPosition.count ? fixed(perPosition[i], 3) : "-" }
            cells += [r.generatedTokens.map(String.init) ?? "-", r.tokensPerSecond.map { fixed($0, 1) } ?? "-"]
            lines.append(cells)
        }
        // The label column left-aligned, numbers right-aligned; the total set off by a rule.
        let widths = header.indices.map { c in lines.map { $0[c].count }.max()! }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { c, cell in
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                return c == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        var out = lines.prefix(1 + rows.count).map(render)
        if total != nil, let last = lines.last {
            out.append(String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1)))
            out.append(render(last))
        }
        return out.joined(separator: "\n") + "\n"
    }

    public static func json(_ rows: [AcceptanceRow], total: AcceptanceRow?, by grouping: MetricsQuery.Grouping) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let report = Report(by: grouping.rawValue, rows: rows.map(Row.init), total: total.map(Row.init))
        return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
    }

    private struct Report: Encodable {
        var by: String
        var rows: [Row]
        var total: Row?
    }

    private struct Row: Encodable {
        var key: String
        var drafts: Int
        var draftedTokens: Int
        var acceptedTokens: Int
        var acceptedPerPosition: [Int]
        var acceptanceRate: Double?
        var meanAcceptanceLength: Double?
        var perPositionAcceptance: [Double]?
        var requests: Int?
        var generatedTokens: Int?
        var generationSeconds: Double?
        var tokensPerSecond: Double?

        init(_ r: AcceptanceRow) {
            let s = r.stats
            key = r.key
            drafts = s.drafts
            draftedTokens = s.draftTokens
            acceptedTokens = s.acceptedTokens
            acceptedPerPosition = s.acceptedAtPosition
            if s.drafts > 0 {
                acceptanceRate = s.acceptanceRate
                meanAcceptanceLength = s.meanAcceptanceLength
                perPositionAcceptance = s.perPositionAcceptance
            }
            requests = r.requests
            generatedTokens = r.generatedTokens
            generationSeconds = r.generationSeconds
            tokensPerSecond = r.tokensPerSecond
        }
    }

    private static func fixed(_ v: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", v) }
}

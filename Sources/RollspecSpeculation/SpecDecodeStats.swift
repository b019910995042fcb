/// Raw counters of speculative decoding; rates are derived, never stored.
///
/// Conventions (the ARCHITECTURE.md metrics vocabulary):
/// - acceptance rate = accepted draft tokens / drafted tokens;
/// - mean acceptance length = 1 + accepted / drafts — it counts the bonus (or correction)
///   token every verification emits, so plain decoding scores exactly 1;
/// - per-position acceptance i = drafts whose first i + 1 tokens were all accepted / drafts.
public struct SpecDecodeStats: Sendable, Equatable, Codable {
    /// Verifications of a non-empty draft.
    public var drafts = 0
    public var draftTokens = 0
    public var acceptedTokens = 0
    /// `acceptedAtPosition[i]`: drafts whose token i (0-based) was accepted (so its whole
    /// prefix was too).
    public var acceptedAtPosition: [Int] = []
    /// `alternativeAcceptedAtPosition[i]`: drafts whose token accepted at position i was a
    /// candidate beside the chain's (a token tree's `Draft.alternatives`), which ends the walk
    /// there: the share of `acceptedAtPosition[i]` a tree's runner-ups carried.
    public var alternativeAcceptedAtPosition: [Int] = []
    /// Tokens emitted in total (accepted drafts + one per verification or plain step).
    public var emittedTokens = 0
    /// Forward passes of the target.
    public var targetSteps = 0
    public var draftSeconds: Double = 0
    public var verifySeconds: Double = 0

    public init() {}

    public var acceptanceRate: Double { draftTokens == 0 ? 0 : Double(acceptedTokens) / Double(draftTokens) }
    public var meanAcceptanceLength: Double { drafts == 0 ? 1 : 1 + Double(acceptedTokens) / Double(drafts) }
    public var perPositionAcceptance: [Double] { shareOfDrafts(acceptedAtPosition) }
    /// Drafts whose accepted token at position i was a runner-up beside the chain / drafts.
    public var perPositionAlternativeAcceptance: [Double] { shareOfDrafts(alternativeAcceptedAtPosition) }

    private func shareOfDrafts(_ counts: [Int]) -> [Double] {
        counts.map { drafts == 0 ? 0 : Double($0) / Double(drafts) }
    }

    /// Records one verification of `drafted` tokens of which the first `accepted` held, the
    /// last of them a candidate beside the chain when `alternative`.
    public mutating func record(drafted: Int, accepted: Int, alternative: Bool = false) {
        targetSteps += 1
        emittedTokens += accepted + 1
        guard drafted > 0 else { return }
        drafts += 1
        draftTokens += drafted
        acceptedTokens += accepted
        Self.pad(&acceptedAtPosition, to: drafted)
        for i in 0..<accepted { acceptedAtPosition[i] += 1 }
        if alternative, accepted > 0 {
            Self.pad(&alternativeAcceptedAtPosition, to: accepted)
            alternativeAcceptedAtPosition[accepted - 1] += 1
        }
    }

    /// Grows a per-position count to at least `count` positions with zeros.
    private static func pad(_ counts: inout [Int], to count: Int) {
        if counts.count < count { counts += [Int](repeating: 0, count: count - counts.count) }
    }

    public static func + (a: SpecDecodeStats, b: SpecDecodeStats) -> SpecDecodeStats {
        var s = a
        s.drafts += b.drafts
        s.draftTokens += b.draftTokens
        s.acceptedTokens += b.acceptedTokens
        s.emittedTokens += b.emittedTokens
        s.targetSteps += b.targetSteps
        s.draftSeconds += b.draftSeconds
        s.verifySeconds += b.verifySeconds
        s.acceptedAtPosition = sum(a.acceptedAtPosition, b.acceptedAtPosition)
        s.alternativeAcceptedAtPosition = sum(a.alternativeAcceptedAtPosition, b.alternativeAcceptedAtPosition)
        return s
    }

    /// Element-wise sum of two per-position counts, the shorter padded with zeros.
    private static func sum(_ a: [Int], _ b: [Int]) -> [Int] {
        (0..<max(a.count, b.count)).map { ($0 < a.count ? a[$0] : 0) + ($0 < b.count ? b[$0] : 0) }
    }
}

/// Statistics of one sequence, or of many: overall and per proposer.
public struct SpeculationReport: Sendable, Equatable, Codable {
    public var overall = SpecDecodeStats()
    public var byProposer: [ProposerKind: SpecDecodeStats] = [:]

    public init() {}

    public mutating func record(proposer: ProposerKind, drafted: Int, accepted: Int, alternative: Bool = false) {
        overall.record(drafted: drafted, accepted: accepted, alternative: alternative)
        byProposer[proposer, default: SpecDecodeStats()].record(drafted: drafted, accepted: accepted, alternative: alternative)
    }

    public static func + (a: SpeculationReport, b: SpeculationReport) -> SpeculationReport {
        var r = SpeculationReport()
        r.overall = a.overall + b.overall
        r.byProposer = a.byProposer.merging(b.byProposer, uniquingKeysWith: +)
        return r
    }
}

import RollspecModel

/// Proposes continuations by matching the end of the context against the sequence itself and
/// against a shared index of recent accepted outputs (SuffixDecoding, Oliaro et al. 2024).
///
/// Among all places where the longest matching suffix occurred, it follows the most frequent
/// next token, then the most frequent after that among the places that agree, and so on: the
/// draft grows while the leading continuation keeps at least `minFrequency` of the votes and
/// is at most `lengthPerMatchedToken × match length` long — a long, common match earns a long
/// draft, a one-token coincidence a short one. Proposals are point masses.
///
/// With a `RolloutHistory`, it drafts first from what was written for the same prompt: the
/// sequence itself, its GRPO group's other samples as they are written, and the prompt's
/// earlier rollouts. The shared index of all outputs is the fallback when none of those
/// matches at least `minMatch` tokens. Without one, the sequence and the shared index are
/// searched together.
public final class SuffixProposer: Proposer {
    public let kind = ProposerKind.suffix
    /// Shared across sequences: finished outputs go in at `end`.
    public let global: SuffixIndex
    /// Shared across the sequences of one prompt, written as they are generated.
    public let history: RolloutHistory?
    public var minFrequency: Double
    public var lengthPerMatchedToken: Double
    public var minMatch: Int
    /// The live sequence (prompt + output so far), matched against itself.
    private var local: SuffixIndex
    private var liveDocument = 0
    private var indexed = 0
    /// This sequence's document in `history`.
    private var shared: RolloutHistory.Document?

    public init(global: SuffixIndex, history: RolloutHistory? = nil, minFrequency: Double = 0.3,
                lengthPerMatchedToken: Double = 2, minMatch: Int = 2) {
        self.global = global
        self.history = history
        self.minFrequency = minFrequency
        self.lengthPerMatchedToken = lengthPerMatchedToken
        self.minMatch = minMatch
        self.local = SuffixIndex(maxNgram: global.maxNgram)
    }

    public func begin(prompt: [Int]) {
        if let shared { history?.close(shared) }
        local = SuffixIndex(maxNgram: global.maxNgram, capacityTokens: 1 << 30)
        liveDocument = local.add(prompt)
        indexed = prompt.count
        shared = history?.open(prompt: prompt)
    }

    public func extend(by tokens: [Int]) {
        local.append(tokens, to: liveDocument)
        indexed += tokens.count
        if let shared { history?.append(tokens, to: shared) }
    }

    public func propose(context: [Int], maxTokens: Int, sampling: SamplingParameters,
                        random: inout RandomSource) -> Draft {
        // A caller that does not report each step's tokens (`extend`) is caught up here.
        if context.count > indexed { extend(by: Array(context[indexed...])) }
        guard maxTokens > 0 else { return .empty(kind) }
        typealias Match = (index: SuffixIndex, length: Int, occurrences: [SuffixIndex.Occurrence])
        let mine = local.longestMatch(context, excludingTail: liveDocument)
        var tiers: [[Match]]
        if let history, let shared {
            let group = history.longestMatch(context, for: shared)
            tiers = [[(local, mine.length, mine.occurrences), (history.index(of: shared), group.length, group.occurrences)]]
        } else {
            tiers = [[(local, mine.length, mine.occurrences)]]
        }
        let theirs = global.longestMatch(context)
        if history == nil { tiers[0].append((global, theirs.length, theirs.occurrences)) }
        else { tiers.append([(global, theirs.length, theirs.occurrences)]) }
        // The first tier with a long enough match; within it, every source that matches longest.
        guard let tier = tiers.first(where: { ($0.map(\.length).max() ?? 0) >= minMatch }) else { return .empty(kind) }
        let length = tier.map(\.length).max()!
        let sources = tier.filter { $0.length == length }.flatMap { m in m.occurrences.map { (m.index, $0) } }
        let limit = min(maxTokens, max(1, Int(lengthPerMatchedToken * Double(length))))
        let continuations = sources.prefix(64).map { $0.0.continuation($0.1, maxLength: limit) }.map(Array.init)

        var draft: [Int] = []
        var alive = continuations.indices.filter { !continuations[$0].isEmpty }
        while draft.count < limit && !alive.isEmpty {
            let j = draft.count
            var votes: [Int: Int] = [:]
            for c in alive where continuations[c].count > j { votes[continuations[c][j], default: 0] += 1 }
            guard let (token, count) = votes.max(by: { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key })
            else { break }
            if Double(count) / Double(alive.count) < minFrequency { break }
            draft.append(token)
            alive = alive.filter { continuations[$0].count > j && continuations[$0][j] == token }
        }
        return Draft(tokens: draft, proposer: kind)
    }

    public func end(prompt: [Int], output: [Int]) {
        // The prompt's tail goes in too, so that the next sample of the same prompt (a GRPO
        // group) can match its first output tokens.
        global.add(Array(prompt.suffix(global.maxNgram)) + output)
        if let shared { history?.close(shared) }
        shared = nil
    }
}

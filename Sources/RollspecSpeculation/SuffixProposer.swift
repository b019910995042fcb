import RollspecModel

/// Proposes continuations by matching the end of the context against the sequence itself and
/// against a shared index of recent accepted outputs (SuffixDecoding, Oliaro et al. 2024).
///
/// Among all places where the longest matching suffix occurred, it follows the most frequent
/// next token, then the most frequent after that among the places that agree, and so on: the
/// draft grows while the leading continuation keeps at least `minFrequency` of the votes and
/// is at most `lengthPerMatchedToken × match length` long — a long, common match earns a long
/// draft, a one-token coincidence a short one. Proposals are point masses.
public final class SuffixProposer: Proposer {
    public let name = "suffix"
    /// Shared across sequences: finished outputs go in at `end`.
    public let global: SuffixIndex
    public var minFrequency: Double
    public var lengthPerMatchedToken: Double
    public var minMatch: Int
    /// The live sequence (prompt + output so far), matched against itself.
    private var local: SuffixIndex
    private var liveDocument = 0
    private var indexed = 0

    public init(global: SuffixIndex, minFrequency: Double = 0.3, lengthPerMatchedToken: Double = 2,
                minMatch: Int = 2) {
        self.global = global
        self.minFrequency = minFrequency
        self.lengthPerMatchedToken = lengthPerMatchedToken
        self.minMatch = minMatch
        self.local = SuffixIndex(maxNgram: global.maxNgram)
    }

    public func begin(prompt: [Int]) {
        local = SuffixIndex(maxNgram: global.maxNgram, capacityTokens: 1 << 30)
        liveDocument = local.add(prompt)
        indexed = prompt.count
    }

    public func propose(context: [Int], maxTokens: Int, sampling: SamplingParameters,
                        random: inout RandomSource) -> Draft {
        if context.count > indexed {
            local.append(Array(context[indexed...]), to: liveDocument)
            indexed = context.count
        }
        let mine = local.longestMatch(context, excludingTail: liveDocument)
        let theirs = global.longestMatch(context)
        let length = max(mine.length, theirs.length)
        guard length >= minMatch, maxTokens > 0 else { return .empty(name) }
        var sources: [(SuffixIndex, SuffixIndex.Occurrence)] = []
        if mine.length == length { sources += mine.occurrences.map { (local, $0) } }
        if theirs.length == length { sources += theirs.occurrences.map { (global, $0) } }
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
        return Draft(tokens: draft, proposer: name)
    }

    public func end(prompt: [Int], output: [Int]) {
        // The prompt's tail goes in too, so that the next sample of the same prompt (a GRPO
        // group) can match its first output tokens.
        global.add(Array(prompt.suffix(global.maxNgram)) + output)
    }
}

/// What RL has already written for each prompt, for the suffix proposer to draft from first:
/// the other samples of the same GRPO group as they are written, and the prompt's rollouts from
/// earlier steps and epochs (SPEC-RL, Liu et al. 2025; DAS, Shao et al. 2025).
///
/// Each prompt has its own `SuffixIndex`. A sample opens a live document in it when it starts
/// (the prompt's last `maxNgram` tokens, so the first output tokens can match) and grows it by
/// each token it emits, so its siblings, decoding in the same batch, see its tokens one step
/// later. When the sample ends the document stays as history. Documents are tagged with the
/// policy version that wrote them; a new policy drops those more than `maxPolicyAge` versions
/// older. All prompts together hold at most about `capacityTokens` (the least recently used
/// prompts go first; live documents are never dropped, so one batch may overshoot until it
/// ends).
///
/// History decides only what is drafted, never what is sampled: every draft is verified.
/// It lives in one worker's memory, so a restarted worker starts empty and only speed suffers.
public final class RolloutHistory {
    public let maxNgram: Int
    public let capacityTokens: Int
    public let maxPolicyAge: UInt64
    /// The policy version whose samples are being written now.
    public private(set) var policyVersion: UInt64 = 0

    /// One prompt's documents.
    final class Prompt {
        let index: SuffixIndex
        /// The policy version that wrote each document.
        var versions: [Int: UInt64] = [:]
        var live: Set<Int> = []
        var lastUse = 0
        init(index: SuffixIndex) { self.index = index }
    }

    /// A sample's live document, which `append` grows and `close` turns into history.
    public struct Document {
        let prompt: Prompt
        let id: Int
    }

    private var prompts: [[Int]: Prompt] = [:]
    private var clock = 0

    /// - Parameters:
    ///   - capacityTokens: tokens kept over all prompts (≥ 1).
    ///   - maxPolicyAge: rollouts of policy versions more than this far behind the newest are
    ///     dropped when a new policy arrives (0 keeps only the current policy's).
    public init(maxNgram: Int = 8, capacityTokens: Int = 1 << 17, maxPolicyAge: UInt64 = 4) {
        precondition(maxNgram >= 1 && capacityTokens >= 1)
        self.maxNgram = maxNgram
        self.capacityTokens = capacityTokens
        self.maxPolicyAge = maxPolicyAge
    }

    public var promptCount: Int { prompts.count }
    public var documentCount: Int { prompts.values.reduce(0) { $0 + $1.index.documentCount } }
    public var tokenCount: Int { prompts.values.reduce(0) { $0 + $1.index.tokenCount } }

    /// New samples are written by `version`; history from versions more than `maxPolicyAge`
    /// behind it is dropped.
    public func setPolicyVersion(_ version: UInt64) {
        policyVersion = version
        guard version > maxPolicyAge else { return }
        let oldest = version - maxPolicyAge
        for (key, p) in prompts {
            for (id, v) in p.versions where v < oldest && !p.live.contains(id) {
                p.index.remove(id)
                p.versions[id] = nil
            }
            if p.index.documentCount == 0 { prompts[key] = nil }
        }
    }

    /// Starts a live document for a new sample of `prompt`.
    public func open(prompt: [Int]) -> Document {
        clock += 1
        let p: Prompt
        if let existing = prompts[prompt] {
            p = existing
        } else {
            p = Prompt(index: SuffixIndex(maxNgram: maxNgram, capacityTokens: capacityTokens))
            prompts[prompt] = p
            evictLeastRecentlyUsed()
        }
        p.lastUse = clock
        let id = p.index.add(Array(prompt.suffix(maxNgram)))
        p.versions[id] = policyVersion
        p.live.insert(id)
        return Document(prompt: p, id: id)
    }

    /// Appends tokens the sample emitted; its siblings match against them from their next step.
    public func append(_ tokens: [Int], to document: Document) {
        guard !tokens.isEmpty else { return }
        document.prompt.index.append(tokens, to: document.id)
    }

    /// The sample is over: its document becomes history.
    public func close(_ document: Document) {
        document.prompt.live.remove(document.id)
        evictLeastRecentlyUsed()
    }

    /// The longest suffix of `context` found among the prompt's other documents (the sample's
    /// own is left out: its proposer matches the sequence against itself, prompt included).
    func longestMatch(_ context: [Int], for document: Document) -> (length: Int, occurrences: [SuffixIndex.Occurrence]) {
        document.prompt.index.longestMatch(context, skipping: document.id)
    }

    func index(of document: Document) -> SuffixIndex { document.prompt.index }

    /// Drops whole prompts, least recently used first, while over capacity; prompts with live
    /// samples stay.
    private func evictLeastRecentlyUsed() {
        var total = tokenCount
        guard total > capacityTokens else { return }
        for (key, p) in prompts.sorted(by: { $0.value.lastUse < $1.value.lastUse }) where p.live.isEmpty {
            total -= p.index.tokenCount
            prompts[key] = nil
            if total <= capacityTokens { return }
        }
    }
}

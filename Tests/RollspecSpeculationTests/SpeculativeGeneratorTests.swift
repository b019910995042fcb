import Testing
import RollspecModel
import RollspecTesting
@testable import RollspecSpeculation

@Suite struct SpeculativeGeneratorTests {
    static let config = TinyModels.llamaConfig(vocab: 48, hidden: 32, layers: 2, heads: 4, kvHeads: 2, ffn: 48)
    // Built per test: a LlamaModel runs one forward at a time and tests run concurrently.
    let target = TinyModels.randomModel(config: config, seed: 1)
    /// A different random model: its guesses are often wrong.
    let draft = TinyModels.randomModel(
        config: TinyModels.llamaConfig(vocab: 48, hidden: 16, layers: 1, heads: 2, kvHeads: 1, ffn: 24), seed: 2)
    /// Repetitive prompts, so the suffix index has something to match.
    static let prompts: [[Int]] = [
        [5, 6, 7, 8, 9, 5, 6, 7, 8, 9, 5, 6, 7],
        [1, 2, 3, 1, 2, 3, 1, 2],
        [40, 41, 42, 43, 44, 45, 46, 47, 40, 41],
    ]

    func generator(_ mode: SpeculationMode, index: SuffixIndex = SuffixIndex(maxNgram: 4)) -> SpeculativeGenerator {
        let target = self.target, draft = self.draft
        return SpeculativeGenerator(model: target, controller: SpeculationController(maxLookahead: 4)) {
            switch mode {
            case .none: return []
            case .draft: return [DraftModelProposer(model: draft)]
            case .suffix: return [SuffixProposer(global: index, minMatch: 1)]
            case .auto: return [DraftModelProposer(model: draft), SuffixProposer(global: index, minMatch: 1)]
            }
        }
    }

    @Test(arguments: SpeculationMode.allCases)
    func greedySpeculativeEqualsGreedyPlain(mode: SpeculationMode) throws {
        let plain = Generator(model: target)
        let index = SuffixIndex(maxNgram: 4)
        var drafted = 0, accepted = 0
        for prompt in Self.prompts {
            let request = GenerationRequest(prompt: prompt, maxTokens: 40, sampling: .greedy)
            let expected = try plain.generate(request)
            let spec = generator(mode, index: index)
            let got = try spec.generate(request)
            #expect(got.tokens == expected.tokens, "\(mode) prompt \(prompt)")
            #expect(got.finishReason == expected.finishReason)
            for (a, b) in zip(got.logprobs, expected.logprobs) { #expect(abs(a - b) <= 1e-5) }
            drafted += spec.lastReport.overall.draftTokens
            accepted += spec.lastReport.overall.acceptedTokens
        }
        if mode != .none {
            // The check only means something if drafts were made and some were rejected.
            #expect(drafted > 0)
            #expect(accepted < drafted, "no draft was ever wrong: the test would prove nothing")
        }
    }

    @Test func tokenDraftsMadeTogetherAreTheDraftsMadeAlone() throws {
        // Three sequences share one token-level draft and draft in one pass per depth. Greedy,
        // each chain is the draft model's own greedy continuation of its context (plain
        // generation with the draft), round after round as the contexts grow and the caches
        // roll back. At T = 1, with a tree and a confidence threshold that stops some chains
        // early, each gets what it gets drafting alone with the same random stream.
        let draft = self.draft
        let lengths = [3, 1, 4]
        var contexts = Self.prompts
        let greedy = contexts.map { _ in DraftModelProposer(model: draft) }
        for (p, c) in zip(greedy, contexts) { p.begin(prompt: c) }
        for round in 0..<3 {
            var randoms = contexts.map { _ in RandomSource(seed: 1) }
            let drafts = DraftModelProposer.propose(together: contexts.indices.map {
                DraftRequest(proposer: greedy[$0], context: contexts[$0], maxTokens: lengths[$0], sampling: .greedy)
            }, random: &randoms)
            for r in contexts.indices {
                let alone = try Generator(model: draft).generate(
                    GenerationRequest(prompt: contexts[r], maxTokens: lengths[r], sampling: .greedy)).tokens
                #expect(drafts[r].tokens == alone, "round \(round), sequence \(r)")
                // Keep part of the draft and add a token of our own: the next round rolls back.
                contexts[r] += Array(drafts[r].tokens.prefix(round % 2)) + [(round * 7 + r * 5 + 3) % 48]
            }
        }

        let sampling = SamplingParameters(temperature: 1, seed: 1)
        func proposers() -> [DraftModelProposer] {
            contexts.map { c in
                let p = DraftModelProposer(model: draft, confidenceThreshold: 0.2, tree: .shaped(rows: 5, extendThreshold: 0))
                p.begin(prompt: c)
                return p
            }
        }
        let group = proposers()
        var together = contexts.indices.map { RandomSource(seed: UInt64(20 + $0)) }
        let drafts = DraftModelProposer.propose(together: contexts.indices.map {
            DraftRequest(proposer: group[$0], context: contexts[$0], maxTokens: 4, sampling: sampling)
        }, random: &together)
        let alone = proposers()
        for r in contexts.indices {
            var random = RandomSource(seed: UInt64(20 + r))
            let d = alone[r].propose(context: contexts[r], maxTokens: 4, sampling: sampling, random: &random)
            #expect(!d.tokens.isEmpty, "sequence \(r)")
            #expect(drafts[r] == d, "sequence \(r)")
            #expect(together[r].nextUnit() == random.nextUnit(), "sequence \(r)")
        }
        #expect(drafts.contains { $0.tokens.count < 4 }, "no chain stopped early: the threshold went untested")
    }

    @Test(arguments: [SpeculationMode.draft, .suffix, .auto])
    func sampledLogprobsAreThePlainOnesForTheSameTokens(mode: SpeculationMode) throws {
        // Whatever tokens speculation emits, their logprobs are those plain scoring gives.
        let params = SamplingParameters(temperature: 0.8, topK: 20, topP: 0.95, seed: 9)
        let prompt = Self.prompts[0]
        let got = try generator(mode).generate(GenerationRequest(prompt: prompt, maxTokens: 30, sampling: params))
        let cache = target.makeCache()
        let logits = target.verify(prompt + got.tokens.dropLast(), cache: cache)
        for (i, token) in got.tokens.enumerated() {
            let dist = TokenDistribution(logits: logits.row(prompt.count - 1 + i), vocabSize: 48, parameters: params)
            let plain = log(Double(dist.probability(of: token)))
            #expect(abs(Double(got.logprobs[i]) - plain) <= 1e-5, "position \(i)")
        }
    }

    @Test func batchedEqualsOneAtATime() throws {
        // The first and last requests share a prompt, so they share one prefill (forked cache).
        let requests = (Self.prompts + [Self.prompts[0]]).enumerated().map { i, p in
            GenerationRequest(prompt: p, maxTokens: 12 + 5 * i, sampling: .greedy, stopTokens: [0])
        }
        let batched = try generator(.draft).generateBatch(requests)
        for (r, out) in zip(requests, batched) {
            #expect(out.result.tokens == (try Generator(model: target).generate(r)).tokens)
        }
    }

    @Test func statisticsFollowTheConventions() throws {
        var s = SpecDecodeStats()
        s.record(drafted: 4, accepted: 4)
        s.record(drafted: 4, accepted: 1)
        s.record(drafted: 0, accepted: 0)  // a plain step
        #expect(s.drafts == 2 && s.draftTokens == 8 && s.acceptedTokens == 5)
        #expect(s.acceptanceRate == 5.0 / 8)
        #expect(s.meanAcceptanceLength == 1 + 5.0 / 2)
        #expect(s.perPositionAcceptance == [1, 0.5, 0.5, 0.5])
        #expect(s.emittedTokens == 5 + 3)
        #expect(s.alternativeAcceptedAtPosition.isEmpty)
        // A tree's runner-up accepted at position 1 (the chain's first token held): counted
        // there, and with the rest of the accepted tokens.
        var t = SpecDecodeStats()
        t.record(drafted: 3, accepted: 2, alternative: true)
        t.record(drafted: 3, accepted: 1, alternative: true)
        t.record(drafted: 3, accepted: 3)
        #expect(t.acceptedAtPosition == [3, 2, 1])
        #expect(t.alternativeAcceptedAtPosition == [1, 1])
        #expect((s + t).alternativeAcceptedAtPosition == [1, 1])
        #expect((s + t).acceptedAtPosition == [5, 3, 2, 1])
    }
}

@Suite struct SuffixIndexTests {
    func propose(_ p: SuffixProposer, _ context: [Int], max: Int = 8) -> [Int] {
        var r = RandomSource(seed: 0)
        return p.propose(context: context, maxTokens: max, sampling: .greedy, random: &r).tokens
    }

    @Test func proposesWhatFollowedTheLongestMatchInTheSequenceItself() {
        let p = SuffixProposer(global: SuffixIndex(maxNgram: 4), lengthPerMatchedToken: 2, minMatch: 1)
        let context = [1, 2, 3, 4, 9, 1, 2, 3]
        p.begin(prompt: context)
        // "1 2 3" matched (length 3) → up to 6 tokens of what followed: 4 9 1 2 3 (end of doc).
        #expect(propose(p, context) == [4, 9, 1, 2, 3])
        // Nothing matches a token never seen.
        p.begin(prompt: [7, 8, 77])
        #expect(propose(p, [7, 8, 77]).isEmpty)
    }

    @Test func draftLengthGrowsWithMatchLength() {
        let global = SuffixIndex(maxNgram: 6)
        global.add([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
        let p = SuffixProposer(global: global, lengthPerMatchedToken: 1, minMatch: 1)
        p.begin(prompt: [99])
        #expect(propose(p, [99, 12]) == [13])               // match 1 → 1 token
        #expect(propose(p, [99, 11, 12]) == [13, 14])       // match 2 → 2 tokens
        #expect(propose(p, [99, 10, 11, 12]) == [13, 14, 15])
    }

    @Test func followsTheMostFrequentContinuation() {
        let global = SuffixIndex(maxNgram: 4)
        global.add([1, 2, 5, 6])
        global.add([1, 2, 3, 4])
        global.add([1, 2, 3, 4])
        let p = SuffixProposer(global: global, minFrequency: 0.5, lengthPerMatchedToken: 4, minMatch: 2)
        p.begin(prompt: [0])
        #expect(propose(p, [0, 1, 2]) == [3, 4])  // 2 of 3 votes for 3, then unanimous 4
        let strict = SuffixProposer(global: global, minFrequency: 0.9, lengthPerMatchedToken: 4, minMatch: 2)
        strict.begin(prompt: [0])
        #expect(propose(strict, [0, 1, 2]).isEmpty)  // 2/3 is not confident enough
    }

    @Test func finishedOutputsFeedTheGlobalIndexWithThePromptTail() {
        let global = SuffixIndex(maxNgram: 3)
        let a = SuffixProposer(global: global, minMatch: 2)
        a.begin(prompt: [7, 8, 9])
        a.end(prompt: [7, 8, 9], output: [30, 31, 32])
        // A second sample of the same prompt can now predict the first output tokens.
        let b = SuffixProposer(global: global, lengthPerMatchedToken: 1, minMatch: 2)
        b.begin(prompt: [7, 8, 9])
        #expect(propose(b, [7, 8, 9]) == [30, 31, 32])
    }

    @Test func evictsOldestDocumentsAndStaysWithinItsBound() {
        let index = SuffixIndex(maxNgram: 3, capacityTokens: 10)
        index.add([1, 2, 3, 4])
        index.add([5, 6, 7, 8])
        index.add([9, 10, 11, 12])  // 12 tokens > 10: the first document goes
        #expect(index.tokenCount == 8)
        #expect(index.documentCount == 2)
        #expect(index.longestMatch([1, 2]).length == 0)
        #expect(index.longestMatch([6, 7]).length == 2)
        for i in 0..<200 { index.add([i % 7, i % 5, i % 3]) }
        #expect(index.tokenCount <= 10)
        #expect(index.entryCount <= 10 * 3)
    }

    @Test func hashCollisionsNeverProduceFalseMatches() {
        // Tokens far apart in value; every hit is checked token by token.
        let index = SuffixIndex(maxNgram: 2)
        index.add([1, 1 << 40, 3])
        #expect(index.longestMatch([5, 1 << 40]).length == 1)
        #expect(index.longestMatch([1, 1 << 40]).length == 2)
    }
}

import Foundation

extension SpeculativeGeneratorTests {
    @Test func recordsTheTargetsTopKOfEveryEmittedToken() throws {
        let g = generator(.suffix)
        g.recordTopK = 3
        let prompt = Self.prompts[1]
        let out = try g.generateBatch([GenerationRequest(prompt: prompt, maxTokens: 10, sampling: .greedy)])[0]
        #expect(out.topK.count == out.result.tokens.count)
        let logits = target.verify(prompt + out.result.tokens.dropLast(), cache: target.makeCache())
        for (i, top) in out.topK.enumerated() {
            let row = Array(UnsafeBufferPointer(start: logits.row(prompt.count - 1 + i), count: 48))
            let m = row.max()!
            let z = row.reduce(0.0) { $0 + exp(Double($1 - m)) }
            let order = row.indices.sorted { row[$0] > row[$1] }
            #expect(top.tokens.map(Int.init) == Array(order.prefix(3)))
            #expect(Int(top.tokens[0]) == out.result.tokens[i])  // greedy picks the top-1
            for (t, p) in zip(top.tokens, top.probabilities) {
                #expect(abs(Double(p) - exp(Double(row[Int(t)] - m)) / z) < 1e-5)
            }
        }
    }
}

/// Measured costs carried from one generator to the next, as a rollout worker does batch to batch.
extension SpeculativeGeneratorTests {
    @Test func aNewSequenceStartsFromTheAcceptanceMeasuredOnEarlierOnes() throws {
        var poor = RunningAcceptance()
        for _ in 0..<200 { poor.observe(drafted: 4, accepted: 0) }
        #expect(poor.alpha == 0)
        var good = RunningAcceptance()
        for _ in 0..<200 { good.observe(drafted: 4, accepted: 4) }
        #expect(good.alpha == 1)
        var half = RunningAcceptance()
        for _ in 0..<200 { half.observe(drafted: 4, accepted: 1) }  // 1 of 2 tried each time
        #expect(abs(half.alpha - 0.5) < 1e-9)

        let requests = Self.prompts.map { GenerationRequest(prompt: $0, maxTokens: 24, sampling: .greedy) }
        // Fresh: the controller's optimistic start drafts from the first steps.
        let fresh = generator(.suffix)
        _ = try fresh.generateBatch(requests)
        #expect(fresh.lastReport.overall.draftTokens > 0)
        #expect(fresh.costs.acceptance[.suffix] != nil)
        // Carrying a proposer measured as never accepted: the new sequences do not draft.
        let carried = generator(.suffix)
        carried.costs.acceptance[.suffix] = poor
        _ = try carried.generateBatch(requests)
        #expect(carried.lastReport.overall.draftTokens == 0, "drafted \(carried.lastReport.overall.draftTokens)")
    }

    /// The carried estimate is weighed against the controller's optimistic prior by how much
    /// was measured, and ages batch by batch: a proposer priced out by a few drafts is still
    /// tried, and one priced out by hundreds is tried again after some batches, never locked
    /// out for good (it would never be measured again).
    @Test func aProposerPricedOutIsTriedAgain() throws {
        var few = RunningAcceptance()
        for _ in 0..<4 { few.observe(drafted: 4, accepted: 0) }
        #expect(few.alpha == 0)
        // 4 failed trials (older ones weighted 0.995 per newer one) beside 4 trials of the prior at 0.7.
        let trials = 1 + 0.995 + 0.995 * 0.995 + 0.995 * 0.995 * 0.995
        #expect(abs(few.seed - 0.7 * 4 / (trials + 4)) < 1e-12)
        let requests = Self.prompts.map { GenerationRequest(prompt: $0, maxTokens: 24, sampling: .greedy) }
        let tried = generator(.suffix)
        tried.costs.acceptance[.suffix] = few
        _ = try tried.generateBatch(requests)
        #expect(tried.lastReport.overall.draftTokens > 0)

        var poor = RunningAcceptance()
        for _ in 0..<200 { poor.observe(drafted: 4, accepted: 0) }
        let later = generator(.suffix)
        later.costs.acceptance[.suffix] = poor
        var drafted: [Int] = []
        for _ in 0..<40 {
            _ = try later.generateBatch(requests)
            drafted.append(later.lastReport.overall.draftTokens)
            if drafted.last! > 0 { break }
        }
        #expect(drafted.count > 2 && drafted.dropLast().allSatisfy { $0 == 0 } && drafted.last! > 0, "\(drafted)")
    }
}

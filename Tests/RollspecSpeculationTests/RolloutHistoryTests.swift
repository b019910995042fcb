import Foundation
import Testing
import RollspecModel
@testable import RollspecSpeculation

/// The rollout history the suffix proposer drafts from first: a prompt's earlier rollouts, its
/// group's samples as they are written, bounded memory, old policies aging out.
@Suite struct RolloutHistoryTests {
    func propose(_ p: SuffixProposer, _ context: [Int], max: Int = 8) -> [Int] {
        var r = RandomSource(seed: 0)
        return p.propose(context: context, maxTokens: max, sampling: .greedy, random: &r).tokens
    }

    @Test func siblingsSeeEachOthersTokensAsTheyAreWritten() {
        let history = RolloutHistory(maxNgram: 4)
        let prompt = [7, 8, 9]
        let a = SuffixProposer(global: SuffixIndex(maxNgram: 4), history: history, lengthPerMatchedToken: 4, minMatch: 2)
        let b = SuffixProposer(global: SuffixIndex(maxNgram: 4), history: history, lengthPerMatchedToken: 4, minMatch: 2)
        a.begin(prompt: prompt)
        b.begin(prompt: prompt)
        #expect(propose(b, prompt).isEmpty)  // nothing written yet
        a.extend(by: [20, 21, 22, 23])       // a's step, before either sequence ends
        #expect(propose(b, prompt) == [20, 21, 22, 23])
        b.extend(by: [20, 21])
        #expect(propose(b, prompt + [20, 21]) == [22, 23])
        // A sample never drafts from its own live document through the history (its own
        // proposer already matches the sequence against itself, prompt included).
        let lone = SuffixProposer(global: SuffixIndex(maxNgram: 4), history: RolloutHistory(maxNgram: 4), minMatch: 2)
        lone.begin(prompt: prompt)
        lone.extend(by: [40, 41])
        #expect(propose(lone, prompt + [40, 41]).isEmpty)
    }

    @Test func thePromptsOwnRolloutsComeBeforeTheIndexOfAllOutputs() {
        let global = SuffixIndex(maxNgram: 4)
        // Other prompts' outputs share the prompt's tail and say something else, more often.
        for _ in 0..<5 { global.add([8, 9, 50, 51, 52]) }
        let history = RolloutHistory(maxNgram: 4)
        let earlier = SuffixProposer(global: SuffixIndex(maxNgram: 4), history: history, minMatch: 2)
        earlier.begin(prompt: [7, 8, 9])
        earlier.extend(by: [30, 31, 32])
        earlier.end(prompt: [7, 8, 9], output: [30, 31, 32])
        let now = SuffixProposer(global: global, history: history, lengthPerMatchedToken: 4, minMatch: 2)
        now.begin(prompt: [7, 8, 9])
        #expect(propose(now, [7, 8, 9]) == [30, 31, 32])
        // A prompt with no history falls back to the index of all outputs.
        let other = SuffixProposer(global: global, history: history, lengthPerMatchedToken: 4, minMatch: 2)
        other.begin(prompt: [6, 8, 9])
        #expect(propose(other, [6, 8, 9]) == [50, 51, 52])
    }

    @Test func rolloutsOfOldPoliciesAgeOut() {
        let history = RolloutHistory(maxNgram: 4, maxPolicyAge: 1)
        func write(_ output: [Int], prompt: [Int] = [1, 2, 3]) {
            let p = SuffixProposer(global: SuffixIndex(maxNgram: 4), history: history)
            p.begin(prompt: prompt)
            p.extend(by: output)
            p.end(prompt: prompt, output: output)
        }
        history.setPolicyVersion(1)
        write([10, 11])
        history.setPolicyVersion(2)
        write([20, 21])
        #expect(history.documentCount == 2)
        history.setPolicyVersion(3)  // v1 is two behind: gone; v2 stays
        #expect(history.documentCount == 1)
        history.setPolicyVersion(5)
        #expect(history.documentCount == 0)
        #expect(history.promptCount == 0)
    }

    @Test func aLiveSampleKeepsItsDocumentWhenItsPolicyAgesOut() {
        let history = RolloutHistory(maxNgram: 4, maxPolicyAge: 0)
        let p = SuffixProposer(global: SuffixIndex(maxNgram: 4), history: history)
        p.begin(prompt: [1, 2, 3])
        history.setPolicyVersion(9)
        p.extend(by: [4, 5])
        #expect(history.documentCount == 1 && history.tokenCount == 5)
        p.end(prompt: [1, 2, 3], output: [4, 5])
        history.setPolicyVersion(10)
        #expect(history.documentCount == 0)
    }

    @Test func memoryStaysBoundedLeastRecentlyUsedPromptsFirst() {
        let history = RolloutHistory(maxNgram: 3, capacityTokens: 100)
        for prompt in 0..<50 {
            let p = SuffixProposer(global: SuffixIndex(maxNgram: 3), history: history)
            let tokens = [1000 + prompt, 1, 2]
            p.begin(prompt: tokens)
            p.extend(by: Array(repeating: prompt, count: 17))
            p.end(prompt: tokens, output: Array(repeating: prompt, count: 17))
        }
        #expect(history.tokenCount <= 100)
        #expect(history.promptCount == 5)  // 20 tokens a prompt
        // The newest prompts are the ones kept.
        let probe = SuffixProposer(global: SuffixIndex(maxNgram: 3), history: history, minMatch: 2)
        probe.begin(prompt: [1049, 1, 2])
        #expect(propose(probe, [1049, 1, 2]).first == 49)
        let gone = SuffixProposer(global: SuffixIndex(maxNgram: 3), history: history, minMatch: 2)
        gone.begin(prompt: [1000, 1, 2])
        #expect(propose(gone, [1000, 1, 2]).isEmpty)
    }
}

/// History and group drafting change what is drafted, never what is sampled: the first two
/// tokens of many GRPO groups, each decoded side by side with the prompt's history of earlier
/// groups, follow the target's exact joint law; a broken verifier is caught through them.
extension EndToEndLosslessnessTests {
    func groupCounts(variant: RejectionSampler.Variant, history: RolloutHistory?, groups: Int) throws -> (counts: [Int], drafted: Int) {
        let params = SamplingParameters(temperature: 1)
        let global = SuffixIndex(maxNgram: 4, capacityTokens: 256)
        var controller = SpeculationController(maxLookahead: 3, minLookahead: 1)
        controller.isFixed = true
        let generator = SpeculativeGenerator(model: target, controller: controller) {
            [SuffixProposer(global: global, history: history, lengthPerMatchedToken: 2, minMatch: 2)]
        }
        generator.rejectionSampler = RejectionSampler(variant: variant)
        var counts = [Int](repeating: 0, count: Self.vocab * Self.vocab)
        var drafted = 0
        let groupSize = 16
        for g in 0..<groups {
            history?.setPolicyVersion(UInt64(g / 50))
            let requests = (0..<groupSize).map { i -> GenerationRequest in
                var p = params
                p.seed = UInt64(g * groupSize + i) &* 7919 &+ 17
                return GenerationRequest(prompt: prompt, maxTokens: 4, sampling: p)
            }
            for out in try generator.generateBatch(requests) {
                counts[out.result.tokens[0] * Self.vocab + out.result.tokens[1]] += 1
            }
            drafted += generator.lastReport.overall.draftTokens
        }
        return (counts, drafted)
    }

    @Test func historyAndGroupDraftingKeepTheJointLaw() throws {
        let history = RolloutHistory(maxNgram: 4, capacityTokens: 512, maxPolicyAge: 2)
        let (counts, drafted) = try groupCounts(variant: .exact, history: history, groups: 500)
        #expect(drafted > 12_000, "history drafted only \(drafted) tokens: the test would not exercise it")
        #expect(history.documentCount > 0)
        let (g, critical) = LosslessnessTests.gTest(counts: counts, expected: exactJoint(SamplingParameters(temperature: 1)))
        #expect(g < critical, "with history: G = \(g), critical \(critical)")
    }

    @Test func aBrokenVerifierIsCaughtThroughHistoryDrafts() throws {
        let history = RolloutHistory(maxNgram: 4, capacityTokens: 512, maxPolicyAge: 2)
        let (counts, _) = try groupCounts(variant: .resampleFromTarget, history: history, groups: 150)
        let (g, critical) = LosslessnessTests.gTest(counts: counts, expected: exactJoint(SamplingParameters(temperature: 1)))
        #expect(g > critical, "the broken verifier passed with history drafts: G = \(g), critical \(critical)")
    }
}

import Testing
import Foundation
import RollspecModel
import RollspecTesting
@testable import RollspecSpeculation

@Suite struct ControllerTests {
    func state(alpha: Double, proposer: ProposerKind = .draft) -> SpeculationController.SequenceState {
        var s = SpeculationController.SequenceState()
        s.acceptance[proposer] = alpha
        return s
    }

    @Test func expectedTokensFollowsTheGeometricSeries() {
        #expect(SpeculationController.expectedTokens(k: 0, alpha: 0.5) == 1)
        #expect(abs(SpeculationController.expectedTokens(k: 3, alpha: 0.5) - 1.875) < 1e-12)
        #expect(SpeculationController.expectedTokens(k: 4, alpha: 1) == 5)
    }

    @Test func lookaheadGrowsWithAcceptanceAndStopsWhenItDoesNotPay() {
        var c = SpeculationController(maxLookahead: 8)
        c.verifySlope = 0.05
        c.draftCost[.draft] = 0.2
        let low = c.lookahead(for: .draft, state: state(alpha: 0.1))
        let mid = c.lookahead(for: .draft, state: state(alpha: 0.6))
        let high = c.lookahead(for: .draft, state: state(alpha: 0.95))
        #expect(low == 0, "a draft that is almost always wrong should not be used")
        #expect(mid > 0 && high > mid)
    }

    @Test func runningAcceptanceEstimatesThePerTokenRateOfTheGeometricModel() {
        // A draft whose every token is accepted with probability 0.5, drafting 4 at a time,
        // has accepted / drafted ≈ 0.23 but per-token α = 0.5: the estimate must converge to α.
        var c = SpeculationController(maxLookahead: 4)
        c.smoothing = 0.01
        c.guardrailWindow = 1_000_000
        var s = state(alpha: 0.7)
        var rng = RandomSource(seed: 3)
        for _ in 0..<20_000 {
            var accepted = 0
            while accepted < 4 && rng.nextUnit() < 0.5 { accepted += 1 }
            c.update(&s, proposer: .draft, drafted: 4, accepted: accepted, emitted: accepted + 1,
                     seconds: 0.01, plainStepSeconds: 0.01)
        }
        #expect(abs(s.acceptance[.draft]! - 0.5) < 0.06, "estimate \(s.acceptance[.draft]!)")
    }

    @Test func largeBatchesSpeculateLess() {
        // The cost model's relative slope tends to 1 as the batch grows.
        var model = CostModel()
        for n in [8, 16, 24, 32, 40] { model.observe(tokens: n, seconds: 0.010 + 0.001 * Double(n)) }
        let small = model.verifySlope(batch: 1)!, large = model.verifySlope(batch: 32)!
        #expect(abs(small - 0.001 / 0.011) < 1e-6)
        #expect(large > 0.7)
        var c = SpeculationController(maxLookahead: 8)
        c.verifySlope = small
        let kSmall = c.lookahead(for: .suffix, state: state(alpha: 0.6, proposer: .suffix))
        c.verifySlope = large
        let kLarge = c.lookahead(for: .suffix, state: state(alpha: 0.6, proposer: .suffix))
        #expect(kSmall > kLarge)
    }

    @Test func theSlopeFollowsAPassCostWhereItBends() {
        // One-row steps of B sequences, bf16, one thread, context 100 (`rollspec bench decode
        // --threads 1 --sequences 4,8,16,32,64 --batch-widths 2,3`, 2026-12-06): flat to 16
        // rows, then steep. In the same run a second row for each of 8 sequences cost 1.11× their
        // one-row step, 0.11 of a sequence's share; for each of 32 sequences 1.57×, 0.57. A
        // line through these steps (the model before it read sizes) priced the first at 0.35.
        var model = CostModel()
        for (n, ms) in [(1, 11.8), (4, 18.8), (8, 19.1), (16, 21.9), (32, 37.4), (64, 65.4)] {
            model.observe(tokens: n, seconds: ms / 1000)
        }
        let at8 = model.verifySlope(batch: 8)!, at32 = model.verifySlope(batch: 32)!
        #expect(at8 < 0.2, "slope at 8 sequences \(at8)")
        #expect(at32 > 0.5, "slope at 32 sequences \(at32)")
        // A suffix draft accepted 0.3 of the time then pays with 8 sequences live, not with 32.
        var c = SpeculationController(maxLookahead: 4)
        c.verifySlope = at8
        #expect(c.lookahead(for: .suffix, state: state(alpha: 0.3, proposer: .suffix)) >= 1)
        c.verifySlope = at32
        #expect(c.lookahead(for: .suffix, state: state(alpha: 0.3, proposer: .suffix)) == 0)
    }

    @Test func treesGrowAsTheBatchEmpties() {
        // The same measured pass times as above: a full batch of 32 pays for a bare chain, one
        // sequence left alone for 1 + 1/slope rows.
        var model = CostModel()
        for n in [8, 16, 24, 32, 40] { model.observe(tokens: n, seconds: 0.010 + 0.001 * Double(n)) }
        var c = SpeculationController(maxLookahead: 4)
        let rows = [32, 16, 4, 1].map { batch -> Int in
            c.verifySlope = model.verifySlope(batch: batch)!
            return c.treeRows(lookahead: 1)
        }
        #expect(rows[0] == 2 && rows[1] == 2 && rows[2] == 4 && (11...12).contains(rows[3]), "\(rows)")
        #expect(zip(rows, rows.dropFirst()).allSatisfy { $0 <= $1 })
        // Never fewer rows than the chain itself needs.
        c.verifySlope = 5
        #expect(c.treeRows(lookahead: 4) == 5)
        // And the shape a proposer then builds is cut to that budget, down to a bare chain.
        #expect(DraftTreeShape.shaped(rows: 8, extendThreshold: 0.3).limited(toRows: 4) == .shaped(rows: 4, extendThreshold: 0.3))
        #expect(DraftTreeShape.shaped(rows: 8, extendThreshold: 0.3).limited(toRows: 1) == .shaped(rows: 2, extendThreshold: 0.3))
        #expect(DraftTreeShape.fixed([2, 2]).limited(toRows: 2) == .fixed([2, 2]))
    }

    @Test func choosesTheProposerThatPromisesMore() {
        var c = SpeculationController(maxLookahead: 6)
        c.draftCost = [.draft: 0.25, .suffix: 0.01]
        var s = SpeculationController.SequenceState()
        s.acceptance = [.draft: 0.7, .suffix: 0.7]
        #expect(c.choose(among: [.draft, .suffix], state: s)?.proposer == .suffix)  // same α, cheaper
        s.acceptance = [.draft: 0.9, .suffix: 0.2]
        #expect(c.choose(among: [.draft, .suffix], state: s)?.proposer == .draft)
    }

    @Test func guardrailTurnsSpeculationOffWhenSlowerThanPlainAndRetriesLater() {
        var c = SpeculationController(maxLookahead: 4)
        c.guardrailWindow = 4
        c.coolDownSteps = 3
        var s = state(alpha: 0.9)
        // Each step: 1 token emitted in 30 ms while a plain step takes 10 ms.
        for _ in 0..<4 {
            c.update(&s, proposer: .draft, drafted: 4, accepted: 0, emitted: 1, seconds: 0.030, plainStepSeconds: 0.010)
        }
        #expect(s.coolDown == 3)
        #expect(c.lookahead(for: .draft, state: s) == 0)
        for _ in 0..<3 {
            c.update(&s, proposer: nil, drafted: 0, accepted: 0, emitted: 1, seconds: 0.010, plainStepSeconds: 0.010)
        }
        #expect(s.coolDown == 0)
        #expect(s.acceptance[.draft]! <= 0.5, "comes back cautiously")
        // Fast speculation does not trip it.
        var fast = state(alpha: 0.9)
        for _ in 0..<8 {
            c.update(&fast, proposer: .draft, drafted: 4, accepted: 4, emitted: 5, seconds: 0.012, plainStepSeconds: 0.010)
        }
        #expect(fast.coolDown == 0)
    }

    @Test func tripsStraightAfterARetryDoubleTheCoolDownAndAPassingWindowResetsIt() {
        var c = SpeculationController(maxLookahead: 4)
        c.guardrailWindow = 2
        c.coolDownSteps = 3
        c.maxCoolDownSteps = 10
        var s = state(alpha: 0.9)
        func window(slow: Bool) {
            for _ in 0..<2 {
                c.update(&s, proposer: .draft, drafted: 4, accepted: slow ? 0 : 4, emitted: slow ? 1 : 5,
                         seconds: slow ? 0.030 : 0.012, plainStepSeconds: 0.010)
            }
        }
        func coolDown() -> Int {
            let n = s.coolDown
            for _ in 0..<n { c.update(&s, proposer: nil, drafted: 0, accepted: 0, emitted: 1, seconds: 0.01, plainStepSeconds: 0.01) }
            return n
        }
        var lengths: [Int] = []
        for _ in 0..<4 {
            window(slow: true)
            lengths.append(coolDown())
        }
        #expect(lengths == [3, 6, 10, 10], "doubles up to the cap")
        window(slow: false)
        window(slow: true)
        #expect(coolDown() == 3, "a window that passed resets the cool-down")
        window(slow: false)
        window(slow: false)
        window(slow: true)
        #expect(coolDown() == 3, "a trip long after the last one starts afresh")
    }

    /// A run of rejections prices a good draft out; the plain steps that follow relax its
    /// acceptance back towards the prior it started from, so it drafts again within a few
    /// steps instead of never (as with no relaxation).
    @Test func aDraftPricedOutByBadLuckIsTriedAgainAfterAFewPlainSteps() {
        var c = SpeculationController(maxLookahead: 4)
        c.verifySlope = 0.05
        c.draftCost[.draft] = 0.1
        var s = SpeculationController.SequenceState()
        s.start(.draft, at: 0.45)
        #expect(c.lookahead(for: .draft, state: s) > 0)
        var failures = 0
        while c.lookahead(for: .draft, state: s) > 0 {
            c.update(&s, proposer: .draft, drafted: 2, accepted: 0, emitted: 1, seconds: 0.011, plainStepSeconds: 0.0095)
            failures += 1
        }
        #expect(failures <= 8, "priced out after \(failures) rejections")
        func plainStepsUntilDrafting(_ c: SpeculationController, _ s: SpeculationController.SequenceState) -> Int? {
            var s = s
            for step in 1...100 {
                c.update(&s, proposer: nil, drafted: 0, accepted: 0, emitted: 1, seconds: 0.0095, plainStepSeconds: 0.0095)
                if c.lookahead(for: .draft, state: s) > 0 { return step }
            }
            return nil
        }
        let steps = plainStepsUntilDrafting(c, s)
        #expect(steps != nil && steps! <= 3, "drafting again after \(String(describing: steps)) plain steps")
        var stuck = c
        stuck.priorRelaxation = 0
        #expect(plainStepsUntilDrafting(stuck, s) == nil, "without relaxation it never drafts again")
    }

    /// Steps of a long answer decoded with guardrail `c`, each speculative step emitting 1, 2
    /// or 3 tokens (probabilities `mix`) in `stepSeconds` against a plain step of 9.5 ms that
    /// the controller believes takes `plainEstimate`; returns the share of steps spent cooling
    /// down.
    func coolingShare(_ c: SpeculationController, mix: [Double], stepSeconds: Double,
                      plainEstimate: Double = 0.0095, steps: Int = 20_000) -> Double {
        var s = state(alpha: 0.45)
        var rng = RandomSource(seed: 11)
        var cooling = 0
        for _ in 0..<steps {
            if s.coolDown > 0 {
                cooling += 1
                c.update(&s, proposer: nil, drafted: 0, accepted: 0, emitted: 1, seconds: 0.0095, plainStepSeconds: plainEstimate)
                continue
            }
            let u = rng.nextUnit()
            let emitted = u < mix[0] ? 1 : u < mix[0] + mix[1] ? 2 : 3
            c.update(&s, proposer: .draft, drafted: 3, accepted: emitted - 1, emitted: emitted,
                     seconds: stepSeconds, plainStepSeconds: plainEstimate)
        }
        return Double(cooling) / Double(steps)
    }

    /// What SmolLM2 with its EAGLE draft sees at T = 1: 1.62 tokens a 12 ms step against a
    /// 9.5 ms plain one, 1.28× plain on average, with as much luck in each step as sampling
    /// gives. The guardrail must leave such a draft alone, even when its estimate of a plain
    /// step is 15% short. A window of 8 that trips whenever its mean falls below plain does
    /// not (it cools down 16% of the time here); and a draft that does not pay must still be
    /// cut off.
    @Test func guardrailLeavesADraftThatPaysAtTemperatureOneAloneAndCutsOffOneThatDoesNot() {
        let pays = [0.48, 0.42, 0.10]
        let c = SpeculationController(maxLookahead: 4)
        let share = coolingShare(c, mix: pays, stepSeconds: 0.012)
        #expect(share < 0.01, "cooling down \(share) of the steps of a draft 1.28× faster than plain")
        let misjudged = coolingShare(c, mix: pays, stepSeconds: 0.012, plainEstimate: 0.0095 * 0.85)
        #expect(misjudged < 0.02, "cooling down \(misjudged) of the steps when plain looks 15% faster than it is")
        var naive = c
        naive.guardrailWindow = 8
        naive.guardrailConfidence = 0
        #expect(coolingShare(naive, mix: pays, stepSeconds: 0.012) > 0.05, "the simulation can tell a naive guardrail")
        // Emitting 1.62 tokens per 20 ms step is 0.77× plain: mostly off, however long it runs.
        let slow = coolingShare(c, mix: pays, stepSeconds: 0.020)
        #expect(slow > 0.8, "cooling down only \(slow) of the steps of a draft slower than plain")
    }
}

@Suite struct FixedControllerTests {
    @Test func fixedAlwaysDraftsTheFullLookaheadWithTheFirstProposer() {
        var c = SpeculationController(maxLookahead: 3)
        c.isFixed = true
        c.verifySlope = 10  // a cost model would never draft at this price
        var state = SpeculationController.SequenceState()
        state.acceptance = [.draft: 0, .suffix: 1]
        state.coolDown = 5
        #expect(c.choose(among: [.draft, .suffix], state: state)! == (ProposerKind.draft, 3))
        c.update(&state, proposer: .draft, drafted: 3, accepted: 0, emitted: 1, seconds: 1, plainStepSeconds: 1e-6)
        #expect(c.choose(among: [.draft, .suffix], state: state)! == (ProposerKind.draft, 3))
        var adaptive = c
        adaptive.isFixed = false
        #expect(adaptive.choose(among: [.draft, .suffix], state: SpeculationController.SequenceState()) == nil)
    }
}


/// The controller times drafts from real runs: a draft model's first draft of a sequence also
/// reads the whole prompt, and that one-off must not price the draft out for the rest.
@Suite struct DraftTimingTests {
    /// Drafts the target's own greedy continuation (always accepted); its first draft of a
    /// sequence is slow, as a draft model's prefill is.
    final class SlowStartOracle: Proposer {
        let kind = ProposerKind.draft
        let prompt: [Int], reference: [Int]
        var calls = 0
        init(prompt: [Int], reference: [Int]) { self.prompt = prompt; self.reference = reference }
        func begin(prompt: [Int]) { calls = 0 }
        func propose(context: [Int], maxTokens: Int, sampling: SamplingParameters, random: inout RandomSource) -> Draft {
            calls += 1
            if calls == 1 { usleep(100_000) }
            let next = context.count - prompt.count
            return Draft(tokens: Array(reference.dropFirst(next).prefix(maxTokens)), proposer: kind)
        }
    }

    @Test func aSlowFirstDraftDoesNotPriceTheDraftOut() throws {
        let target = TinyModels.randomModel(config: TinyModels.llamaConfig(vocab: 48, hidden: 32, layers: 2), seed: 5)
        let prompt = [1, 5, 9, 2]
        let request = GenerationRequest(prompt: prompt, maxTokens: 60)
        let reference = try Generator(model: target).generate(request).tokens
        let generator = SpeculativeGenerator(model: target, controller: SpeculationController(maxLookahead: 4)) {
            [SlowStartOracle(prompt: prompt, reference: reference)]
        }
        let out = try generator.generate(request)
        #expect(out.tokens == reference)
        // Charged to its tokens, 100 ms would cost thousands of plain steps each: one draft, then none.
        #expect(generator.lastReport.overall.drafts >= 8, "drafts: \(generator.lastReport.overall.drafts)")
    }
}

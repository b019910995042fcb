import Foundation
import Testing
import RollspecKernels
import RollspecModel
import RollspecTesting
@testable import RollspecSpeculation

/// The feature-level (EAGLE) draft: the generator hands the target's features over exactly,
/// speculation with it stays lossless, and its checkpoint round-trips.
@Suite struct FeatureDraftTests {
    let target = TinyModels.randomModel(config: TinyModels.llamaConfig(vocab: 48, hidden: 32, layers: 2), seed: 5)

    /// The target's features of `tokens`, from one plain forward over all of them.
    func referenceFeatures(_ tokens: [Int]) -> [Float] {
        let out = target.forward([ForwardSegment(tokens: tokens, cache: target.makeCache(capacity: tokens.count))],
                                 logits: .last, features: true)
        return out.features!.array
    }

    /// Records every feature it is given and proposes a fixed guess, so that verification
    /// accepts some tokens and rejects others.
    final class Spy: Proposer, TargetFeatureConsumer {
        let kind = ProposerKind.draft
        var features: [Float] = []
        func begin(prompt: [Int]) { features = [] }
        func observeTargetFeatures(_ rows: UnsafePointer<Float>, count: Int) {
            features += UnsafeBufferPointer(start: rows, count: count * 32)
        }
        func propose(context: [Int], maxTokens: Int, sampling: SamplingParameters, random: inout RandomSource) -> Draft {
            Draft(tokens: Array([context.last!, 3, 7, 1].prefix(maxTokens)), proposer: kind)
        }
    }

    @Test func proposersGetTheTargetsFeaturesOfEveryPositionButThePendingOne() throws {
        var spies: [Spy] = []
        let generator = SpeculativeGenerator(model: target, controller: SpeculationController(maxLookahead: 3, minLookahead: 3)) {
            let spy = Spy(); spies.append(spy); return [spy]
        }
        generator.recordFeatures = true
        // Two requests share a prompt (one prefill, a forked cache), one has its own.
        let prompts = [[1, 5, 9, 2], [1, 5, 9, 2], [4, 4]]
        let requests = prompts.enumerated().map { i, p in
            GenerationRequest(prompt: p, maxTokens: 12, sampling: SamplingParameters(temperature: 1, seed: UInt64(i)))
        }
        let outputs = try generator.generateBatch(requests)
        #expect(generator.lastReport.overall.acceptedTokens > 0)
        #expect(generator.lastReport.overall.acceptedTokens < generator.lastReport.overall.draftTokens)
        for (i, out) in outputs.enumerated() {
            let context = prompts[i] + out.result.tokens
            let reference = referenceFeatures(Array(context.dropLast()))
            // Each spy saw the features its sequence's positions had, in order, exactly once.
            #expect(spies[i].features.count == reference.count)
            #expect(out.features.count == reference.count)
            let worst = zip(spies[i].features, reference).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-4, "request \(i): features differ from a plain forward by \(worst)")
            #expect(out.features == spies[i].features)
        }
    }

    /// Drafts a wrong first token and offers the target's own greedy token as an alternative
    /// (it runs the target itself), recording the features it is given.
    final class AlternativeSpy: Proposer, TargetFeatureConsumer {
        let kind = ProposerKind.draft
        let oracle: LlamaModel
        var features: [Float] = []
        init(oracle: LlamaModel) { self.oracle = oracle }
        func begin(prompt: [Int]) { features = [] }
        func observeTargetFeatures(_ rows: UnsafePointer<Float>, count: Int) {
            features += UnsafeBufferPointer(start: rows, count: count * 32)
        }
        func propose(context: [Int], maxTokens: Int, sampling: SamplingParameters, random: inout RandomSource) -> Draft {
            let logits = oracle.verify(context, cache: oracle.makeCache(capacity: context.count)).rowArray(context.count - 1)
            let right = logits.indices.max { logits[$0] < logits[$1] }!
            let wrong = (right + 1) % 48
            var d = Draft(tokens: Array([wrong, 5, 6].prefix(maxTokens)), proposer: kind)
            d.alternatives = [Alternative(position: 1, token: (right + 2) % 48), Alternative(position: 1, token: right)]
            return d
        }
    }

    @Test func aRightAlternativeIsAcceptedWithTheTokenAfterIt() throws {
        var spies: [AlternativeSpy] = []
        let oracle = target
        let generator = SpeculativeGenerator(model: target, controller: SpeculationController(maxLookahead: 3, minLookahead: 3)) {
            let spy = AlternativeSpy(oracle: oracle); spies.append(spy); return [spy]
        }
        generator.controller.isFixed = true
        let plain = Generator(model: target)
        let prompts = [[1, 5, 9, 2], [4, 4]]
        let outputs = try generator.generateBatch(prompts.map { GenerationRequest(prompt: $0, maxTokens: 15) })
        let report = generator.lastReport.overall
        // Every step accepts exactly its alternative and emits two tokens.
        #expect(report.drafts > 0 && report.acceptedTokens == report.drafts)
        for (i, out) in outputs.enumerated() {
            let reference = try plain.generate(GenerationRequest(prompt: prompts[i], maxTokens: 15))
            #expect(out.result.tokens == reference.tokens)
            #expect(zip(out.result.logprobs, reference.logprobs).allSatisfy { abs($0 - $1) < 1e-4 })
            let f = referenceFeatures(Array((prompts[i] + out.result.tokens).dropLast()))
            #expect(spies[i].features.count == f.count)
            let worst = zip(spies[i].features, f).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-4, "request \(i): features differ by \(worst)")
        }
    }

    /// Greedy speculation with `proposer` (fixed lookahead 4) gives plain greedy's tokens and
    /// logprobs on a few prompts, and drafts something.
    func expectGreedyEqualsPlain(_ proposer: @escaping () -> Proposer) throws {
        let plain = Generator(model: target)
        var controller = SpeculationController(maxLookahead: 4)
        controller.isFixed = true
        let spec = SpeculativeGenerator(model: target, controller: controller) { [proposer()] }
        for prompt in [[1, 2, 3], [7], [9, 9, 9, 9, 9, 4]] {
            let request = GenerationRequest(prompt: prompt, maxTokens: 24)
            let a = try plain.generate(request), b = try spec.generate(request)
            #expect(a.tokens == b.tokens)
            #expect(zip(a.logprobs, b.logprobs).allSatisfy { abs($0 - $1) < 1e-4 })
            if prompt.count > 1 { #expect(spec.lastReport.overall.draftTokens > 0) }
        }
    }

    @Test func greedySpeculationWithAFeatureDraftEqualsPlainGreedy() throws {
        let draft = FeatureDraftModel(weights: TinyModels.randomFeatureDraft(target: target.weights, seed: 9))
        try expectGreedyEqualsPlain { FeatureDraftProposer(model: draft, tree: .fixed([3, 2])) }
    }

    @Test func aShapedTreeWithABFloat16DraftEqualsPlainGreedy() throws {
        let weights = TinyModels.randomFeatureDraft(target: target.weights, seed: 9)
        let draft = FeatureDraftModel(weights: weights, precision: .bfloat16)
        try expectGreedyEqualsPlain { FeatureDraftProposer(model: draft, tree: .shaped(rows: 7, extendThreshold: 0.05)) }
        // The rounded copies change the draft's logits only by bf16 rounding.
        let features = (0..<(3 * 32)).map { Float($0 % 7) / 7 - 0.4 }
        let exact = FeatureDraftModel(weights: weights)
        let a = exact.forward(tokens: [1, 2, 3], features: features, cache: exact.makeCache())
        let b = draft.forward(tokens: [1, 2, 3], features: features, cache: draft.makeCache())
        let scale = a.buffer.array.map(abs).max()!
        let worst = zip(a.buffer.array, b.buffer.array).map { abs($0 - $1) }.max()!
        #expect(worst > 0 && worst < 0.05 * scale, "bf16 draft logits differ by \(worst) (scale \(scale))")
    }

    @Test func aShapedTreeSpendsItsRowsByTheDraftsProbabilities() {
        let draft = FeatureDraftModel(weights: TinyModels.randomFeatureDraft(target: target.weights, seed: 4))
        let context = [1, 5, 9, 2, 7]
        let f = referenceFeatures(Array(context.dropLast()))
        func propose(rows: Int, extend: Float, maxTokens: Int) -> Draft {
            let proposer = FeatureDraftProposer(model: draft, tree: .shaped(rows: rows, extendThreshold: extend))
            proposer.begin(prompt: context)
            f.withUnsafeBufferPointer { proposer.observeTargetFeatures($0.baseAddress!, count: context.count - 1) }
            var random = RandomSource(seed: 1)
            return proposer.propose(context: context, maxTokens: maxTokens, sampling: .greedy, random: &random)
        }
        // A chain certain to be doubted stops at one token; every other row is its runner-up,
        // the draft's next likeliest tokens in order.
        let doubtful = propose(rows: 6, extend: 1, maxTokens: 4)
        #expect(doubtful.tokens == draftFromScratch(draft, context, count: 1))
        #expect(doubtful.alternatives.count == 4 && doubtful.alternatives.allSatisfy { $0.position == 1 })
        let cache = draft.makeCache()
        let logits = draft.forward(tokens: Array(context[1...]), features: f, cache: cache).rowArray(0)
        let ranked = logits.indices.sorted { logits[$0] > logits[$1] }
        #expect(doubtful.alternatives.map(\.token) == Array(ranked[1...4]))
        // A chain always trusted grows to the lookahead, the rest of the rows go to runner-ups.
        let trusted = propose(rows: 6, extend: 0, maxTokens: 3)
        #expect(trusted.tokens == draftFromScratch(draft, context, count: 3))
        #expect(trusted.alternatives.count == 2)
        // Without runner-up rows left, the chain alone fills the tree.
        let long = propose(rows: 4, extend: 0, maxTokens: 8)
        #expect(long.tokens.count == 3 && long.alternatives.isEmpty)
        // Sampling (T > 0) shapes a tree too, from draws without replacement: at each depth the
        // candidates are distinct and differ from the chain's token; the rows add up.
        let proposer = FeatureDraftProposer(model: draft, tree: .shaped(rows: 6, extendThreshold: 0))
        proposer.begin(prompt: context)
        f.withUnsafeBufferPointer { proposer.observeTargetFeatures($0.baseAddress!, count: context.count - 1) }
        var random = RandomSource(seed: 1)
        let sampled = proposer.propose(context: context, maxTokens: 3, sampling: SamplingParameters(temperature: 1, seed: 1), random: &random)
        #expect(sampled.tokens.count == 3 && sampled.alternatives.count == 2)
        for depth in 1...3 {
            let here = sampled.alternatives.filter { $0.position == depth }.map(\.token)
            #expect(Set(here).count == here.count && !here.contains(sampled.tokens[depth - 1]))
        }
    }

    /// What the proposer should draft for `context`, computed from scratch: every pair
    /// `(context[p + 1], f_p)` in one fresh pass, then greedy steps on the draft's own guesses.
    func draftFromScratch(_ draft: FeatureDraftModel, _ context: [Int], count: Int) -> [Int] {
        let f = referenceFeatures(Array(context.dropLast()))
        let cache = draft.makeCache()
        var out = draft.forward(tokens: Array(context[1...]), features: f, cache: cache)
        var tokens: [Int] = []
        while true {
            let q = TokenDistribution(logits: out.row(0), vocabSize: 48, parameters: .greedy)
            tokens.append(Int(q.tokens[0]))
            if tokens.count == count { return tokens }
            let guess = Array(out.features!.array.suffix(32))
            out = draft.forward(tokens: [tokens.last!], features: guess, cache: cache)
        }
    }

    @Test func theProposerPairsEachTokenWithTheFeatureBeforeIt() {
        // Round after round (catch-up on new tokens, guesses dropped and rebuilt from the
        // target's features) the proposer drafts what a from-scratch pass over the same pairs
        // gives; an off-by-one in tokens or features, or a kept guess, changes the drafts.
        let draft = FeatureDraftModel(weights: TinyModels.randomFeatureDraft(target: target.weights, seed: 4))
        let proposer = FeatureDraftProposer(model: draft)
        var context = [1, 5, 9, 2, 7]
        proposer.begin(prompt: context)
        var given = 0
        var random = RandomSource(seed: 1)
        for round in 0..<4 {
            let f = referenceFeatures(Array(context.dropLast()))
            f.withUnsafeBufferPointer { proposer.observeTargetFeatures($0.baseAddress! + given * 32, count: context.count - 1 - given) }
            given = context.count - 1
            let d = proposer.propose(context: context, maxTokens: 3, sampling: .greedy, random: &random)
            #expect(d.tokens == draftFromScratch(draft, context, count: 3), "round \(round)")
            // Accept the first `round % 3` drafted tokens, then a bonus token of our choosing.
            context += Array(d.tokens.prefix(round % 3)) + [(round * 11 + 3) % 48]
        }
    }

    @Test func sequencesDraftingTogetherDraftWhatEachDraftsAlone() {
        // Three sequences of different lengths share one draft and draft in one pass per
        // depth. Greedy, each gets the chain a from-scratch pass over its own pairs gives, of
        // its own length. At T = 1 with a shaped tree each gets the tokens, candidates and
        // distributions it gets drafting alone with the same random stream, and leaves that
        // stream where drafting alone leaves it. A segment reading another's rows (logits,
        // guessed features or cache) changes them.
        let draft = FeatureDraftModel(weights: TinyModels.randomFeatureDraft(target: target.weights, seed: 4))
        let contexts = [[1, 5, 9, 2, 7], [3, 8], [4, 4, 10, 11, 12, 13, 2]]
        let lengths = [3, 1, 4]
        func proposers(_ tree: DraftTreeShape) -> [FeatureDraftProposer] {
            contexts.map { context in
                let p = FeatureDraftProposer(model: draft, tree: tree)
                p.begin(prompt: context)
                let f = referenceFeatures(Array(context.dropLast()))
                f.withUnsafeBufferPointer { p.observeTargetFeatures($0.baseAddress!, count: context.count - 1) }
                return p
            }
        }
        func requests(_ ps: [FeatureDraftProposer], _ sampling: SamplingParameters) -> [DraftRequest] {
            ps.indices.map { .init(proposer: ps[$0], context: contexts[$0], maxTokens: lengths[$0], sampling: sampling) }
        }
        var randoms = contexts.map { _ in RandomSource(seed: 1) }
        let greedy = FeatureDraftProposer.propose(together: requests(proposers(.chain), .greedy), random: &randoms)
        for r in contexts.indices {
            #expect(greedy[r].tokens == draftFromScratch(draft, contexts[r], count: lengths[r]), "sequence \(r)")
        }

        let sampling = SamplingParameters(temperature: 1, seed: 1)
        let shape = DraftTreeShape.shaped(rows: 6, extendThreshold: 0)
        var together = contexts.indices.map { RandomSource(seed: UInt64(10 + $0)) }
        let drafts = FeatureDraftProposer.propose(together: requests(proposers(shape), sampling), random: &together)
        let alone = proposers(shape)
        for r in contexts.indices {
            var random = RandomSource(seed: UInt64(10 + r))
            let d = alone[r].propose(context: contexts[r], maxTokens: lengths[r], sampling: sampling, random: &random)
            #expect(d.tokens.count == lengths[r] && !d.alternatives.isEmpty, "sequence \(r)")
            #expect(drafts[r] == d, "sequence \(r)")
            #expect(together[r].nextUnit() == random.nextUnit(), "sequence \(r)")
        }
    }

    @Test func aRestrictedHeadDraftsItsGreedyTreeOverItsOwnTokens() {
        // The proposer ranks only the head's tokens; the model's own logits over all 48 (−∞
        // outside the head) must give the same chain and runner-ups, as token ids.
        let ids = Array(stride(from: 1, to: 48, by: 3))
        let draft = FeatureDraftModel(weights: TinyModels.randomFeatureDraft(target: target.weights, seed: 4), outputVocabulary: ids)
        let proposer = FeatureDraftProposer(model: draft, tree: .fixed([3]))
        let context = [1, 5, 9, 2, 7]
        proposer.begin(prompt: context)
        let f = referenceFeatures(Array(context.dropLast()))
        f.withUnsafeBufferPointer { proposer.observeTargetFeatures($0.baseAddress!, count: context.count - 1) }
        var random = RandomSource(seed: 1)
        let d = proposer.propose(context: context, maxTokens: 2, sampling: .greedy, random: &random)
        #expect(d.tokens == draftFromScratch(draft, context, count: 2))
        let out = draft.forward(tokens: Array(context[1...]), features: f, cache: draft.makeCache())
        let row = out.row(0)
        let ranked = (0..<48).sorted { row[$0] > row[$1] }
        #expect(d.alternatives.map(\.token) == Array(ranked[1...3]) && d.alternatives.allSatisfy { $0.position == 1 })
        #expect((d.tokens + d.alternatives.map(\.token)).allSatisfy(ids.contains))
    }

    @Test func checkpointRoundTripsAndBadFilesAreRefused() throws {
        let weights = TinyModels.randomFeatureDraft(target: target.weights, seed: 3)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("feature-draft-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try weights.save(to: dir)
        #expect(FeatureDraftWeights.isFeatureDraft(path: dir.path))
        let loaded = try FeatureDraftWeights.load(directory: dir, target: target.weights)
        let a = FeatureDraftModel(weights: weights), b = FeatureDraftModel(weights: loaded)
        let features = (0..<(3 * 32)).map { Float($0 % 7) / 7 }
        let la = a.forward(tokens: [1, 2, 3], features: features, cache: a.makeCache())
        let lb = b.forward(tokens: [1, 2, 3], features: features, cache: b.makeCache())
        #expect(la.buffer.array == lb.buffer.array)

        // A target of another width is refused with the reason.
        let other = TinyModels.randomModel(config: TinyModels.llamaConfig(vocab: 48, hidden: 16, layers: 2), seed: 1)
        #expect(throws: ModelError.self) { try FeatureDraftWeights.load(directory: dir, target: other.weights) }
        // A checkpoint missing fc.bias is refused, naming it.
        let file = dir.appendingPathComponent("model.safetensors")
        try SafeTensorsWriter.write([(name: "fc.weight", shape: [32, 64], data: weights.fc)], to: file)
        do {
            _ = try FeatureDraftWeights.load(directory: dir, target: target.weights)
            Issue.record("a checkpoint without fc.bias loaded")
        } catch {
            #expect("\(error)".contains("fc.bias"))
        }
    }
}

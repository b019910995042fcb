import Foundation
import Testing
import RollspecModel
import RollspecTesting
@testable import RollspecSpeculation

/// Losslessness through the whole speculative generator — real tiny-vocabulary Llama models,
/// their KV caches, the draft proposer's cache resync, batching — not only the sampler: the
/// first two tokens of many independent samples follow the target model's exact joint law.
@Suite struct EndToEndLosslessnessTests {
    static let vocab = 6
    var target = Self.flattened(TinyModels.llamaConfig(vocab: vocab, hidden: 16, layers: 1, heads: 2, kvHeads: 1, ffn: 16),
                                seed: 21, logitScale: 0.08)
    let draft = Self.flattened(TinyModels.llamaConfig(vocab: vocab, hidden: 8, layers: 1, heads: 2, kvHeads: 1, ffn: 8),
                               seed: 22, logitScale: 0.2)

    /// A random model whose logits are scaled down (through the final norm's weight), so its
    /// distributions are spread over several tokens — random tiny models are nearly greedy.
    static func flattened(_ config: LlamaConfig, seed: UInt64, logitScale: Float) -> LlamaModel {
        let w = TinyModels.randomWeights(config: config, seed: seed)
        for i in 0..<w.finalNorm.count { w.finalNorm[i] *= logitScale }
        return LlamaModel(weights: w)
    }
    let prompt = [1, 4, 2]

    func exactJoint(_ params: SamplingParameters) -> [Double] {
        func dist(_ tokens: [Int]) -> TokenDistribution {
            let logits = target.verify(tokens, cache: target.makeCache())
            return TokenDistribution(logits: logits.row(tokens.count - 1), vocabSize: Self.vocab, parameters: params)
        }
        let first = dist(prompt)
        var joint = [Double](repeating: 0, count: Self.vocab * Self.vocab)
        for a in 0..<Self.vocab where first.probability(of: a) > 0 {
            let second = dist(prompt + [a])
            for b in 0..<Self.vocab {
                joint[a * Self.vocab + b] = Double(first.probability(of: a)) * Double(second.probability(of: b))
            }
        }
        return joint
    }

    func sampleCounts(_ params: SamplingParameters, variant: RejectionSampler.Variant, n: Int,
                      proposer: (() -> Proposer)? = nil) throws -> [Int] {
        let draft = self.draft
        // Always draft: an adaptive controller would price drafting out for a batch of thousands.
        var controller = SpeculationController(maxLookahead: 2, minLookahead: 2)
        controller.isFixed = true
        let generator = SpeculativeGenerator(model: target, controller: controller) {
            [proposer?() ?? DraftModelProposer(model: draft)]
        }
        generator.rejectionSampler = RejectionSampler(variant: variant)
        var p = params
        let requests = (0..<n).map { i -> GenerationRequest in
            p.seed = UInt64(i) &* 7919 &+ 17
            return GenerationRequest(prompt: prompt, maxTokens: 2, sampling: p)
        }
        var counts = [Int](repeating: 0, count: Self.vocab * Self.vocab)
        for out in try generator.generateBatch(requests) {
            counts[out.result.tokens[0] * Self.vocab + out.result.tokens[1]] += 1
        }
        #expect(generator.lastReport.overall.draftTokens > 0)
        return counts
    }

    @Test(arguments: [SamplingParameters(temperature: 1), SamplingParameters(temperature: 0.8, topP: 0.9)])
    func jointLawOfFirstTwoTokensIsTheTargets(params: SamplingParameters) throws {
        let counts = try sampleCounts(params, variant: .exact, n: 12_000)
        let (g, critical) = LosslessnessTests.gTest(counts: counts, expected: exactJoint(params))
        #expect(g < critical, "G = \(g), critical \(critical) (T=\(params.temperature), top-p \(params.topP))")
    }

    @Test func brokenResidualIsCaughtEndToEnd() throws {
        let params = SamplingParameters(temperature: 1)
        let counts = try sampleCounts(params, variant: .resampleFromTarget, n: 12_000)
        let (g, critical) = LosslessnessTests.gTest(counts: counts, expected: exactJoint(params))
        #expect(g > critical, "broken residual passed: G = \(g), critical \(critical)")
    }
}

/// Token trees at T > 0: each depth's candidates drawn from the draft without replacement and
/// verified by recursive rejection sampling, through the target's extra rows and the cache's
/// committed alternative. The first two tokens still follow the target's joint law, for a
/// token-level draft with fixed branching and a feature-level draft with a shaped tree, its head
/// over the whole vocabulary or over part of it.
extension EndToEndLosslessnessTests {
    enum TreeDraft: CaseIterable { case tokensFixed, featuresShaped, featuresRestrictedHead }

    func treeProposer(_ kind: TreeDraft) -> () -> Proposer {
        switch kind {
        case .tokensFixed:
            let draft = self.draft
            return { DraftModelProposer(model: draft, tree: .fixed([2, 2])) }
        case .featuresShaped:
            let model = FeatureDraftModel(weights: TinyModels.randomFeatureDraft(target: target.weights, seed: 23))
            return { FeatureDraftProposer(model: model, tree: .shaped(rows: 5, extendThreshold: 0)) }
        case .featuresRestrictedHead:
            // A head over 4 of the 6 tokens (FR-Spec): the target's mass on the other two is
            // reached only through the residual.
            let model = FeatureDraftModel(weights: TinyModels.randomFeatureDraft(target: target.weights, seed: 23),
                                          outputVocabulary: [0, 1, 2, 4])
            return { FeatureDraftProposer(model: model, tree: .shaped(rows: 5, extendThreshold: 0)) }
        }
    }

    @Test(arguments: TreeDraft.allCases, [SamplingParameters(temperature: 1), SamplingParameters(temperature: 0.8, topP: 0.9)])
    func treesKeepTheJointLaw(kind: TreeDraft, params: SamplingParameters) throws {
        let counts = try sampleCounts(params, variant: .exact, n: 12_000, proposer: treeProposer(kind))
        let (g, critical) = LosslessnessTests.gTest(counts: counts, expected: exactJoint(params))
        #expect(g < critical, "\(kind): G = \(g), critical \(critical) (T=\(params.temperature), top-p \(params.topP))")
    }

    @Test(arguments: TreeDraft.allCases)
    func aTreeThatKeepsTheRejectedCandidatesMassIsCaught(kind: TreeDraft) throws {
        let params = SamplingParameters(temperature: 1)
        let counts = try sampleCounts(params, variant: .keepTargetOnRejection, n: 12_000, proposer: treeProposer(kind))
        let (g, critical) = LosslessnessTests.gTest(counts: counts, expected: exactJoint(params))
        #expect(g > critical, "\(kind): the broken tree passed: G = \(g), critical \(critical)")
    }
}

/// A bfloat16 policy: the generator samples from the model of the rounded weights on every
/// path (single rows through the bf16 kernel, the batch of thousands through the float kernels
/// on the rounded copy), against a joint computed by a float model of weights rounded apart.
extension EndToEndLosslessnessTests {
    @Test(arguments: [SamplingParameters(temperature: 1), SamplingParameters(temperature: 0.8, topP: 0.9)])
    func aBFloat16PolicyKeepsItsOwnLaw(params: SamplingParameters) throws {
        let rounded = target.weights.roundedToBFloat16()
        var reference = self
        reference.target = LlamaModel(weights: rounded)
        var bf16 = self
        bf16.target = LlamaModel(weights: target.weights, precision: .bfloat16)
        #expect(bf16.target.weights.layers[0].wq.array == rounded.layers[0].wq.array)
        let expected = reference.exactJoint(params)
        let counts = try bf16.sampleCounts(params, variant: .exact, n: 12_000, proposer: treeProposer(.tokensFixed))
        let (g, critical) = LosslessnessTests.gTest(counts: counts, expected: expected)
        #expect(g < critical, "G = \(g), critical \(critical) (T=\(params.temperature), top-p \(params.topP))")
        // The same check catches a broken tree verifier on the bf16 path.
        let broken = try bf16.sampleCounts(params, variant: .keepTargetOnRejection, n: 12_000, proposer: treeProposer(.tokensFixed))
        let (gBroken, _) = LosslessnessTests.gTest(counts: broken, expected: expected)
        #expect(gBroken > critical, "the broken tree passed on bf16: G = \(gBroken), critical \(critical)")
    }
}

extension EndToEndLosslessnessTests {
    @Test func theTestIsNotVacuous() {
        // The target must spread its mass and the draft must disagree with it, or the G-tests
        // above would pass whatever the sampler did.
        let params = SamplingParameters(temperature: 1)
        let joint = exactJoint(params)
        #expect(joint.filter { $0 > 0.01 }.count >= 8)
        let t = target.verify(prompt, cache: target.makeCache()), d = draft.verify(prompt, cache: draft.makeCache())
        let p = TokenDistribution(logits: t.row(2), vocabSize: Self.vocab, parameters: params)
        let q = TokenDistribution(logits: d.row(2), vocabSize: Self.vocab, parameters: params)
        let tv = (0..<Self.vocab).reduce(0.0) { $0 + abs(Double(p.probability(of: $1) - q.probability(of: $1))) } / 2
        #expect(tv > 0.15, "total variation between target and draft is only \(tv)")
    }
}

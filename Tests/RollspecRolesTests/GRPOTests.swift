import Foundation
import RollspecClient
import RollspecModel
@testable import RollspecRoles
import RollspecSpeculation
import RollspecTraining
import Testing

/// Group-relative advantages on hand-computed numbers, and GRPO updates on a toy in-process
/// setup (local sampling, no bus) that must raise a tiny policy's reward.
@Suite struct GRPOTests {
    @Test func advantagesOfAGroup() {
        // mean 0.5, population std 0.5: (1 − 0.5) / 0.5 = 1, (0 − 0.5) / 0.5 = −1.
        let a = GroupAdvantages(rewards: [1, 0, 1, 0], epsilon: 0)
        #expect(a.mean == 0.5 && a.std == 0.5 && a.informative)
        #expect(a.advantages == [1, -1, 1, -1])
        // One right of four: mean 0.25, std √(3·0.0625 + 0.5625)/2 = √0.1875 ≈ 0.4330,
        // so 0.75 / 0.4330 ≈ 1.7321 for the right one and −0.25 / 0.4330 ≈ −0.5774 for the others.
        let b = GroupAdvantages(rewards: [0, 0, 1, 0], epsilon: 0)
        #expect(abs(b.std - 0.4330127) < 1e-6)
        #expect(abs(b.advantages[2] - 1.7320508) < 1e-6)
        #expect(abs(b.advantages[0] + 0.5773503) < 1e-6)
        #expect(abs(b.advantages.reduce(0, +)) < 1e-12)
        // Graded rewards 0, 0.5, 1: mean 0.5, std √(1/6) ≈ 0.4082; ε = 0.1 joins the denominator.
        let c = GroupAdvantages(rewards: [0, 0.5, 1], epsilon: 0.1)
        #expect(abs(c.advantages[0] + 0.5 / 0.5082483) < 1e-6 && c.advantages[1] == 0)
        #expect(abs(c.advantages[2] - 0.9837711) < 1e-6)
    }

    @Test func groupsWithoutVarianceContributeNothing() {
        for rewards in [[1.0, 1, 1], [0.0, 0, 0, 0], [0.5]] {
            let a = GroupAdvantages(rewards: rewards)
            #expect(!a.informative)
            #expect(a.advantages.allSatisfy { $0 == 0 })
        }
    }

    /// Samples `groupSize` responses per problem from the policy as it is now, locally with
    /// `Generator`; returns the samples of informative groups and the mean reward of all.
    static func rollouts(_ weights: LlamaWeights, task: any VerifiableTask, problems: [TaskProblem], groupSize: Int,
                         temperature: Float, seed: UInt64) throws -> (samples: [PolicySample], meanReward: Double) {
        let tokenizer = ByteTokenizer()
        let generator = Generator(model: LlamaModel(weights: weights))
        var samples: [PolicySample] = [], total = 0.0
        for (i, p) in problems.enumerated() {
            let prompt = tokenizer.encode(p.prompt)
            let outs = try (0..<groupSize).map { k in
                try generator.generate(GenerationRequest(
                    prompt: prompt, maxTokens: task.maxAnswerTokens + 2,
                    sampling: SamplingParameters(temperature: temperature, seed: seed &+ UInt64(i * 1000 + k)),
                    stopTokens: Set(task.stopTokens)))
            }
            let rewards = outs.map { task.reward(response: tokenizer.decode($0.tokens), for: p) }
            total += rewards.reduce(0, +)
            let adv = GroupAdvantages(rewards: rewards)
            guard adv.informative else { continue }
            for (o, a) in zip(outs, adv.advantages) {
                samples.append(PolicySample(promptTokens: prompt, responseTokens: o.tokens, sampleLogprobs: o.logprobs,
                                            advantage: Float(a)))
            }
        }
        return (samples, total / Double(problems.count * groupSize))
    }

    /// The built-in policy, warmed up to know the sums but sampled at temperature 2.5 (right
    /// about a third of the time): GRPO must sharpen it. Flipping the advantage's sign makes
    /// the same run fall to 0 instead (see the learner's report).
    @Test func grpoRaisesTheRewardOfATinyPolicy() throws {
        let task = ArithmeticTask()
        let temperature: Float = 2.5
        let policy = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 1)
        GRPOTrainer.warmUp(policy, format: TaskFormat(byteLevel: task), steps: 40, batchSize: 16, learningRate: 3e-3, seed: 1)
        let trainer = GRPOTrainer(weights: policy, learningRate: 3e-3, temperature: temperature)
        var rng = RandomSource(seed: 7)
        var curve: [Double] = []
        for step in 0..<12 {
            let problems = (0..<16).map { _ in task.problem(&rng) }
            let (samples, reward) = try Self.rollouts(policy, task: task, problems: problems, groupSize: 8,
                                                     temperature: temperature, seed: UInt64(step) * 7919)
            curve.append(reward)
            // nil: every group all right or all wrong, nothing to learn from this step.
            guard let stats = trainer.update(samples) else { continue }
            // The sampler's logprobs (at temperature T) are the trainer's own: the ratio starts at 1.
            #expect(stats.maxLogprobError < 1e-4 && abs(stats.meanRatio - 1) < 1e-4, "\(stats)")
        }
        let start = curve.prefix(2).reduce(0, +) / 2, end = curve.suffix(3).reduce(0, +) / 3
        print("GRPO toy reward per step:", curve.map { String(format: "%.2f", $0) }.joined(separator: " "))
        #expect(start < 0.5 && end > start + 0.2, "reward per step: \(curve)")
    }

    /// With a reference policy and β > 0, the first update has KL 0 (the policy is the reference)
    /// and a loss equal to the plain surrogate; later updates see a positive KL.
    @Test func klPenaltyStartsAtZero() throws {
        let task = ArithmeticTask()
        let policy = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 3)
        GRPOTrainer.warmUp(policy, format: TaskFormat(byteLevel: task), steps: 20, batchSize: 8, learningRate: 3e-3, seed: 3)
        let trainer = GRPOTrainer(weights: policy, learningRate: 1e-2, temperature: 2, klCoefficient: 0.1)
        var rng = RandomSource(seed: 5)
        // Any advantages will do: alternate ±1 over locally sampled responses.
        let generator = Generator(model: LlamaModel(weights: policy))
        let tokenizer = ByteTokenizer()
        let samples = try (0..<16).map { i -> PolicySample in
            let prompt = tokenizer.encode(task.problem(&rng).prompt)
            let out = try generator.generate(GenerationRequest(
                prompt: prompt, maxTokens: 4, sampling: SamplingParameters(temperature: 2, seed: UInt64(i)),
                stopTokens: Set(task.stopTokens)))
            return PolicySample(promptTokens: prompt, responseTokens: out.tokens, sampleLogprobs: out.logprobs,
                                advantage: i % 2 == 0 ? 1 : -1)
        }
        let first = try #require(trainer.update(samples))
        #expect(abs(first.meanKL) < 1e-6)
        let second = try #require(trainer.update(samples))
        #expect(second.meanKL > 0)
    }

    /// An update whose gradient is accumulated over several passes of a few samples each moves
    /// the weights as one pass over all of them does, with the same statistics.
    @Test func passesOfAnUpdateAddUpToOnePass() throws {
        let task = ArithmeticTask()
        func policy() -> LlamaWeights {
            let w = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 4)
            GRPOTrainer.warmUp(w, format: TaskFormat(byteLevel: task), steps: 10, batchSize: 8, learningRate: 3e-3, seed: 4)
            return w
        }
        let (a, b) = (policy(), policy())
        // Any advantages will do: alternate ±1 over locally sampled responses of several lengths.
        var rng = RandomSource(seed: 8)
        let generator = Generator(model: LlamaModel(weights: a))
        let samples = try (0..<16).map { i -> PolicySample in
            let prompt = ByteTokenizer().encode(task.problem(&rng).prompt)
            let out = try generator.generate(GenerationRequest(
                prompt: prompt, maxTokens: 2 + i % 5, sampling: SamplingParameters(temperature: 2.5, seed: UInt64(i)),
                stopTokens: []))
            return PolicySample(promptTokens: prompt, responseTokens: out.tokens, sampleLogprobs: out.logprobs,
                                advantage: i % 2 == 0 ? 1 : -1)
        }
        let one = try #require(GRPOTrainer(weights: a, learningRate: 1e-2, temperature: 2.5).update(samples, maxRowsPerPass: 100_000))
        let manyTrainer = GRPOTrainer(weights: b, learningRate: 1e-2, temperature: 2.5)
        let many = try #require(manyTrainer.update(samples, maxRowsPerPass: 20))
        // Passes of different sizes wrote their logits and gradients into one storage each.
        #expect(manyTrainer.logitStorage.allocations == 1 && manyTrainer.gradientStorage.allocations == 1)
        #expect(abs(one.loss - many.loss) < 1e-5 && abs(one.meanRatio - many.meanRatio) < 1e-5 && one.tokens == many.tokens)
        #expect(abs(one.gradNorm - many.gradNorm) < 1e-4 * max(1, one.gradNorm), "\(one.gradNorm) vs \(many.gradNorm)")
        // Adam's first step moves a weight by lr · g / (|g| + ε): for a gradient that cancels to
        // ~ε, float rounding of a different pass split can move it by a sizeable part of lr. So
        // the two updates are compared as vectors: their difference against the update itself.
        let w0 = policy()
        let bTensors = Dictionary(b.namedTensors.map { ($0.name, $0.buffer) }, uniquingKeysWith: { x, _ in x })
        let startTensors = Dictionary(w0.namedTensors.map { ($0.name, $0.buffer) }, uniquingKeysWith: { x, _ in x })
        var difference = 0.0, moved = 0.0, worst: Float = 0
        for (name, x) in a.namedTensors {
            let y = bTensors[name]!, x0 = startTensors[name]!
            for i in 0..<x.count {
                difference += Double(x[i] - y[i]) * Double(x[i] - y[i])
                moved += Double(x[i] - x0[i]) * Double(x[i] - x0[i])
                worst = max(worst, abs(x[i] - y[i]))
            }
        }
        let relative = (difference / moved).squareRoot()
        #expect(moved > 0 && relative < 1e-4, "the updates differ by \(relative) of their size (worst weight \(worst))")
        #expect(worst < 1e-2 * 1e-2, "a weight differs by \(worst), over a hundredth of the learning rate")
    }
}

/// One logprob of a sampled token, whichever path sampled it: plain sampling, speculative
/// decoding (chain and token tree) and the GRPO update's training forward agree on every token,
/// so the update's first importance ratio is 1.
extension GRPOTests {
    @Test func theSamplersTheSpeculatorsAndTheLearnersLogprobsAgree() throws {
        let temperature: Float = 0.7
        let policy = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 11)
        let draft = LlamaModel(weights: BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 12))
        let model = LlamaModel(weights: policy)
        let plain = Generator(model: model)
        var controller = SpeculationController(maxLookahead: 3)
        controller.isFixed = true
        let chain = SpeculativeGenerator(model: model, controller: controller) { [DraftModelProposer(model: draft)] }
        let tree = SpeculativeGenerator(model: model, controller: controller) { [DraftModelProposer(model: draft, tree: .fixed([2, 1]))] }
        let prompts = [[3, 17, 9, 40], [5, 5, 21]]
        func samples(_ generate: (GenerationRequest) throws -> GenerationResult) throws -> [PolicySample] {
            try prompts.enumerated().flatMap { i, prompt in
                try (0..<4).map { k -> PolicySample in
                    let out = try generate(GenerationRequest(prompt: prompt, maxTokens: 24,
                                                             sampling: SamplingParameters(temperature: temperature, seed: UInt64(10 * i + k))))
                    return PolicySample(promptTokens: prompt, responseTokens: out.tokens, sampleLogprobs: out.logprobs,
                                        advantage: k % 2 == 0 ? 1 : -1)
                }
            }
        }
        let paths: [(String, [PolicySample])] = [
            ("plain", try samples { try plain.generate($0) }),
            ("speculative chain", try samples { try chain.generate($0) }),
            ("speculative tree", try samples { try tree.generate($0) }),
        ]
        #expect(tree.lastReport.overall.draftTokens > 0)
        for (name, s) in paths {
            // A fresh trainer per path: the update changes the weights it scores with.
            let copy = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 11)
            let stats = try #require(GRPOTrainer(weights: copy, learningRate: 1e-3, temperature: temperature).update(s))
            #expect(stats.maxLogprobError < 1e-4 && abs(stats.meanRatio - 1) < 1e-4, "\(name): \(stats)")
            // The same samples scored at another temperature are off: the check can fail.
            let other = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 11)
            let off = try #require(GRPOTrainer(weights: other, learningRate: 1e-3, temperature: 1).update(s))
            #expect(off.maxLogprobError > 1e-2, "\(name): \(off)")
        }
    }
}

/// Rollouts of a bfloat16 sampler scored by the learner: a float32 learner reports the gap
/// (`meanLogprobError`) and sees none in a float32 sampler's rollouts; a learner with bfloat16
/// products (`GRPOTrainer(…, products: .bfloat16)`) computes the bfloat16 sampler's logprobs, with
/// no gap before its first update or after it (its rounded copies follow AdamW's steps).
extension GRPOTests {
    /// Four samples of each of two prompts from `model` at temperature 1, advantages ±1.
    static func rollouts(of model: LlamaModel) throws -> [PolicySample] {
        let sampler = Generator(model: model)
        return try [[3, 17, 9, 40], [5, 5, 21]].enumerated().flatMap { i, prompt in
            try (0..<4).map { k -> PolicySample in
                let out = try sampler.generate(GenerationRequest(prompt: prompt, maxTokens: 24,
                                                                 sampling: SamplingParameters(temperature: 1, seed: UInt64(10 * i + k))))
                return PolicySample(promptTokens: prompt, responseTokens: out.tokens, sampleLogprobs: out.logprobs,
                                    advantage: k % 2 == 0 ? 1 : -1)
            }
        }
    }

    @Test func theLearnerReportsTheGapToABFloat16Sampler() throws {
        let policy = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 13)
        func update(_ samples: [PolicySample]) throws -> GRPOUpdateStats {
            let float = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 13)
            return try #require(GRPOTrainer(weights: float, learningRate: 1e-3, temperature: 1).update(samples))
        }
        let gap = try update(try Self.rollouts(of: LlamaModel(weights: policy, precision: .bfloat16)))
        let none = try update(try Self.rollouts(of: LlamaModel(weights: policy, precision: .float32)))
        #expect(none.meanLogprobError < 1e-5 && none.maxLogprobError < 1e-4, "\(none)")
        #expect(gap.meanLogprobError > 10 * max(none.meanLogprobError, 1e-7) && gap.meanLogprobError < 0.05, "\(gap)")
        #expect(gap.maxLogprobError >= gap.meanLogprobError)
    }

    @Test func aBFloat16LearnerSeesNoGapToABFloat16Sampler() throws {
        let temperature: Float = 1
        /// A bfloat16 sampler of `weights` as they are now (a rounded copy: the learner goes on
        /// training them).
        func rollouts(_ weights: LlamaWeights) throws -> [PolicySample] {
            try Self.rollouts(of: LlamaModel(weights: weights.roundedToBFloat16(), precision: .bfloat16))
        }
        let policy = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 14)
        let trainer = GRPOTrainer(weights: policy, learningRate: 1e-2, temperature: temperature, products: .bfloat16)
        let first = try #require(trainer.update(try rollouts(policy)))
        let second = try #require(trainer.update(try rollouts(policy)))
        for stats in [first, second] {
            #expect(stats.meanLogprobError < 1e-5 && stats.maxLogprobError < 1e-4 && abs(stats.meanRatio - 1) < 1e-4, "\(stats)")
        }
        // A float32 learner of the same policy, on the same sampler's rollouts, has the gap.
        let float = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 14)
        let gap = try #require(GRPOTrainer(weights: float, learningRate: 1e-2, temperature: temperature).update(try rollouts(float)))
        #expect(gap.meanLogprobError > 100 * max(first.meanLogprobError, 1e-8), "\(gap) against \(first)")
    }
}

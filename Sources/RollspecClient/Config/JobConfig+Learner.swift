import Foundation
import RollspecModel

extension JobConfig {
    /// The learner of the job: the reference GRPO learner, the stand-in driver, or an outside
    /// RL loop that connects by itself (`external`: `rollspec launch` starts no learner).
    public struct Learner: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable, CaseIterable { case grpo, driver, external }
        public var kind: Kind = .grpo
        /// The verifiable task the GRPO learner trains on (`TaskKind`).
        public var task: TaskKind = .arithmetic
        /// The JSON-lines file of `task: dataset` (`{"prompt": …, "answer": …}` per line).
        public var dataset: String = ""
        /// How `task: dataset` scores an answer against its line's (nil: `exact`); the built-in
        /// tasks score their own.
        public var reward: RewardKind?
        /// Whether questions go to a checkpoint policy as a user turn of its chat template:
        /// `auto` when its tokenizer has one. Byte-level policies read terse prompts.
        public var chat: ChatSetting = .auto
        /// RL steps (policy versions published after the first).
        public var steps: Int = 20
        /// Prompts per step; each is one rollout request of `groupSize` samples.
        public var promptsPerStep: Int = 16
        /// Samples per prompt, whose rewards are normalised against each other (GRPO).
        public var groupSize: Int = 8
        public var learningRate: Float = 3e-3
        /// Policy-gradient updates on each step's trajectories (the first is exactly on-policy).
        public var updatesPerStep: Int = 1
        /// Prompt + response tokens per forward/backward pass of an update: the gradient is
        /// accumulated over passes, which bounds the update's memory (activations of every
        /// layer for this many rows).
        public var updateRowsPerPass: Int = 2048
        /// PPO-style clip range of the probability ratio against the sampling policy.
        public var clipEpsilon: Float = 0.2
        /// Weight of the KL penalty to the warm-up policy (0: none).
        public var klCoefficient: Float = 0
        /// How the update's forward and backward multiply (`float32`, or `bfloat16`: every
        /// weight and product input rounded, float32 sums, mixed precision). nil follows
        /// `models.precision`, so that the learner's logprobs are the workers'; AdamW updates
        /// float32 weights either way (`resolvedPrecision`).
        public var precision: WeightPrecision?
        /// Supervised warm-up steps on task demonstrations before the first policy is published.
        /// The default leaves the built-in policy right about a third of the time when sampling
        /// at temperature 2.5 and nearly always greedily: GRPO then has room to sharpen it.
        public var warmupSteps: Int = 40
        public var warmupLearningRate: Float = 3e-3
        public var warmupBatchSize: Int = 16
        /// Seconds a step may wait for its trajectories before the job fails.
        public var stepTimeoutSeconds: Double = 120
        public var seed: UInt64 = 1
        public init() {}
    }
}

extension JobConfig.Learner {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, task, dataset, reward, chat, steps, promptsPerStep, groupSize, learningRate, updatesPerStep, updateRowsPerPass, clipEpsilon, klCoefficient, precision
        case warmupSteps, warmupLearningRate, warmupBatchSize, stepTimeoutSeconds, seed
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try decoder.rejectUnknownKeys(CodingKeys.self)
        kind = try c.choice(.kind, or: kind)!
        task = try c.choice(.task, or: task)!
        dataset = try c.value(.dataset, or: dataset)
        reward = try c.choice(.reward, or: reward)
        chat = try c.value(.chat, or: chat)
        steps = try c.value(.steps, or: steps)
        promptsPerStep = try c.value(.promptsPerStep, or: promptsPerStep)
        groupSize = try c.value(.groupSize, or: groupSize)
        learningRate = try c.value(.learningRate, or: learningRate)
        updatesPerStep = try c.value(.updatesPerStep, or: updatesPerStep)
        updateRowsPerPass = try c.value(.updateRowsPerPass, or: updateRowsPerPass)
        clipEpsilon = try c.value(.clipEpsilon, or: clipEpsilon)
        klCoefficient = try c.value(.klCoefficient, or: klCoefficient)
        precision = try c.choice(.precision, or: precision)
        warmupSteps = try c.value(.warmupSteps, or: warmupSteps)
        warmupLearningRate = try c.value(.warmupLearningRate, or: warmupLearningRate)
        warmupBatchSize = try c.value(.warmupBatchSize, or: warmupBatchSize)
        stepTimeoutSeconds = try c.value(.stepTimeoutSeconds, or: stepTimeoutSeconds)
        seed = try c.value(.seed, or: seed)
    }

    /// - Throws: `JobConfigError.invalid` naming the first bad key.
    func validate() throws {
        func check(_ ok: Bool, _ key: String, _ reason: String) throws {
            if !ok { throw JobConfigError.invalid(key: "learner." + key, reason: reason) }
        }
        try check(task != .dataset || !dataset.isEmpty, "dataset", "must name a JSON-lines file for task: dataset")
        try check(task == .dataset || dataset.isEmpty, "dataset", "is set, but task is \(task.rawValue) (a dataset needs task: dataset)")
        try check(task == .dataset || reward == nil, "reward",
                  "applies to task: dataset only (the built-in tasks score their own answers)")
        func within(_ value: Int, _ range: ClosedRange<Int>, _ key: String, _ note: String = "") throws {
            try check(range.contains(value), key, "must be in \(range.lowerBound)...\(range.upperBound)\(note), got \(value)")
        }
        try within(steps, 1...10_000_000, "steps")
        try within(promptsPerStep, 1...65_536, "promptsPerStep")
        try within(groupSize, 2...4096, "groupSize", " (advantages are relative to the group)")
        try check(learningRate > 0 && learningRate.isFinite, "learningRate", "must be positive")
        try within(updatesPerStep, 1...1000, "updatesPerStep")
        try within(updateRowsPerPass, 16...(1 << 20), "updateRowsPerPass")
        try check(clipEpsilon > 0 && clipEpsilon < 1, "clipEpsilon", "must be in (0, 1)")
        try check(klCoefficient >= 0 && klCoefficient.isFinite, "klCoefficient", "must be ≥ 0")
        try within(warmupSteps, 0...10_000_000, "warmupSteps")
        try check(warmupLearningRate > 0 && warmupLearningRate.isFinite, "warmupLearningRate", "must be positive")
        try within(warmupBatchSize, 1...65_536, "warmupBatchSize")
        try check(stepTimeoutSeconds > 0 && stepTimeoutSeconds <= 604_800, "stepTimeoutSeconds",
                  "must be in (0, 604800], got \(stepTimeoutSeconds)")
    }
}

import Foundation
import RollspecClient

/// Group-relative advantages (GRPO, Shao et al. 2024, DeepSeekMath §4.1.2, outcome supervision):
/// each sample's reward normalised against the other samples of its prompt's group,
/// A_i = (r_i − mean) / (std + ε), with the population standard deviation of the group.
///
/// A group whose rewards are all equal (all right or all wrong) says nothing about which
/// sample was better: its advantages are 0 and `informative` is false, so the learner leaves
/// it out of the update.
public struct GroupAdvantages: Sendable, Equatable {
    /// `[samples]` one per reward, in the order given.
    public var advantages: [Double]
    public var mean: Double
    /// Population standard deviation of the group's rewards.
    public var std: Double
    /// False when every reward is the same.
    public var informative: Bool

    /// - Parameters:
    ///   - rewards: `[samples]` the group's rewards.
    ///   - epsilon: keeps the division finite for nearly equal rewards.
    public init(rewards: [Double], epsilon: Double = 1e-4) {
        let n = Double(max(rewards.count, 1))
        let average = rewards.reduce(0, +) / n
        mean = average
        let variance = rewards.reduce(0) { $0 + ($1 - average) * ($1 - average) } / n
        std = variance.squareRoot()
        informative = rewards.count >= 2 && rewards.contains { $0 != rewards[0] }
        let (m, s) = (mean, std)
        advantages = informative ? rewards.map { ($0 - m) / (s + epsilon) } : rewards.map { _ in 0 }
    }
}

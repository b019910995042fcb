import Foundation
import RollspecClient
import RollspecRoles

/// The processes a job consists of, in start order: broker, workers, speculator trainer, learner.
public struct LaunchPlan: Sendable, Equatable {
    /// One process of the job: `rollspec role <role> --config <file> --index <index>`.
    public struct RoleInstance: Sendable, Equatable, Hashable {
        public var role: String
        public var index: Int
        /// `broker`, `worker-0`, …: the log file's name and the progress line's label.
        public var label: String { role == "broker" ? role : "\(role)-\(index)" }
        /// The learner decides when the job is over; the others serve until stopped.
        public var isLearner: Bool { role == "learner" || role == "driver" }
    }

    public var roles: [RoleInstance]

    public init(config: JobConfig) {
        var roles = [RoleInstance(role: "broker", index: 0)]
        roles += (0..<config.workers).map { RoleInstance(role: "worker", index: $0) }
        roles += (0..<config.trainers).map { RoleInstance(role: "trainer", index: $0) }
        switch config.learner.kind {
        case .grpo: roles.append(RoleInstance(role: "learner", index: 0))
        case .driver: roles.append(RoleInstance(role: "driver", index: 0))
        case .external: break
        }
        self.roles = roles
    }

    /// The arguments after the executable that start `instance`.
    public static func arguments(for instance: RoleInstance, configPath: String) -> [String] {
        ["role", instance.role, "--config", configPath, "--index", String(instance.index)]
    }
}
